import { ConfigError, EnvironmentConfig, EnvironmentSettings, resolveEnvironment } from './config';

/** The environment `cdk` uses when no `-c env=NAME` is given. */
export const DEFAULT_ENVIRONMENT = 'dev';

/**
 * The lag of each consumer group and topic, summed over its partitions, with a partition that
 * kafka_exporter reports as `-1` (never committed) turned into `NaN` so that the sum stays
 * unknown instead of reading low (see the README's query section).
 */
const DEFAULT_QUERY = 'sum by (consumergroup, topic) '
  + '(kafka_consumergroup_lag >= 0 or kafka_consumergroup_lag * NaN)';

/**
 * One entry per deployment environment; `-c env=NAME` picks one. Values left out
 * take the defaults in `config.ts`. The group, endpoint, query and webhook are only
 * the stack parameters' defaults: override them at deploy time with `--parameters`.
 *
 * To add an environment, add an entry here; `npm test` checks that it resolves.
 */
export const ENVIRONMENTS: Readonly<Record<string, EnvironmentSettings>> = {
  dev: {
    asgName: 'kafka-consumers-fallback-dev',
    prometheusEndpoint: 'http://prometheus.dev.internal:9090',
    prometheusQuery: DEFAULT_QUERY,
    // Decide and announce, but never resize the group, until someone flips it.
    dryRun: true,
    schedule: 'rate(5 minutes)',
    logRetentionDays: 7,
  },
  prod: {
    asgName: 'kafka-consumers-fallback',
    prometheusEndpoint: 'http://prometheus.prod.internal:9090',
    prometheusQuery: DEFAULT_QUERY,
    highLagThreshold: 10_000_000,
    lowLagThreshold: 100_000,
    scaleOutCapacity: 4,
    scaleInCapacity: 0,
    dryRun: false,
    schedule: 'rate(5 minutes)',
    memoryMb: 128,
    timeoutSeconds: 60,
    logRetentionDays: 30,
  },
};

/** The named environment with its defaults applied; throws a `ConfigError` if invalid. */
export function loadEnvironment(name: string): EnvironmentConfig {
  const settings = Object.hasOwn(ENVIRONMENTS, name) ? ENVIRONMENTS[name] : undefined;
  if (settings === undefined) {
    const known = Object.keys(ENVIRONMENTS).map((env) => `\`${env}\``).join(', ');
    throw new ConfigError(name, [
      `there is no such environment: pass -c env=NAME with one of ${known}, `
      + 'or add it to infra/lib/environments.ts',
    ]);
  }
  return resolveEnvironment(name, settings);
}
