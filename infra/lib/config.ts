import { CONNECTIVITY_DEFAULTS, ConnectivitySettings, validateConnectivity } from './connectivity';
import {
  ASG_NAME_PATTERN,
  HTTP_URL_PATTERN,
  SCHEDULE_EXPRESSION_PATTERN,
  matchesWhole,
} from './patterns';

/** CPU architecture of the function; cargo-lambda cross-compiles for it. */
export type Architecture = 'arm64' | 'x86_64';

/** How the function combines several lag series into one number. */
export type LagAggregation = 'max' | 'sum';

/** The shape of the chat messages (`WEBHOOK_FORMAT`); `auto` picks it from the URL's host. */
export type WebhookFormat = 'auto' | 'slack' | 'teams' | 'discord' | 'json' | 'text';

/**
 * A sustained-breach window as the function reads it: `0` (off), or whole seconds, minutes
 * and hours such as `90s`, `10m` or `1h30m`.
 */
const SUSTAIN_PATTERN = /^(0|([0-9]+[smh])+)$/;

/**
 * The windows the function accepts with its default 30-second `SUSTAIN_STEP`: at least one
 * step, at most Prometheus's 11,000 points (its `window.rs`).
 */
export const SUSTAIN_SECONDS_RANGE = [30, 11_000 * 30] as const;

/** Seconds in a window written as `SUSTAIN_PATTERN` allows; `undefined` when it does not. */
export function sustainSeconds(window: string): number | undefined {
  if (!SUSTAIN_PATTERN.test(window)) {
    return undefined;
  }
  const unit = { s: 1, m: 60, h: 3600 } as const;
  let seconds = 0;
  for (const [, count, suffix] of window.matchAll(/([0-9]+)([smh])/g)) {
    seconds += Number(count) * unit[suffix as keyof typeof unit];
  }
  return seconds;
}

/** Retention periods that CloudWatch Logs accepts, in days. */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
  2557, 2922, 3288, 3653,
] as const;

/**
 * The function keeps its whole run inside this many seconds; the Lambda timeout
 * must be longer, or a slow Prometheus would be cut off mid-decision.
 */
export const FUNCTION_TIME_BUDGET_SECONDS = 30;

/** The longest Prometheus timeout the function accepts (its `config.rs`). */
export const MAX_PROMETHEUS_TIMEOUT_SECONDS = 20;

/** Capacities stay within what the stack parameters' patterns accept. */
const MAX_CAPACITY = 9999;

/** Lambda limits on memory (MB) and timeout (seconds). */
const MEMORY_MB_RANGE = [128, 10240] as const;
const MAX_TIMEOUT_SECONDS = 900;

/**
 * Lengths chosen so that all environment variables together stay under Lambda's
 * 4 KB limit even when every parameter is at its maximum.
 */
export const MAX_LENGTH = {
  asgName: 255,
  prometheusEndpoint: 512,
  prometheusQuery: 2048,
  webhookUrl: 512,
} as const;

/**
 * Settings of one deployment environment as written in `environments.ts`.
 *
 * Only the first four have no default. Every value that is also a stack parameter
 * is just that parameter's default: `cdk deploy --parameters` overrides it.
 */
export interface EnvironmentSettings extends ConnectivitySettings {
  /**
   * AWS account to deploy to (12 digits).
   * @default - the account of the credentials `cdk deploy` runs with
   */
  readonly account?: string;
  /**
   * AWS Region to deploy to, such as `eu-west-1`.
   * @default - the Region of the credentials `cdk deploy` runs with
   */
  readonly region?: string;
  /** Name of the Auto Scaling group to drive (parameter `AsgName`). */
  readonly asgName: string;
  /** Prometheus base URL (parameter `PrometheusEndpoint`). */
  readonly prometheusEndpoint: string;
  /** PromQL instant query returning the lag (parameter `PrometheusQuery`). */
  readonly prometheusQuery: string;
  /**
   * Chat webhook URL (parameter `WebhookUrl`). Keep real URLs out of the repository:
   * they are secrets, pass them with `--parameters WebhookUrl=...`.
   * @default '' (no messages)
   */
  readonly webhookUrl?: string;
  /** @default 10000000 */
  readonly highLagThreshold?: number;
  /** @default 100000 */
  readonly lowLagThreshold?: number;
  /** @default 4 */
  readonly scaleOutCapacity?: number;
  /** @default 0 */
  readonly scaleInCapacity?: number;
  /** @default 'max' */
  readonly lagAggregation?: LagAggregation;
  /** @default false */
  readonly dryRun?: boolean;
  /**
   * How long the lag must stay above `highLagThreshold` before a group at standby starts
   * (`SCALE_OUT_SUSTAIN`), e.g. `10m`; `0` acts on the current reading alone.
   * @default '0'
   */
  readonly scaleOutSustain?: string;
  /**
   * How long the lag must stay below `lowLagThreshold` before an active group returns to
   * standby (`SCALE_IN_SUSTAIN`), e.g. `30m`; `0` acts on the current reading alone.
   * @default '0'
   */
  readonly scaleInSustain?: string;
  /** Message shape for the webhook (`WEBHOOK_FORMAT`). @default 'auto' */
  readonly webhookFormat?: WebhookFormat;
  /** @default 10 */
  readonly prometheusTimeoutSeconds?: number;
  /**
   * EventBridge schedule expression (parameter `ScheduleExpression`).
   * @default 'rate(5 minutes)'
   */
  readonly schedule?: string;
  /** @default 'arm64' */
  readonly architecture?: Architecture;
  /** @default 128 */
  readonly memoryMb?: number;
  /** Lambda timeout; must exceed the function's 30-second budget. @default 60 */
  readonly timeoutSeconds?: number;
  /** Days the function's logs are kept. @default 30 */
  readonly logRetentionDays?: number;
}

