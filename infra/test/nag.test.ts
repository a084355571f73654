import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { onlyResource, synthesize } from './support';

const NAG_FINDING = Match.stringLikeRegexp('AwsSolutions-');

describe('cdk-nag AwsSolutions checks', () => {
  for (const environment of ['dev', 'prod']) {
    it(`find no unacknowledged error or warning in ${environment}`, () => {
      const annotations = Annotations.fromStack(synthesize(environment).stack);

      assert.deepEqual(annotations.findError('*', NAG_FINDING), []);
      assert.deepEqual(annotations.findWarning('*', NAG_FINDING), []);
    });
  }

  it('leave no other synthesis error or warning either', () => {
    const annotations = Annotations.fromStack(synthesize('prod').stack);

    assert.deepEqual(annotations.findError('*', Match.anyValue()), []);
    assert.deepEqual(annotations.findWarning('*', Match.anyValue()), []);
  });

  it('do fail the stack when a new wildcard permission appears', () => {
    const { stack } = synthesize('dev', (scaler) => scaler.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['autoscaling:*'], resources: ['*'] }),
    ));

    const errors = Annotations.fromStack(stack).findError('*', NAG_FINDING);

    assert.ok(errors.some((error) => String(error.entry.data).includes(
      'AwsSolutions-IAM5[Action::autoscaling:*]')), JSON.stringify(errors));
  });

  it('are acknowledged only for the two wildcards the design requires', () => {
    const role = onlyResource(synthesize('dev').template, 'AWS::IAM::Role');
    const acknowledged = role.Metadata?.cdk_nag?.rules_to_suppress;

    assert.deepEqual(acknowledged.map((rule: any) => [rule.id, rule.applies_to]), [
      ['AwsSolutions-IAM5', ['Resource::*']],
      ['AwsSolutions-IAM5', [
        'Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>'
        + ':autoScalingGroup:*:autoScalingGroupName/<AsgName>',
      ]],
    ]);
    for (const rule of acknowledged) {
      assert.match(rule.reason, /^[A-Za-z`].{20,200}\.$/, 'one sentence of reason');
    }
  });

  it('are acknowledged on the role alone, not on the stack', () => {
    const resources = synthesize('dev').template.toJSON().Resources as Record<string, any>;
    const withAcknowledgements = Object.values(resources)
      .filter((resource) => resource.Metadata?.cdk_nag !== undefined)
      .map((resource) => resource.Type);

    assert.deepEqual(withAcknowledgements, ['AWS::IAM::Role']);
  });
});
