//! Sustained-breach windows: anti-flapping without state, evaluated by Prometheus in the run.
//!
//! With `SCALE_OUT_SUSTAIN=W`, a group at standby starts only when the lag has stayed above
//! `HIGH_LAG_THRESHOLD` for the whole of the last `W`; with `SCALE_IN_SUSTAIN=W`, an active
//! group returns only when the lag has stayed below `LOW_LAG_THRESHOLD` for the whole of `W`.
//! Each window is one more instant query, sent beside the lag query, over a subquery of the
//! configured query sampled every `SUSTAIN_STEP`:
//!
//! * scale out: `min_over_time((U)[W:S])`, keeping only the series whose usable samples cover
//!   the window (`count_over_time((U)[W:S]) >= W/S`), where `U` is the query's usable samples
//!   (`(Q) >= 0 <= MAX_LAG`, the largest Kafka offset). A series younger than the
//!   window has not been high for all of it, and one whose lag was unknown for part of it has
//!   not been seen high, so neither counts.
//! * scale in: `max_over_time((U)[W:S])` over every series, and only when every series the
//!   query returned in the window has usable samples covering all of it. A young series could
//!   have been high before anyone saw it, and unknown lag (`NaN`, `-1`) is never low, so either
//!   withholds the return until a whole window has been watched.
//!
//! The window answers are aggregated like the lag (`LAG_AGGREGATION`). Both directions err on
//! the side of doing nothing: the current reading still decides, the windows only confirm.
//! Coverage is exact to one step.

use std::time::Duration;

use crate::config::{ConfigError, Thresholds};
use crate::policy::{Action, Decision};
use crate::prometheus::{LagReading, LagSource, PrometheusError, MAX_LAG};

/// The subquery resolution unless `SUSTAIN_STEP` says otherwise: as fine as a typical
/// kafka_exporter scrape, cheap even for an hour's window.
pub const DEFAULT_SUSTAIN_STEP: Duration = Duration::from_secs(30);

/// Prometheus's own limit on points per series for a range query; a window past it is a
/// configuration mistake, not a query to send.
const MAX_STEPS: u64 = 11_000;

/// One configured window and the query that checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The variable that configures it, named when its query fails.
    pub variable: &'static str,
    pub duration: Duration,
    /// The PromQL that answers "was the lag past the threshold for the whole window".
    pub query: String,
}

/// The configured windows; `None` keeps the single-reading behaviour of the decision table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Windows {
    pub scale_out: Option<Window>,
    pub scale_in: Option<Window>,
}

/// What a window says about the action the table chose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Check {
    /// No window is configured for this direction.
    #[default]
    Off,
    /// The lag stayed past the threshold for the whole window.
    Sustained,
    /// It did not, or the samples do not cover the window; the text says which.
    NotSustained(String),
}

/// The answer of both windows for one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checks {
    pub scale_out: Check,
    pub scale_in: Check,
}

impl Windows {
    /// Reads `SCALE_OUT_SUSTAIN`, `SCALE_IN_SUSTAIN` and `SUSTAIN_STEP`, and builds the window
    /// queries over `query`, the configured lag query.
    pub fn parse(
        get: &impl Fn(&str) -> Option<String>,
        query: &str,
    ) -> Result<Windows, ConfigError> {
        let step = match get("SUSTAIN_STEP") {
            None => DEFAULT_SUSTAIN_STEP,
            Some(raw) => match parse_duration("SUSTAIN_STEP", &raw)? {
                Some(step) => step,
                None => return Err(invalid("SUSTAIN_STEP", &raw, "a step of 1s or more")),
            },
        };
        let window = |variable: &'static str, build: fn(&str, Duration, Duration) -> String| {
            let Some(raw) = get(variable) else {
                return Ok(None);
            };
            let Some(duration) = parse_duration(variable, &raw)? else {
                return Ok(None);
            };
            let steps = duration.as_secs() / step.as_secs();
            if steps == 0 {
                return Err(invalid(
                    variable,
                    &raw,
                    &format!("0, or a window of at least SUSTAIN_STEP ({})", show(step)),
                ));
            }
            if steps > MAX_STEPS {
                return Err(invalid(
                    variable,
                    &raw,
                    &format!(
                        "a window of at most {MAX_STEPS} steps of SUSTAIN_STEP ({}): shorten \
                         it or raise SUSTAIN_STEP",
                        show(step)
                    ),
                ));
            }
            Ok(Some(Window {
                variable,
                duration,
                query: build(query, duration, step),
            }))
        };
        Ok(Windows {
            scale_out: window("SCALE_OUT_SUSTAIN", scale_out_query)?,
            scale_in: window("SCALE_IN_SUSTAIN", scale_in_query)?,
        })
    }

    /// Sends the configured window queries concurrently and judges them against the
    /// thresholds. Without windows it returns at once, having sent nothing.
    pub async fn check<L: LagSource + Sync>(
        &self,
        source: &L,
        thresholds: &Thresholds,
    ) -> Result<Checks, PrometheusError> {
        let (scale_out, scale_in) = tokio::join!(
            read(
                source,
                self.scale_out.as_ref(),
                thresholds.high,
                judge_scale_out
            ),
            read(
                source,
                self.scale_in.as_ref(),
                thresholds.low,
                judge_scale_in
            ),
        );
        Ok(Checks {
            scale_out: scale_out?,
            scale_in: scale_in?,
        })
    }
}

