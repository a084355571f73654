/**
 * Value patterns shared by the environment configuration (checked at synth time)
 * and the CloudFormation parameters (checked by CloudFormation at deploy time),
 * so a default that synthesizes is always a default that deploys.
 *
 * Each pattern is written for a whole-string match, the way CloudFormation applies
 * `AllowedPattern` (Java `Matcher.matches`): no `^` or `$` inside.
 */

/** One cron field: digits, names (JAN, MON), and the `* ? , - / # L W` operators. */
const CRON_FIELD = '[0-9A-Za-z*?,/#-]+';

/**
 * An EventBridge schedule expression.
 *
 * - `rate(1 minute)`, `rate(1 hour)`, `rate(1 day)`: the value 1 takes the singular unit;
 * - `rate(N minutes|hours|days)` with N > 1 (no leading zero) takes the plural;
 * - `cron(...)` with exactly six space-separated fields
 *   (minutes, hours, day of month, month, day of week, year).
 *
 * EventBridge itself rejects `rate(1 minutes)` and `rate(5 minute)`; so does this.
 */
export const SCHEDULE_EXPRESSION_PATTERN =
  'rate\\((1 (minute|hour|day)|([2-9]|[1-9][0-9]+) (minutes|hours|days))\\)'
  + `|cron\\(${CRON_FIELD}( ${CRON_FIELD}){5}\\)`;

/**
 * An Auto Scaling group name: ASCII 33 to 126 without `:` (refused by Auto Scaling),
 * and without `*` or `?`, which IAM would read as wildcards in the group's ARN and so
 * widen the grant to other groups.
 */
export const ASG_NAME_PATTERN = '[!-)+-9;->@-~]+';

/** An http or https URL without whitespace. */
export const HTTP_URL_PATTERN = 'https?://[^\\s]+';

/** An http or https URL, or the empty string (meaning "not set"). */
export const OPTIONAL_HTTP_URL_PATTERN = `(${HTTP_URL_PATTERN})?`;

/** At least one character that is not whitespace; newlines are allowed. */
export const NON_BLANK_PATTERN = '[\\s\\S]*\\S[\\s\\S]*';

/** A non-negative integer of at most 15 digits (exact in every JSON and float parser). */
export const LAG_THRESHOLD_PATTERN = '[0-9]{1,15}';

/** A capacity of 0 to 9999 instances, without leading zeros. */
export const CAPACITY_PATTERN = '0|[1-9][0-9]{0,3}';

/** A capacity of 1 to 9999 instances, without leading zeros. */
export const POSITIVE_CAPACITY_PATTERN = '[1-9][0-9]{0,3}';

/**
 * Compiles a pattern the way CloudFormation applies it: the whole value must match.
 */
export function wholeMatch(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`);
}

/** True when `value` matches `pattern` from its first to its last character. */
export function matchesWhole(pattern: string, value: string): boolean {
  return wholeMatch(pattern).test(value);
}
