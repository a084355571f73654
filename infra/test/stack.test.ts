import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Match } from 'aws-cdk-lib/assertions';
import { ConfigError } from '../lib/config';
import { loadEnvironment } from '../lib/environments';
import { Grant, Synthesized, allGrants, logicalId, onlyResource, synthesize } from './support';

const dev = synthesize('dev');
const prod = synthesize('prod');

const FUNCTION = { Ref: Match.stringLikeRegexp('^Function') };
const GROUP_ARN = {
  'Fn::Sub': 'arn:${AWS::Partition}:autoscaling:${AWS::Region}:${AWS::AccountId}'
    + ':autoScalingGroup:*:autoScalingGroupName/${AsgName}',
};

/** The role's whole permission set, as the design states it. */
function expectedGrants(logGroupLogicalId: string): Grant[] {
  const logGroupArn = { 'Fn::GetAtt': [logGroupLogicalId, 'Arn'] };
  return [
    { action: 'autoscaling:DescribeAutoScalingGroups', resource: '*' },
    { action: 'autoscaling:SetDesiredCapacity', resource: GROUP_ARN },
    { action: 'autoscaling:UpdateAutoScalingGroup', resource: GROUP_ARN },
    { action: 'logs:CreateLogStream', resource: logGroupArn },
    { action: 'logs:PutLogEvents', resource: logGroupArn },
  ];
}

function logGroupId({ stack }: Synthesized): string {
  return logicalId(stack, stack.logGroup);
}

describe('resources', () => {
  it('creates exactly the function, its role, log group, schedule and their glue', () => {
    const types = Object.values(dev.template.toJSON().Resources as Record<string, any>)
      .map((resource) => resource.Type)
      .sort();

    assert.deepEqual(types, [
      'AWS::Events::Rule',
      'AWS::IAM::Role',
      'AWS::Lambda::EventInvokeConfig',
      'AWS::Lambda::Function',
      'AWS::Lambda::Permission',
      'AWS::Logs::LogGroup',
    ]);
  });

  it('names each stack after its environment', () => {
    assert.equal(dev.stack.stackName, 'kafka-lag-scaler-dev');
    assert.equal(prod.stack.stackName, 'kafka-lag-scaler-prod');
  });

  it('outputs the function, rule and log group names', () => {
    const outputs = dev.template.toJSON().Outputs as Record<string, any>;

    assert.deepEqual(Object.keys(outputs).sort(), ['FunctionName', 'LogGroupName', 'RuleName']);
    assert.deepEqual(outputs.FunctionName.Value, {
      Ref: logicalId(dev.stack, dev.stack.function),
    });
    assert.deepEqual(outputs.RuleName.Value, { Ref: logicalId(dev.stack, dev.stack.rule) });
    assert.deepEqual(outputs.LogGroupName.Value, { Ref: logGroupId(dev) });
  });
});

describe('function', () => {
  it('runs the cargo-lambda binary on provided.al2023, arm64 by default', () => {
    const fn = onlyResource(dev.template, 'AWS::Lambda::Function').Properties;

    assert.equal(fn.Runtime, 'provided.al2023');
    assert.equal(fn.Handler, 'bootstrap');
    assert.deepEqual(fn.Architectures, ['arm64']);
  });

  it('builds for x86_64 when the environment asks for it', () => {
    const x86 = synthesize({ ...loadEnvironment('dev'), architecture: 'x86_64' });
    const fn = onlyResource(x86.template, 'AWS::Lambda::Function').Properties;

    assert.deepEqual(fn.Architectures, ['x86_64']);
  });

  it('has 128 MB and a timeout longer than its own 30-second budget', () => {
    const fn = onlyResource(dev.template, 'AWS::Lambda::Function').Properties;

    assert.equal(fn.MemorySize, 128);
    assert.equal(fn.Timeout, 60);
    assert.ok(fn.Timeout > 30);
  });

  it('never runs twice at once', () => {
    const fn = onlyResource(dev.template, 'AWS::Lambda::Function').Properties;

    assert.equal(fn.ReservedConcurrentExecutions, 1);
  });

  it('never retries an asynchronous invocation, nor runs a stale one', () => {
    const config = onlyResource(dev.template, 'AWS::Lambda::EventInvokeConfig').Properties;

    assert.equal(config.MaximumRetryAttempts, 0);
    assert.equal(config.MaximumEventAgeInSeconds, 60);
    assert.equal(config.Qualifier, '$LATEST');
    dev.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: FUNCTION,
    });
  });

  it('logs JSON at INFO into its own log group', () => {
    const fn = onlyResource(dev.template, 'AWS::Lambda::Function').Properties;

    assert.deepEqual(fn.LoggingConfig, {
      LogFormat: 'JSON',
      ApplicationLogLevel: 'INFO',
      SystemLogLevel: 'INFO',
      LogGroup: { Ref: logGroupId(dev) },
    });
  });

  it('refuses to build from an invalid configuration', () => {
    const broken = { ...loadEnvironment('prod'), timeoutSeconds: 30 };

    assert.throws(() => synthesize(broken), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /timeoutSeconds `30` must be an integer from 31 to 900/);
      return true;
    });
  });
});