async fn read<L: LagSource>(
    source: &L,
    window: Option<&Window>,
    threshold: u64,
    judge: fn(&LagReading, u64, Duration) -> Check,
) -> Result<Check, PrometheusError> {
    let Some(window) = window else {
        return Ok(Check::Off);
    };
    // A query the operator never wrote is named, so that its failure can be traced to them.
    let reading =
        source
            .read_query(&window.query)
            .await
            .map_err(|cause| PrometheusError::Window {
                variable: window.variable,
                cause: Box::new(cause),
            })?;
    tracing::debug!(query = %window.query, ?reading, "window read");
    Ok(judge(&reading, threshold, window.duration))
}

/// The subquery over the configured query. The newline ends a `# comment` that the query
/// may close with, so the parenthesis is not commented out.
fn subquery(query: &str, window: Duration, step: Duration) -> String {
    format!("({query}\n)[{}s:{}s]", window.as_secs(), step.as_secs())
}

/// The query's usable samples only: `NaN`, infinities, negative values (kafka_exporter's
/// `-1`) and values beyond any Kafka offset dropped, so that unknown lag neither counts towards
/// a window's coverage nor passes for a low or high figure (`min_over_time` and
/// `max_over_time` skip `NaN`, and `-1` sorts below any real lag).
fn usable(query: &str) -> String {
    format!("({query}\n) >= 0 <= {MAX_LAG}")
}

/// The lowest lag of each series whose usable samples cover the window.
pub fn scale_out_query(query: &str, window: Duration, step: Duration) -> String {
    let range = subquery(&usable(query), window, step);
    let steps = window.as_secs() / step.as_secs();
    format!("min_over_time({range}) and (count_over_time({range}) >= {steps})")
}

/// The highest lag of every series, and nothing unless every series the query returned during
/// the window has usable samples covering all of it: a series that was unknown for part of the
/// window, or for all of it, withholds the return.
pub fn scale_in_query(query: &str, window: Duration, step: Duration) -> String {
    let all = subquery(query, window, step);
    let range = subquery(&usable(query), window, step);
    let steps = window.as_secs() / step.as_secs();
    format!(
        "max_over_time({range}) and on() (min(count_over_time({range})) >= {steps}) \
         and on() (count(count_over_time({range})) == count(count_over_time({all})))"
    )
}

fn judge_scale_out(reading: &LagReading, high: u64, window: Duration) -> Check {
    let window = show(window);
    match reading {
        LagReading::Known(lowest) if lowest.value > high => Check::Sustained,
        LagReading::Known(lowest) => Check::NotSustained(format!(
            "the lowest lag over the last {window} was {}",
            lowest.value
        )),
        LagReading::NoData(_) => Check::NotSustained(format!(
            "no series has usable samples covering the last {window}"
        )),
    }
}

fn judge_scale_in(reading: &LagReading, low: u64, window: Duration) -> Check {
    let window = show(window);
    match reading {
        LagReading::Known(highest) if highest.discards.is_partial() => Check::NotSustained(
            format!("the last {window} may be partial ({})", highest.discards),
        ),
        LagReading::Known(highest) if highest.value < low => Check::Sustained,
        LagReading::Known(highest) => Check::NotSustained(format!(
            "the highest lag over the last {window} was {}",
            highest.value
        )),
        LagReading::NoData(_) => Check::NotSustained(format!(
            "usable samples do not yet cover the last {window} for every series (lag that \
             was NaN or negative counts as unknown, never as low)"
        )),
    }
}