/** One environment with every default applied; what the stack is built from. */
export type EnvironmentConfig = Required<Omit<EnvironmentSettings, 'account' | 'region'>>
  & Pick<EnvironmentSettings, 'account' | 'region'>
  & {
    /** Short lowercase name (`dev`, `prod`); part of the stack name. */
    readonly name: string;
  };

/** Defaults shared by every environment; the function's own defaults where it has them. */
export const DEFAULTS = {
  ...CONNECTIVITY_DEFAULTS,
  webhookUrl: '',
  highLagThreshold: 10_000_000,
  lowLagThreshold: 100_000,
  scaleOutCapacity: 4,
  scaleInCapacity: 0,
  lagAggregation: 'max',
  dryRun: false,
  scaleOutSustain: '0',
  scaleInSustain: '0',
  webhookFormat: 'auto',
  prometheusTimeoutSeconds: 10,
  schedule: 'rate(5 minutes)',
  architecture: 'arm64',
  memoryMb: 128,
  timeoutSeconds: 60,
  logRetentionDays: 30,
} as const satisfies Partial<EnvironmentSettings>;

/** A configuration that cannot be deployed; the message lists every problem. */
export class ConfigError extends Error {
  constructor(readonly environment: string, readonly problems: readonly string[]) {
    super(
      `invalid configuration for environment \`${environment}\`:\n`
      + problems.map((problem) => `  - ${problem}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}

/** Applies the defaults to an environment's settings and validates the result. */
export function resolveEnvironment(name: string, settings: EnvironmentSettings): EnvironmentConfig {
  const config: EnvironmentConfig = { ...DEFAULTS, ...settings, name };
  const problems = validateConfig(config);
  if (problems.length > 0) {
    throw new ConfigError(name, problems);
  }
  return config;
}

/**
 * Every problem with a configuration, each naming the field, the bad value in
 * backticks, and what would be valid. Empty when the configuration is deployable.
 */
export function validateConfig(config: EnvironmentConfig): string[] {
  const problems: string[] = [];
  const check = (ok: boolean, field: string, value: unknown, remedy: string): void => {
    if (!ok) {
      problems.push(`${field} \`${String(value)}\` ${remedy}`);
    }
  };

  check(/^[a-z][a-z0-9-]{0,19}$/.test(config.name), 'name', config.name,
    'must be 1 to 20 lowercase letters, digits or hyphens, starting with a letter');
  if (config.account !== undefined) {
    check(/^[0-9]{12}$/.test(config.account), 'account', config.account,
      'must be a 12-digit AWS account id');
  }
  if (config.region !== undefined) {
    check(/^[a-z]{2}(-[a-z]+)+-[0-9]$/.test(config.region), 'region', config.region,
      'must be an AWS Region code such as `eu-west-1`');
  }

  check(isShortMatch(ASG_NAME_PATTERN, config.asgName, MAX_LENGTH.asgName),
    'asgName', config.asgName,
    'must be 1 to 255 printable ASCII characters without spaces, `:`, `*` or `?`');
  check(isShortMatch(HTTP_URL_PATTERN, config.prometheusEndpoint, MAX_LENGTH.prometheusEndpoint),
    'prometheusEndpoint', config.prometheusEndpoint,
    'must be an http:// or https:// URL without spaces, at most 512 characters');
  check(config.prometheusQuery.trim() !== ''
    && config.prometheusQuery.length <= MAX_LENGTH.prometheusQuery,
  'prometheusQuery', config.prometheusQuery,
  'must be a non-blank PromQL query of at most 2048 characters');
  check(config.webhookUrl === ''
    || isShortMatch(HTTP_URL_PATTERN, config.webhookUrl, MAX_LENGTH.webhookUrl),
  'webhookUrl', redactUrl(config.webhookUrl),
  'must be empty (no messages) or an http:// or https:// URL of at most 512 characters');

