import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { wholeMatch } from '../lib/patterns';
import { onlyResource, synthesize } from './support';

const dev = synthesize('dev');
const prod = synthesize('prod');
const devParameters = dev.template.toJSON().Parameters as Record<string, any>;
const prodParameters = prod.template.toJSON().Parameters as Record<string, any>;

/** Parameter name, and the environment variable it feeds. */
const WIRING: ReadonlyArray<[string, string]> = [
  ['AsgName', 'ASG_NAME'],
  ['PrometheusEndpoint', 'PROMETHEUS_ENDPOINT'],
  ['PrometheusQuery', 'PROMETHEUS_QUERY'],
  ['WebhookUrl', 'WEBHOOK_URL'],
  ['HighLagThreshold', 'HIGH_LAG_THRESHOLD'],
  ['LowLagThreshold', 'LOW_LAG_THRESHOLD'],
  ['ScaleOutCapacity', 'SCALE_OUT_CAPACITY'],
  ['ScaleInCapacity', 'SCALE_IN_CAPACITY'],
  ['DryRun', 'DRY_RUN'],
];

/** The parameter's constraint, compiled as CloudFormation applies it (whole value). */
function allows(name: string, value: string): boolean {
  const parameter = devParameters[name];
  if (parameter.AllowedValues !== undefined && !parameter.AllowedValues.includes(value)) {
    return false;
  }
  if (parameter.MinLength !== undefined && value.length < parameter.MinLength) {
    return false;
  }
  if (parameter.MaxLength !== undefined && value.length > parameter.MaxLength) {
    return false;
  }
  return parameter.AllowedPattern === undefined
    || wholeMatch(parameter.AllowedPattern).test(value);
}

/** Table rows: a value, and why it must be accepted or refused. */
type Row = [value: string, reason: string];

function assertAllows(name: string, rows: Row[]): void {
  for (const [value, reason] of rows) {
    assert.ok(allows(name, value), `${name} should accept \`${value}\`: ${reason}`);
  }
}

function assertRefuses(name: string, rows: Row[]): void {
  for (const [value, reason] of rows) {
    assert.ok(!allows(name, value), `${name} should refuse \`${value}\`: ${reason}`);
  }
}

describe('stack parameters', () => {
  it('are exactly the ten deploy-time values, plus the CDK bootstrap version', () => {
    assert.deepEqual(Object.keys(devParameters).sort(), [
      'AsgName', 'BootstrapVersion', 'DryRun', 'HighLagThreshold', 'LowLagThreshold',
      'PrometheusEndpoint', 'PrometheusQuery', 'ScaleInCapacity', 'ScaleOutCapacity',
      'ScheduleExpression', 'WebhookUrl',
    ]);
  });

  it('each have a description and a constraint', () => {
    for (const [name, parameter] of Object.entries(devParameters)) {
      if (name === 'BootstrapVersion') {
        continue;
      }
      assert.equal(parameter.Type, 'String', name);
      assert.ok(parameter.Description.length > 20, `${name} needs a description`);
      assert.ok(parameter.AllowedPattern ?? parameter.AllowedValues,
        `${name} needs an AllowedPattern or AllowedValues`);
      if (parameter.AllowedPattern !== undefined) {
        assert.ok(parameter.ConstraintDescription, `${name} needs a ConstraintDescription`);
      }
    }
  });

  it('are each wired into the environment variable of the same meaning', () => {
    const fn = onlyResource(dev.template, 'AWS::Lambda::Function').Properties;
    const expected = Object.fromEntries(WIRING.map(([parameter, variable]) =>
      [variable, { Ref: parameter }]));

    assert.deepEqual(fn.Environment.Variables, {
      ...expected,
      LAG_AGGREGATION: 'max',
      PROMETHEUS_TIMEOUT_SECONDS: '10',
      SCALE_OUT_SUSTAIN: '0',
      SCALE_IN_SUSTAIN: '0',
      WEBHOOK_FORMAT: 'auto',
    });
  });

  it('hide the webhook URL, which is a secret', () => {
    assert.equal(devParameters.WebhookUrl.NoEcho, true);
    for (const [name, parameter] of Object.entries(devParameters)) {
      if (name !== 'WebhookUrl') {
        assert.equal(parameter.NoEcho, undefined, `${name} is not secret`);
      }
    }
  });

  it('take their defaults from the dev configuration', () => {
    const defaults = Object.fromEntries(Object.entries(devParameters)
      .filter(([name]) => name !== 'BootstrapVersion')
      .map(([name, parameter]) => [name, parameter.Default]));

    assert.deepEqual(defaults, {
      AsgName: 'kafka-consumers-fallback-dev',
      PrometheusEndpoint: 'http://prometheus.dev.internal:9090',
      PrometheusQuery: 'sum by (consumergroup, topic) '
        + '(kafka_consumergroup_lag >= 0 or kafka_consumergroup_lag * NaN)',
      WebhookUrl: '',
      HighLagThreshold: '10000000',
      LowLagThreshold: '100000',
      ScaleOutCapacity: '4',
      ScaleInCapacity: '0',
      ScheduleExpression: 'rate(5 minutes)',
      DryRun: 'true',
    });
  });

  it('take different defaults in prod', () => {
    assert.equal(prodParameters.AsgName.Default, 'kafka-consumers-fallback');
    assert.equal(prodParameters.PrometheusEndpoint.Default,
      'http://prometheus.prod.internal:9090');
    assert.equal(prodParameters.DryRun.Default, 'false');
  });

  it('accept their own defaults, in every environment', () => {
    for (const parameters of [devParameters, prodParameters]) {
      for (const [name, parameter] of Object.entries(parameters)) {
        if (name !== 'BootstrapVersion') {
          assert.ok(allows(name, parameter.Default), `${name} default \`${parameter.Default}\``);
        }
      }
    }
  });
});

