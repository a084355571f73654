import * as path from 'node:path';
import { CfnOutput, Duration, Fn, RemovalPolicy, Stack, StackProps, Tags } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { RustFunction } from 'cargo-lambda-cdk';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { ConfigError, EnvironmentConfig, validateConfig } from './config';
import {
  ConnectivityConfig,
  NETWORK_INTERFACES_ARN,
  connectivityEnvironment,
  connectivityStatements,
  vpcPlacement,
} from './connectivity';
import { ScalerParameters, declareParameters } from './parameters';

/** The Rust crate that holds the function, relative to this file. */
export const DEFAULT_MANIFEST_PATH = path.join(__dirname, '..', '..', 'function', 'Cargo.toml');

/** The crate's binary; cargo-lambda builds it as `bootstrap`. */
export const BINARY_NAME = 'kafka-lag-scaler';

/**
 * How long a scheduled tick may wait to be delivered (the minimum both EventBridge
 * and Lambda accept). A tick that could not run in time is dropped, never replayed
 * later against a state that has moved on: the next tick decides afresh.
 */
export const STALE_TICK_MAX_AGE = Duration.seconds(60);

export interface KafkaLagScalerStackProps extends StackProps {
  /** The environment this stack deploys; see `environments.ts`. */
  readonly config: EnvironmentConfig;
  /**
   * Cargo manifest of the function crate.
   * @default DEFAULT_MANIFEST_PATH (`function/Cargo.toml` of this repository)
   */
  readonly manifestPath?: string;
}

/**
 * The scaler for one environment: the function, its role, its log group and the
 * schedule that runs it, with deploy-time values as stack parameters.
 *
 * The function is bundled by `cargo lambda build` when the stack is synthesized.
 * Tests that do not need the binary skip that with the standard CDK context
 * `aws:cdk:bundling-stacks: []`, which leaves the asset unbuilt.
 */
export class KafkaLagScalerStack extends Stack {
  readonly parameters: ScalerParameters;
  readonly function: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: KafkaLagScalerStackProps) {
    super(scope, id, props);
    const { config } = props;
    const problems = validateConfig(config);
    if (problems.length > 0) {
      throw new ConfigError(config.name, problems);
    }
    Tags.of(this).add('project', 'kafka-lag-scaler');
    Tags.of(this).add('environment', config.name);

    const params = declareParameters(this, config);
    this.parameters = params;

    // The log group is created here, not by Lambda on first write, so that it has a
    // retention and `cdk destroy` removes it with everything else.
    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: config.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `kafka-lag-scaler (${config.name}): read Auto Scaling groups, resize one`,
      inlinePolicies: {
        Scaler: scalerPolicy(this.logGroup, connectivityStatements(config)),
      },
    });
    acknowledgeRequiredWildcards(this.role, config);

    this.function = new RustFunction(this, 'Function', {
      manifestPath: props.manifestPath ?? DEFAULT_MANIFEST_PATH,
      binaryName: BINARY_NAME,
      runtime: 'provided.al2023',
      architecture: config.architecture === 'arm64'
        ? lambda.Architecture.ARM_64
        : lambda.Architecture.X86_64,
      description: `Raises an Auto Scaling group when Kafka lag is high (${config.name})`,
      memorySize: config.memoryMb,
      timeout: Duration.seconds(config.timeoutSeconds),
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.INFO,
      // One run at a time: two overlapping runs could both decide to resize.
      reservedConcurrentExecutions: 1,
      // Asynchronous invoke configuration: a failed or throttled tick is not retried.
      retryAttempts: 0,
      maxEventAge: STALE_TICK_MAX_AGE,
      ...vpcPlacement(this, config),
      environment: {
        PROMETHEUS_ENDPOINT: params.prometheusEndpoint.valueAsString,
        PROMETHEUS_QUERY: params.prometheusQuery.valueAsString,
        ASG_NAME: params.asgName.valueAsString,
        WEBHOOK_URL: params.webhookUrl.valueAsString,
        HIGH_LAG_THRESHOLD: params.highLagThreshold.valueAsString,
        LOW_LAG_THRESHOLD: params.lowLagThreshold.valueAsString,
        SCALE_OUT_CAPACITY: params.scaleOutCapacity.valueAsString,
        SCALE_IN_CAPACITY: params.scaleInCapacity.valueAsString,
        DRY_RUN: params.dryRun.valueAsString,
        LAG_AGGREGATION: config.lagAggregation,
        SCALE_OUT_SUSTAIN: config.scaleOutSustain,
        SCALE_IN_SUSTAIN: config.scaleInSustain,
        WEBHOOK_FORMAT: config.webhookFormat,
        PROMETHEUS_TIMEOUT_SECONDS: String(config.prometheusTimeoutSeconds),
        ...connectivityEnvironment(config),
      },
    });

    // Lambda adds an explicit DependsOn on the role for policies attached separately.
    // Ours are inline, so the role's ARN alone already orders creation and deletion,
    // and cfn-lint would flag the duplicate (W3005).
    (this.function.node.defaultChild as lambda.CfnFunction).addDeletionOverride('DependsOn');

    this.rule = new events.Rule(this, 'Schedule', {
      description: `Runs kafka-lag-scaler (${config.name}) on a schedule`,
      schedule: events.Schedule.expression(params.scheduleExpression.valueAsString),
      enabled: true,
    });
    this.rule.addTarget(new targets.LambdaFunction(this.function, {
      retryAttempts: 0,
      maxEventAge: STALE_TICK_MAX_AGE,
    }));

    new CfnOutput(this, 'FunctionName', {
      description: 'The scaler function, for `aws lambda invoke` and its metrics',
      value: this.function.functionName,
    });
    new CfnOutput(this, 'RuleName', {
      description: 'The EventBridge rule that runs the function; disable it to pause scaling',
      value: this.rule.ruleName,
    });
    new CfnOutput(this, 'LogGroupName', {
      description: 'Where the function writes its JSON logs',
      value: this.logGroup.logGroupName,
    });
  }
}

