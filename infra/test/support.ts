import { App, CfnElement, Stack } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { Template } from 'aws-cdk-lib/assertions';
import { addScalerStack } from '../lib/app';
import { EnvironmentConfig } from '../lib/config';
import { loadEnvironment } from '../lib/environments';
import { KafkaLagScalerStack } from '../lib/scaler-stack';

export interface Synthesized {
  readonly stack: KafkaLagScalerStack;
  readonly template: Template;
}

/**
 * Builds the stack exactly as `bin/` does, but with the standard CDK context that
 * skips asset bundling, so no test waits for `cargo lambda build`. The real build
 * is exercised by `npm run synth:check`.
 */
export function synthesize(
  environment: string | EnvironmentConfig,
  customize?: (stack: KafkaLagScalerStack) => void,
): Synthesized {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const config = typeof environment === 'string' ? loadEnvironment(environment) : environment;
  const stack = addScalerStack(app, config);
  customize?.(stack);
  return { stack, template: Template.fromStack(stack) };
}

/** One resource of the given type; fails unless there is exactly one. */
export function onlyResource(template: Template, type: string): Resource {
  const found = Object.values(template.findResources(type));
  if (found.length !== 1) {
    throw new Error(`expected exactly one ${type}, found ${found.length}`);
  }
  return found[0] as Resource;
}

export interface Resource {
  readonly Type: string;
  readonly Properties: Record<string, any>;
  readonly Metadata?: Record<string, any>;
  readonly DeletionPolicy?: string;
  readonly UpdateReplacePolicy?: string;
}

/** One permission: an action allowed on one resource (as a literal or intrinsic). */
export interface Grant {
  readonly action: string;
  readonly resource: unknown;
}

/**
 * Every action/resource pair allowed by any IAM policy in the template: inline role
 * policies, `AWS::IAM::Policy` and `AWS::IAM::ManagedPolicy` resources, sorted so that
 * two templates with the same permissions compare equal. Managed policy ARNs attached
 * to a role are returned as grants of `*` on that ARN, so they can never pass unseen.
 */
export function allGrants(template: Template): Grant[] {
  const documents: any[] = [];
  const grants: Grant[] = [];
  for (const role of Object.values(template.findResources('AWS::IAM::Role'))) {
    for (const policy of role.Properties.Policies ?? []) {
      documents.push(policy.PolicyDocument);
    }
    for (const arn of role.Properties.ManagedPolicyArns ?? []) {
      grants.push({ action: '*', resource: { ManagedPolicyArn: arn } });
    }
  }
  for (const type of ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy']) {
    for (const policy of Object.values(template.findResources(type))) {
      documents.push(policy.Properties.PolicyDocument);
    }
  }
  for (const document of documents) {
    for (const statement of document.Statement) {
      if (statement.Effect !== 'Allow') {
        continue;
      }
      // NotAction and NotResource allow nearly everything; surface them as such.
      const actions = statement.Action ?? `NotAction ${JSON.stringify(statement.NotAction)}`;
      const resources = statement.Resource
        ?? `NotResource ${JSON.stringify(statement.NotResource)}`;
      for (const action of [actions].flat()) {
        for (const resource of [resources].flat()) {
          grants.push({ action, resource });
        }
      }
    }
  }
  const key = (grant: Grant): string => JSON.stringify([grant.action, grant.resource]);
  return grants.sort((a, b) => key(a).localeCompare(key(b)));
}

/** The logical id of an L2 construct's CloudFormation resource. */
export function logicalId(stack: Stack, construct: IConstruct): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnElement);
}