describe('ScheduleExpression', () => {
  it('accepts the schedules EventBridge accepts', () => {
    assertAllows('ScheduleExpression', [
      ['rate(1 minute)', 'the value 1 takes the singular unit'],
      ['rate(1 hour)', 'singular hour'],
      ['rate(1 day)', 'singular day'],
      ['rate(2 minutes)', 'values above 1 take the plural'],
      ['rate(5 minutes)', 'the default'],
      ['rate(10 minutes)', 'two digits'],
      ['rate(12 hours)', 'plural hours'],
      ['rate(7 days)', 'plural days'],
      ['cron(0/5 * * * ? *)', 'every five minutes, six fields'],
      ['cron(0 12 ? * MON-FRI *)', 'weekday names and ranges'],
      ['cron(15 10 L * ? 2030)', 'last day of month, a year'],
      ['cron(0 8 ? * 6#3 *)', 'the third Friday'],
    ]);
  });

  it('refuses what EventBridge would reject at deploy time', () => {
    assertRefuses('ScheduleExpression', [
      ['rate(1 minutes)', 'the value 1 needs the singular unit'],
      ['rate(5 minute)', 'values above 1 need the plural unit'],
      ['rate(0 minutes)', 'zero is not a rate'],
      ['rate(05 minutes)', 'leading zero'],
      ['rate(-5 minutes)', 'negative'],
      ['rate(5 seconds)', 'seconds are not a unit'],
      ['rate(5minutes)', 'missing space'],
      ['rate(5 minutes', 'unclosed'],
      ['rate(5 minutes))', 'extra parenthesis'],
      ['cron(0 12 * * ? *))', 'extra parenthesis after cron'],
      ['cron(0 12 * * ?)', 'five fields'],
      ['cron(0 12 * * ? * *)', 'seven fields'],
      ['cron(0  12 * * ? *)', 'two spaces make an empty field'],
      ['cron(...))', 'not a cron at all'],
      ['every 5 minutes', 'not an expression'],
      [' rate(5 minutes)', 'leading space'],
      ['', 'empty'],
    ]);
  });
});

describe('AsgName', () => {
  it('accepts group names Auto Scaling allows', () => {
    assertAllows('AsgName', [
      ['kafka-consumers-fallback', 'letters and hyphens'],
      ['eks_nodes.v2+spare@eu', 'punctuation other than : * ?'],
      ['a'.repeat(255), 'the longest name'],
    ]);
  });

  it('refuses names that would widen or break the group ARN', () => {
    assertRefuses('AsgName', [
      ['*', 'an IAM wildcard would grant every group'],
      ['kafka-*', 'a wildcard inside the name'],
      ['kafka-?', 'the single-character wildcard'],
      ['kafka:consumers', 'Auto Scaling refuses colons'],
      ['kafka consumers', 'Auto Scaling refuses spaces'],
      ['', 'empty'],
      ['a'.repeat(256), 'longer than 255'],
    ]);
  });
});

describe('URL, query, number and flag parameters', () => {
  it('accept only http(s) URLs as the Prometheus endpoint', () => {
    assertAllows('PrometheusEndpoint', [
      ['http://prometheus:9090', 'in-cluster style'],
      ['https://user:secret@prom.example.com/api/v1/query', 'basic auth and full path'],
    ]);
    assertRefuses('PrometheusEndpoint', [
      ['', 'required'],
      ['prometheus:9090', 'no scheme'],
      ['ftp://prometheus', 'not http'],
      ['http://prom etheus', 'a space'],
    ]);
  });

  it('accept an empty webhook URL, meaning no messages', () => {
    assertAllows('WebhookUrl', [
      ['', 'no messages'],
      ['https://hooks.slack.com/services/T0/B0/XYZ', 'a Slack webhook'],
    ]);
    assertRefuses('WebhookUrl', [['hooks.slack.com/services/T0', 'no scheme']]);
  });

  it('accept any non-blank PromQL query, including several lines', () => {
    assertAllows('PrometheusQuery', [
      ['sum(kafka_consumergroup_lag{topic=~"orders.+"}) by (consumergroup, topic)', 'regex'],
      ['max(\n  kafka_consumergroup_lag\n)', 'several lines'],
    ]);
    assertRefuses('PrometheusQuery', [['', 'empty'], ['   ', 'blank']]);
  });

  it('accept only whole non-negative numbers as thresholds', () => {
    for (const name of ['HighLagThreshold', 'LowLagThreshold']) {
      assertAllows(name, [['0', 'zero'], ['10000000', 'ten million']]);
      assertRefuses(name, [
        ['', 'empty'], ['-1', 'negative'], ['1.5', 'fraction'], ['1e7', 'exponent'],
        ['1000000000000000', 'more than 15 digits'],
      ]);
    }
  });

  it('accept a scale-out capacity of at least one, and a scale-in capacity from zero', () => {
    assertAllows('ScaleOutCapacity', [['1', 'smallest'], ['40', 'two digits']]);
    assertRefuses('ScaleOutCapacity', [['0', 'would never start anything'], ['04', 'zero-padded'],
      ['2.5', 'fraction'], ['10000', 'above 9999']]);
    assertAllows('ScaleInCapacity', [['0', 'back to Karpenter'], ['1', 'one warm node']]);
    assertRefuses('ScaleInCapacity', [['-1', 'negative'], ['00', 'zero-padded']]);
  });

  it('accept only true or false as DryRun', () => {
    assertAllows('DryRun', [['true', 'dry run'], ['false', 'acts']]);
    assertRefuses('DryRun', [['yes', 'not a boolean'], ['True', 'case matters']]);
  });
});