/**
 * The role's only permissions: read groups, resize the one group, write its own logs, and
 * what the environment's connectivity settings add (see `connectivityStatements`).
 */
function scalerPolicy(
  logGroup: logs.ILogGroup,
  connectivity: iam.PolicyStatement[],
): iam.PolicyDocument {
  return new iam.PolicyDocument({
    statements: [
      new iam.PolicyStatement({
        sid: 'DescribeGroups',
        actions: ['autoscaling:DescribeAutoScalingGroups'],
        resources: ['*'],
      }),
      new iam.PolicyStatement({
        sid: 'ResizeTheOneGroup',
        actions: ['autoscaling:UpdateAutoScalingGroup', 'autoscaling:SetDesiredCapacity'],
        resources: [groupArn()],
      }),
      new iam.PolicyStatement({
        sid: 'WriteOwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
      ...connectivity,
    ],
  });
}

/**
 * The ARN of the group named by the `AsgName` parameter (referenced by its logical
 * id, which `declareParameters` fixes). The segment after `autoScalingGroup:` is the
 * group's generated id, unknown before the group exists.
 */
function groupArn(): string {
  return Fn.sub(
    'arn:${AWS::Partition}:autoscaling:${AWS::Region}:${AWS::AccountId}'
    + ':autoScalingGroup:*:autoScalingGroupName/${AsgName}',
  );
}

/** cdk-nag findings on the role that the design requires, each acknowledged alone. */
function acknowledgeRequiredWildcards(role: iam.Role, config: ConnectivityConfig): void {
  const inVpc = config.vpcId !== '';
  NagSuppressions.addResourceSuppressions(role, [
    {
      id: 'AwsSolutions-IAM5',
      reason: inVpc
        ? 'autoscaling:DescribeAutoScalingGroups, ec2:DescribeNetworkInterfaces and '
          + 'ec2:DescribeSubnets support no resource-level permissions, so IAM only accepts '
          + 'them on `*`.'
        : 'autoscaling:DescribeAutoScalingGroups supports no resource-level '
          + 'permissions, so IAM only accepts it on `*`.',
      appliesTo: ['Resource::*'],
    },
    {
      id: 'AwsSolutions-IAM5',
      reason: 'The wildcard stands only for the group id, unknown before the group exists; '
        + 'the group name is fixed by the AsgName parameter.',
      appliesTo: [
        'Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>'
        + ':autoScalingGroup:*:autoScalingGroupName/<AsgName>',
      ],
    },
    ...(inVpc ? [{
      id: 'AwsSolutions-IAM5',
      reason: 'Lambda names the network interfaces it creates in the configured subnets, '
        + 'so their ids are unknown before the function runs.',
      appliesTo: [`Resource::${NETWORK_INTERFACES_ARN.replace(/\$\{([^}]+)\}/g, '<$1>')}`],
    }] : []),
  ]);
}
