import { CfnParameter, Stack } from 'aws-cdk-lib';
import { EnvironmentConfig, MAX_LENGTH } from './config';
import {
  ASG_NAME_PATTERN,
  CAPACITY_PATTERN,
  HTTP_URL_PATTERN,
  LAG_THRESHOLD_PATTERN,
  NON_BLANK_PATTERN,
  OPTIONAL_HTTP_URL_PATTERN,
  POSITIVE_CAPACITY_PATTERN,
  SCHEDULE_EXPRESSION_PATTERN,
} from './patterns';

/**
 * The deploy-time values of the stack. Their logical ids are the parameter names
 * that `cdk deploy --parameters NAME=VALUE` takes, so they must never change.
 *
 * Numbers are `String` parameters with a digits-only pattern: a CloudFormation
 * `Number` would also accept `1.5` or `1e7`, which the function refuses at start.
 */
export interface ScalerParameters {
  readonly asgName: CfnParameter;
  readonly prometheusEndpoint: CfnParameter;
  readonly prometheusQuery: CfnParameter;
  readonly webhookUrl: CfnParameter;
  readonly highLagThreshold: CfnParameter;
  readonly lowLagThreshold: CfnParameter;
  readonly scaleOutCapacity: CfnParameter;
  readonly scaleInCapacity: CfnParameter;
  readonly scheduleExpression: CfnParameter;
  readonly dryRun: CfnParameter;
}

/** Declares the stack parameters, each defaulting to the environment's configuration. */
export function declareParameters(stack: Stack, config: EnvironmentConfig): ScalerParameters {
  return {
    asgName: new CfnParameter(stack, 'AsgName', {
      type: 'String',
      description: 'Name of the EC2 Auto Scaling group the function starts on high lag '
        + 'and returns on low lag (ASG_NAME). The role may resize this group only.',
      default: config.asgName,
      minLength: 1,
      maxLength: MAX_LENGTH.asgName,
      allowedPattern: ASG_NAME_PATTERN,
      constraintDescription: 'must be 1 to 255 printable ASCII characters without spaces, '
        + 'colons, * or ?',
    }),
    prometheusEndpoint: new CfnParameter(stack, 'PrometheusEndpoint', {
      type: 'String',
      description: 'Prometheus base URL, such as http://prometheus:9090; a URL ending in '
        + '/api/v1/query also works (PROMETHEUS_ENDPOINT).',
      default: config.prometheusEndpoint,
      minLength: 1,
      maxLength: MAX_LENGTH.prometheusEndpoint,
      allowedPattern: HTTP_URL_PATTERN,
      constraintDescription: 'must be an http:// or https:// URL without spaces, '
        + 'at most 512 characters',
    }),
    prometheusQuery: new CfnParameter(stack, 'PrometheusQuery', {
      type: 'String',
      description: 'PromQL instant query that returns the consumer lag; several series are '
        + 'combined as configured (PROMETHEUS_QUERY).',
      default: config.prometheusQuery,
      minLength: 1,
      maxLength: MAX_LENGTH.prometheusQuery,
      allowedPattern: NON_BLANK_PATTERN,
      constraintDescription: 'must be a non-blank PromQL query of at most 2048 characters',
    }),
    webhookUrl: new CfnParameter(stack, 'WebhookUrl', {
      type: 'String',
      description: 'Chat webhook that receives a message on every scale out, scale in, skip '
        + 'or error; empty sends none (WEBHOOK_URL).',
      default: config.webhookUrl,
      noEcho: true,
      maxLength: MAX_LENGTH.webhookUrl,
      allowedPattern: OPTIONAL_HTTP_URL_PATTERN,
      constraintDescription: 'must be empty or an http:// or https:// URL without spaces, '
        + 'at most 512 characters',
    }),
    highLagThreshold: new CfnParameter(stack, 'HighLagThreshold', {
      type: 'String',
      description: 'Lag above which the group is started (HIGH_LAG_THRESHOLD). '
        + 'Must be >= LowLagThreshold.',
      default: String(config.highLagThreshold),
      allowedPattern: LAG_THRESHOLD_PATTERN,
      constraintDescription: 'must be a non-negative integer of at most 15 digits',
    }),
    lowLagThreshold: new CfnParameter(stack, 'LowLagThreshold', {
      type: 'String',
      description: 'Lag below which the group is returned to ScaleInCapacity '
        + '(LOW_LAG_THRESHOLD). Must be <= HighLagThreshold.',
      default: String(config.lowLagThreshold),
      allowedPattern: LAG_THRESHOLD_PATTERN,
      constraintDescription: 'must be a non-negative integer of at most 15 digits',
    }),
    scaleOutCapacity: new CfnParameter(stack, 'ScaleOutCapacity', {
      type: 'String',
      description: 'MinSize and DesiredCapacity of the group while lag is high, clamped to its '
        + 'MaxSize (SCALE_OUT_CAPACITY). Must be > ScaleInCapacity.',
      default: String(config.scaleOutCapacity),
      allowedPattern: POSITIVE_CAPACITY_PATTERN,
      constraintDescription: 'must be an integer from 1 to 9999 without leading zeros',
    }),
    scaleInCapacity: new CfnParameter(stack, 'ScaleInCapacity', {
      type: 'String',
      description: 'MinSize and DesiredCapacity of the group while standing by '
        + '(SCALE_IN_CAPACITY). Must be < ScaleOutCapacity.',
      default: String(config.scaleInCapacity),
      allowedPattern: CAPACITY_PATTERN,
      constraintDescription: 'must be an integer from 0 to 9999 without leading zeros',
    }),
    scheduleExpression: new CfnParameter(stack, 'ScheduleExpression', {
      type: 'String',
      description: 'How often the function runs: an EventBridge rate(...) or cron(...) '
        + 'expression.',
      default: config.schedule,
      maxLength: 256,
      allowedPattern: SCHEDULE_EXPRESSION_PATTERN,
      constraintDescription: 'must be rate(1 minute|hour|day), rate(N minutes|hours|days) '
        + 'with N > 1, or cron(...) with six fields',
    }),
    dryRun: new CfnParameter(stack, 'DryRun', {
      type: 'String',
      description: 'true: decide, log and notify, but never change the group (DRY_RUN).',
      default: String(config.dryRun),
      allowedValues: ['true', 'false'],
    }),
  };
}