  check(isCount(config.highLagThreshold), 'highLagThreshold', config.highLagThreshold,
    'must be a non-negative integer');
  check(isCount(config.lowLagThreshold) && config.lowLagThreshold > 0,
    'lowLagThreshold', config.lowLagThreshold,
    'must be a positive integer (lag is never below 0, so 0 would never return the group)');
  check(config.highLagThreshold >= config.lowLagThreshold,
    'highLagThreshold', config.highLagThreshold,
    `must be >= lowLagThreshold \`${config.lowLagThreshold}\``);
  check(isCount(config.scaleInCapacity) && config.scaleInCapacity <= MAX_CAPACITY,
    'scaleInCapacity', config.scaleInCapacity, `must be an integer from 0 to ${MAX_CAPACITY}`);
  check(isCount(config.scaleOutCapacity) && config.scaleOutCapacity <= MAX_CAPACITY,
    'scaleOutCapacity', config.scaleOutCapacity, `must be an integer from 1 to ${MAX_CAPACITY}`);
  check(config.scaleOutCapacity > config.scaleInCapacity,
    'scaleOutCapacity', config.scaleOutCapacity,
    `must be > scaleInCapacity \`${config.scaleInCapacity}\``);

  check(['max', 'sum'].includes(config.lagAggregation), 'lagAggregation',
    config.lagAggregation, 'must be `max` or `sum`');
  check(typeof config.dryRun === 'boolean', 'dryRun', config.dryRun,
    'must be true or false');
  const [shortestWindow, longestWindow] = SUSTAIN_SECONDS_RANGE;
  for (const field of ['scaleOutSustain', 'scaleInSustain'] as const) {
    const seconds = sustainSeconds(config[field]);
    check(seconds === 0
      || (seconds !== undefined && seconds >= shortestWindow && seconds <= longestWindow),
    field, config[field],
    'must be `0` (off) or a duration such as `90s`, `10m` or `1h30m`, from '
      + `${shortestWindow} seconds to ${longestWindow / 3600} hours`);
  }
  check(['auto', 'slack', 'teams', 'discord', 'json', 'text'].includes(config.webhookFormat),
    'webhookFormat', config.webhookFormat,
    'must be `auto`, `slack`, `teams`, `discord`, `json` or `text`');
  check(isCount(config.prometheusTimeoutSeconds)
    && config.prometheusTimeoutSeconds >= 1
    && config.prometheusTimeoutSeconds <= MAX_PROMETHEUS_TIMEOUT_SECONDS,
  'prometheusTimeoutSeconds', config.prometheusTimeoutSeconds,
  `must be an integer from 1 to ${MAX_PROMETHEUS_TIMEOUT_SECONDS}, inside the function's `
    + `${FUNCTION_TIME_BUDGET_SECONDS}-second budget`);
  check(matchesWhole(SCHEDULE_EXPRESSION_PATTERN, config.schedule), 'schedule', config.schedule,
    'must be `rate(1 minute|hour|day)`, `rate(N minutes|hours|days)` with N > 1, '
    + 'or `cron(...)` with six fields');

  check(['arm64', 'x86_64'].includes(config.architecture), 'architecture',
    config.architecture, 'must be `arm64` or `x86_64`');
  check(isCount(config.memoryMb)
    && config.memoryMb >= MEMORY_MB_RANGE[0] && config.memoryMb <= MEMORY_MB_RANGE[1],
  'memoryMb', config.memoryMb,
  `must be an integer from ${MEMORY_MB_RANGE[0]} to ${MEMORY_MB_RANGE[1]}`);
  check(isCount(config.timeoutSeconds)
    && config.timeoutSeconds > FUNCTION_TIME_BUDGET_SECONDS
    && config.timeoutSeconds <= MAX_TIMEOUT_SECONDS,
  'timeoutSeconds', config.timeoutSeconds,
  `must be an integer from ${FUNCTION_TIME_BUDGET_SECONDS + 1} to ${MAX_TIMEOUT_SECONDS}, `
    + `longer than the function's ${FUNCTION_TIME_BUDGET_SECONDS}-second budget`);
  check((LOG_RETENTION_DAYS as readonly number[]).includes(config.logRetentionDays),
    'logRetentionDays', config.logRetentionDays,
    `must be one of ${LOG_RETENTION_DAYS.join(', ')}`);

  problems.push(...validateConnectivity(config));
  return problems;
}

function isCount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

function isShortMatch(pattern: string, value: string, maxLength: number): boolean {
  return value.length <= maxLength && matchesWhole(pattern, value);
}

/**
 * Keeps only the scheme and host of a webhook URL, so an error never prints the
 * secret part of it (the path, or credentials before `@`).
 */
function redactUrl(url: string): string {
  const match = /^(https?:\/\/)(?:[^/?#@\s]*@)?([^/?#@\s]*)/.exec(url);
  return match ? `${match[1]}${match[2]}/...` : '<hidden>';
}