/// Turns a start from standby or a return to standby that its window does not confirm into a
/// hold. Topping up a group that is part-way up is not a threshold crossing and stays as the
/// table decided it.
pub fn gate(decided: Decision, checks: &Checks, capacity: i32, standby: i32) -> Decision {
    let (check, past) = match decided.action {
        Action::ScaleOut { .. } if capacity <= standby => (&checks.scale_out, "above"),
        Action::ScaleIn { .. } => (&checks.scale_in, "below"),
        _ => return decided,
    };
    match check {
        Check::Off | Check::Sustained => decided,
        Check::NotSustained(why) => Decision {
            action: Action::Hold,
            reason: format!(
                "{}, but the lag has not stayed {past} the threshold for the whole window: {why}",
                decided.reason
            ),
        },
    }
}

fn show(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

fn invalid(variable: &'static str, value: &str, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        variable,
        value: value.to_owned(),
        expected: format!("expected {expected}"),
    }
}

/// A whole number of seconds such as `10m`, `90s` or `1h 30m`; `0` means no window.
fn parse_duration(variable: &'static str, raw: &str) -> Result<Option<Duration>, ConfigError> {
    let expected = "a duration such as `10m`, `90s` or `1h30m` in whole seconds, or `0`";
    let duration = humantime::parse_duration(raw.trim())
        .map_err(|error| invalid(variable, raw, &format!("{expected} ({error})")))?;
    if duration.subsec_nanos() != 0 {
        return Err(invalid(variable, raw, expected));
    }
    Ok((!duration.is_zero()).then_some(duration))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::policy::tests::group;
    use crate::policy::{self, Group, Lag};
    use crate::prometheus::{Discards, KnownLag};

    const QUERY: &str = r#"sum(kafka_consumergroup_lag{topic="orders"}) by (consumergroup)"#;
    const THRESHOLDS: Thresholds = Thresholds {
        high: 10_000_000,
        low: 100_000,
        scale_out_capacity: 4,
        scale_in_capacity: 0,
    };

    /// Refuses every query, as Prometheus refuses a subquery over a scalar.
    struct Refusing;

    impl LagSource for Refusing {
        async fn read_lag(&self) -> Result<LagReading, PrometheusError> {
            Err(PrometheusError::Query {
                endpoint: "http://prometheus:9090/api/v1/query".into(),
                status: reqwest::StatusCode::BAD_REQUEST,
                error_type: "bad_data".into(),
                error: "ranges only allowed for vector selectors".into(),
            })
        }
    }

    #[tokio::test]
    async fn a_failed_window_query_names_the_window_that_sent_it() {
        let windows = parse_with(&[("SCALE_IN_SUSTAIN", "10m")]).unwrap();

        let error = windows.check(&Refusing, &THRESHOLDS).await.unwrap_err();

        let text = error.to_string();
        assert!(
            text.starts_with("the SCALE_IN_SUSTAIN window query"),
            "{text}"
        );
        assert!(text.contains("bad_data: ranges only allowed"), "{text}");
    }

    fn parse_with(pairs: &[(&str, &str)]) -> Result<Windows, ConfigError> {
        let env: HashMap<&str, &str> = pairs.iter().copied().collect();
        Windows::parse(&|name| env.get(name).map(|v| (*v).to_owned()), QUERY)
    }

    fn duration_of(window: Option<Window>) -> Option<Duration> {
        window.map(|window| window.duration)
    }

    fn known(value: u64) -> LagReading {
        LagReading::Known(KnownLag {
            value,
            driver: "{consumergroup=\"cg-a\"}".into(),
            series: 1,
            discards: Discards::default(),
        })
    }

    fn not_sustained(why: &str) -> Check {
        Check::NotSustained(why.to_owned())
    }

    #[test]
    fn no_window_is_configured_by_default() {
        assert_eq!(parse_with(&[]).unwrap(), Windows::default());
        assert_eq!(
            parse_with(&[("SCALE_OUT_SUSTAIN", "0"), ("SCALE_IN_SUSTAIN", "0s")]).unwrap(),
            Windows::default()
        );
    }

    #[test]
    fn windows_are_read_as_human_durations() {
        let rows: &[(&str, u64)] = &[("10m", 600), ("90s", 90), ("1h 30m", 5400), ("1h30m", 5400)];
        for (raw, seconds) in rows {
            let windows = parse_with(&[("SCALE_OUT_SUSTAIN", raw), ("SCALE_IN_SUSTAIN", raw)]);
            let windows = windows.unwrap_or_else(|e| panic!("{raw}: {e}"));
            let expected = Some(Duration::from_secs(*seconds));
            assert_eq!(duration_of(windows.scale_out), expected, "{raw}");
            assert_eq!(duration_of(windows.scale_in), expected, "{raw}");
        }
    }

    #[test]
    fn malformed_windows_name_the_variable_the_value_and_what_is_valid() {
        let rows: &[(&str, &str, &str, &str)] = &[
            (
                "SCALE_OUT_SUSTAIN",
                "ten minutes",
                "such as `10m`",
                "not a duration",
            ),
            (
                "SCALE_OUT_SUSTAIN",
                "10",
                "such as `10m`",
                "a number without a unit",
            ),
            (
                "SCALE_IN_SUSTAIN",
                "-5m",
                "such as `10m`",
                "a negative duration",
            ),
            (
                "SCALE_IN_SUSTAIN",
                "90500ms",
                "whole seconds",
                "a fraction of a second",
            ),
            (
                "SCALE_OUT_SUSTAIN",
                "10s",
                "at least SUSTAIN_STEP (30s)",
                "shorter than a step",
            ),
            ("SUSTAIN_STEP", "0", "a step of 1s or more", "a zero step"),
            (
                "SUSTAIN_STEP",
                "1.5s",
                "such as `10m`",
                "a step that is not a duration",
            ),
        ];
        for (variable, value, expected, why) in rows {
            let text = parse_with(&[(variable, value)]).expect_err(why).to_string();
            assert!(
                text.starts_with(&format!("{variable} is `{value}`")),
                "{why}: {text}"
            );
            assert!(text.contains(expected), "{why}: {text}");
        }
    }

    #[test]
    fn a_window_of_more_steps_than_prometheus_allows_is_refused() {
        let text = parse_with(&[("SCALE_IN_SUSTAIN", "24h"), ("SUSTAIN_STEP", "1s")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            text,
            "SCALE_IN_SUSTAIN is `24h`; expected a window of at most 11000 steps of \
             SUSTAIN_STEP (1s): shorten it or raise SUSTAIN_STEP"
        );
    }

    #[test]
    fn the_scale_out_query_keeps_only_series_that_cover_the_window() {
        let windows = parse_with(&[("SCALE_OUT_SUSTAIN", "10m")]).unwrap();
        assert_eq!(
            windows.scale_out.unwrap().query,
            format!(
                "min_over_time((({QUERY}\n) >= 0 <= 9223372036854775807\n)[600s:30s]) and \
                 (count_over_time((({QUERY}\n) >= 0 <= 9223372036854775807\n)[600s:30s]) >= 20)"
            )
        );
        assert_eq!(windows.scale_in, None);
    }

    #[test]
    fn the_scale_in_query_needs_every_series_to_cover_the_window() {
        let windows = parse_with(&[("SCALE_IN_SUSTAIN", "8s"), ("SUSTAIN_STEP", "1s")]).unwrap();
        assert_eq!(
            windows.scale_in.unwrap().query,
            format!(
                "max_over_time((({QUERY}\n) >= 0 <= 9223372036854775807\n)[8s:1s]) and on() \
                 (min(count_over_time((({QUERY}\n) >= 0 <= 9223372036854775807\n)[8s:1s])) >= 8) \
                 and on() \
                 (count(count_over_time((({QUERY}\n) >= 0 <= 9223372036854775807\n)[8s:1s])) \
                 == count(count_over_time(({QUERY}\n)[8s:1s])))"
            )
        );
    }

    #[test]
    fn a_window_that_is_not_a_whole_number_of_steps_needs_the_whole_steps_it_holds() {
        let query = scale_out_query("q", Duration::from_secs(95), Duration::from_secs(30));
        assert_eq!(
            query,
            "min_over_time(((q\n) >= 0 <= 9223372036854775807\n)[95s:30s]) and \
             (count_over_time(((q\n) >= 0 <= 9223372036854775807\n)[95s:30s]) >= 3)"
        );
    }

    #[test]
    fn the_windows_judge_the_extreme_against_the_threshold() {
        let window = Duration::from_secs(600);
        let rows: &[(Check, Check, &str)] = &[
            (
                judge_scale_out(&known(10_000_001), 10_000_000, window),
                Check::Sustained,
                "lowest lag above HIGH",
            ),
            (
                judge_scale_out(&known(10_000_000), 10_000_000, window),
                not_sustained("the lowest lag over the last 10m was 10000000"),
                "lowest lag equal to HIGH",
            ),
            (
                judge_scale_out(&LagReading::NoData(Discards::default()), 1, window),
                not_sustained("no series has usable samples covering the last 10m"),
                "no series covers the window",
            ),
            (
                judge_scale_in(&known(99_999), 100_000, window),
                Check::Sustained,
                "highest lag below LOW",
            ),
            (
                judge_scale_in(&known(100_000), 100_000, window),
                not_sustained("the highest lag over the last 10m was 100000"),
                "highest lag equal to LOW",
            ),
            (
                judge_scale_in(&LagReading::NoData(Discards::default()), 1, window),
                not_sustained(
                    "usable samples do not yet cover the last 10m for every series (lag \
                     that was NaN or negative counts as unknown, never as low)",
                ),
                "a series younger than the window",
            ),
        ];
        for (check, expected, why) in rows {
            assert_eq!(check, expected, "{why}");
        }
    }

    #[test]
    fn a_partial_window_never_confirms_a_return() {
        let partial = LagReading::Known(KnownLag {
            value: 0,
            driver: "{}".into(),
            series: 1,
            discards: Discards {
                unusable_samples: 1,
                warnings: vec![],
            },
        });
        assert_eq!(
            judge_scale_in(&partial, 100_000, Duration::from_secs(60)),
            not_sustained(
                "the last 1m may be partial (1 sample(s) had no usable value (NaN, infinite, \
                 negative, beyond any Kafka offset, or none))"
            )
        );
    }

    fn lag(value: u64) -> Lag {
        Lag::Known {
            value,
            partial: false,
        }
    }

    #[test]
    fn an_unconfirmed_start_or_return_holds_and_says_why() {
        let checks = Checks {
            scale_out: not_sustained("the lowest lag over the last 8s was 50"),
            scale_in: not_sustained("the highest lag over the last 8s was 20000000"),
        };

        let start = policy::decide_within(lag(12_000_000), &checks, &group(0), &THRESHOLDS);
        let back = policy::decide_within(lag(40_000), &checks, &group(4), &THRESHOLDS);

        assert_eq!(start.action, Action::Hold);
        assert_eq!(
            start.reason,
            "lag 12000000 > 10000000 with 0 instance(s), but the lag has not stayed above the \
             threshold for the whole window: the lowest lag over the last 8s was 50"
        );
        assert_eq!(back.action, Action::Hold);
        assert!(
            back.reason.ends_with(
                "but the lag has not stayed below the threshold for the whole window: the \
                 highest lag over the last 8s was 20000000"
            ),
            "{}",
            back.reason
        );
    }

    #[test]
    fn confirmed_or_unconfigured_windows_leave_the_table_as_it_is() {
        for checks in [
            Checks::default(),
            Checks {
                scale_out: Check::Sustained,
                scale_in: Check::Sustained,
            },
        ] {
            for (value, c) in [(12_000_000, 0), (40_000, 4), (5_000_000, 2), (40_000, 0)] {
                assert_eq!(
                    policy::decide_within(lag(value), &checks, &group(c), &THRESHOLDS),
                    policy::decide(lag(value), &group(c), &THRESHOLDS),
                    "lag {value} with {c} instance(s), {checks:?}"
                );
            }
        }
    }

    #[test]
    fn topping_up_a_group_part_way_up_is_not_a_crossing_to_confirm() {
        let checks = Checks {
            scale_out: not_sustained("the lowest lag over the last 8s was 50"),
            scale_in: Check::Off,
        };
        for value in [12_000_000, 5_000_000] {
            let decided = policy::decide_within(lag(value), &checks, &group(2), &THRESHOLDS);
            assert_eq!(
                decided.action,
                Action::ScaleOut {
                    target: 4,
                    requested: None
                },
                "lag {value}"
            );
        }
    }

    #[test]
    fn an_unconfirmed_start_holds_before_a_suspended_launch_could_make_it_a_skip() {
        let checks = Checks {
            scale_out: not_sustained("the lowest lag over the last 8s was 50"),
            scale_in: Check::Off,
        };
        let suspended = Group {
            suspended_processes: vec!["Launch".into()],
            ..group(0)
        };

        let decided = policy::decide_within(lag(12_000_000), &checks, &suspended, &THRESHOLDS);

        assert_eq!(decided.action, Action::Hold, "{}", decided.reason);
    }
}