describe('log group', () => {
  it('keeps logs for the environment\'s retention and is deleted with the stack', () => {
    const devGroup = onlyResource(dev.template, 'AWS::Logs::LogGroup');
    const prodGroup = onlyResource(prod.template, 'AWS::Logs::LogGroup');

    assert.equal(devGroup.Properties.RetentionInDays, 7);
    assert.equal(prodGroup.Properties.RetentionInDays, 30);
    assert.equal(prodGroup.DeletionPolicy, 'Delete');
    assert.equal(prodGroup.UpdateReplacePolicy, 'Delete');
  });
});

describe('schedule', () => {
  it('runs every 5 minutes by default, through the ScheduleExpression parameter', () => {
    const rule = onlyResource(dev.template, 'AWS::Events::Rule').Properties;
    const parameters = dev.template.toJSON().Parameters;

    assert.deepEqual(rule.ScheduleExpression, { Ref: 'ScheduleExpression' });
    assert.equal(parameters.ScheduleExpression.Default, 'rate(5 minutes)');
    assert.equal(rule.State, 'ENABLED');
  });

  it('targets only the function, with no retry and a short maximum event age', () => {
    const rule = onlyResource(dev.template, 'AWS::Events::Rule').Properties;
    const functionId = logicalId(dev.stack, dev.stack.function);

    assert.equal(rule.Targets.length, 1);
    assert.deepEqual(rule.Targets[0].Arn, { 'Fn::GetAtt': [functionId, 'Arn'] });
    assert.deepEqual(rule.Targets[0].RetryPolicy, {
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 60,
    });
  });

  it('lets only this rule invoke the function', () => {
    const permission = onlyResource(dev.template, 'AWS::Lambda::Permission').Properties;
    const ruleId = logicalId(dev.stack, dev.stack.rule);

    assert.equal(permission.Action, 'lambda:InvokeFunction');
    assert.equal(permission.Principal, 'events.amazonaws.com');
    assert.deepEqual(permission.SourceArn, { 'Fn::GetAtt': [ruleId, 'Arn'] });
  });
});

describe('role', () => {
  it('grants exactly describe on *, resize on the one group, and writes to its log group', () => {
    assert.deepEqual(allGrants(dev.template), expectedGrants(logGroupId(dev)));
  });

  it('can be assumed by Lambda only and has no managed policy', () => {
    const role = onlyResource(dev.template, 'AWS::IAM::Role').Properties;

    assert.deepEqual(role.AssumeRolePolicyDocument.Statement, [{
      Action: 'sts:AssumeRole',
      Effect: 'Allow',
      Principal: { Service: 'lambda.amazonaws.com' },
    }]);
    assert.equal(role.ManagedPolicyArns, undefined);
  });

  it('would fail the exact-grant check if a fourth autoscaling action appeared', () => {
    const widened = synthesize('dev', (stack) => stack.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['autoscaling:TerminateInstanceInAutoScalingGroup'],
        resources: ['*'],
      }),
    ));

    assert.notDeepEqual(allGrants(widened.template), expectedGrants(logGroupId(widened)));
  });

  it('would fail the exact-grant check if resizing were allowed on every group', () => {
    const widened = synthesize('dev', (stack) => stack.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['autoscaling:UpdateAutoScalingGroup', 'autoscaling:SetDesiredCapacity'],
        resources: ['*'],
      }),
    ));

    assert.notDeepEqual(allGrants(widened.template), expectedGrants(logGroupId(widened)));
  });

  it('would fail the exact-grant check if a managed policy were attached', () => {
    const widened = synthesize('dev', (stack) => stack.role.addManagedPolicy(
      iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaBasicExecutionRole'),
    ));

    assert.notDeepEqual(allGrants(widened.template), expectedGrants(logGroupId(widened)));
  });
});
