import { App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { EnvironmentConfig } from './config';
import { DEFAULT_ENVIRONMENT, loadEnvironment } from './environments';
import { KafkaLagScalerStack } from './scaler-stack';

/** The CloudFormation stack name of an environment, e.g. `kafka-lag-scaler-prod`. */
export function stackName(environment: string): string {
  return `kafka-lag-scaler-${environment}`;
}

/**
 * Adds the stack of one environment to the app, with cdk-nag's AWS Solutions checks
 * as an aspect: an unacknowledged finding is an error annotation, which fails
 * `cdk synth` and the tests.
 */
export function addScalerStack(app: App, config: EnvironmentConfig): KafkaLagScalerStack {
  const stack = new KafkaLagScalerStack(app, stackName(config.name), {
    config,
    stackName: stackName(config.name),
    description: `kafka-lag-scaler (${config.name}): raises an EC2 Auto Scaling group `
      + 'when Kafka consumer lag is very high, and returns it when lag is back to normal',
    env: config.account || config.region
      ? { account: config.account, region: config.region }
      : undefined,
  });
  Aspects.of(stack).add(new AwsSolutionsChecks({ verbose: true }));
  return stack;
}

/** The environment chosen with `-c env=NAME`, or the default one. */
export function selectedEnvironment(app: App): EnvironmentConfig {
  const name: unknown = app.node.tryGetContext('env') ?? DEFAULT_ENVIRONMENT;
  return loadEnvironment(String(name));
}
