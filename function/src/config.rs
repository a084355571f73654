//! Configuration: read the environment once per cold start, then parse the values with a
//! pure function so that tests never touch the process environment.
//!
//! Every error names the variable, the value that was refused and what would be valid.

use std::time::Duration;

use percent_encoding::percent_decode_str;
use reqwest::Url;
use thiserror::Error;

use secrecy::SecretString;

use crate::auth::PrometheusAuth;
use crate::format::WebhookFormat;
use crate::secrets::SecretValues;
use crate::window::Windows;

/// How several usable series combine into one lag figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// The largest series decides (default): one stuck consumer group is enough.
    Max,
    /// The series are added together.
    Sum,
}

impl Aggregation {
    /// The name used in `LAG_AGGREGATION`.
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Max => "max",
            Aggregation::Sum => "sum",
        }
    }
}

/// Basic-auth credentials taken out of `PROMETHEUS_ENDPOINT` (`user:pass@host`).
#[derive(Debug, Clone)]
pub struct BasicAuth {
    pub username: String,
    pub password: SecretString,
}

/// Where and how to query Prometheus.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    /// The full `/api/v1/query` URL, with any credentials removed.
    pub query_url: Url,
    pub query: String,
    /// `PROMETHEUS_AUTH` with its credentials, and `PROMETHEUS_HEADERS`.
    pub auth: PrometheusAuth,
    pub timeout: Duration,
    pub aggregation: Aggregation,
}

/// The thresholds and capacities that the policy works with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Lag strictly above this starts the group.
    pub high: u64,
    /// Lag strictly below this returns the group to standby.
    pub low: u64,
    /// MinSize and DesiredCapacity while active.
    pub scale_out_capacity: i32,
    /// MinSize and DesiredCapacity while standing by.
    pub scale_in_capacity: i32,
}

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub prometheus: PrometheusConfig,
    pub asg_name: String,
    pub webhook_url: Option<SecretString>,
    /// The body the webhook is sent (`WEBHOOK_FORMAT`, `auto` resolved from the URL).
    pub webhook_format: WebhookFormat,
    pub thresholds: Thresholds,
    pub dry_run: bool,
    /// The sustained-breach windows (`SCALE_OUT_SUSTAIN`, `SCALE_IN_SUSTAIN`, `SUSTAIN_STEP`).
    pub windows: Windows,
}

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("{variable} is not set; {expected}")]
    Missing {
        variable: &'static str,
        expected: &'static str,
    },
    #[error("{variable} is `{value}`; {expected}")]
    Invalid {
        variable: &'static str,
        value: String,
        expected: String,
    },
    /// A bad value that may itself be a secret (a token pasted where its ARN belongs, a header
    /// value), so the error describes it instead of quoting it.
    #[error("{variable} {problem} (the value is not shown: it may be a secret); {expected}")]
    Hidden {
        variable: &'static str,
        problem: String,
        expected: String,
    },
}

pub const DEFAULT_HIGH_LAG_THRESHOLD: u64 = 10_000_000;
pub const DEFAULT_LOW_LAG_THRESHOLD: u64 = 100_000;
pub const DEFAULT_SCALE_OUT_CAPACITY: i32 = 4;
pub const DEFAULT_SCALE_IN_CAPACITY: i32 = 0;
pub const DEFAULT_PROMETHEUS_TIMEOUT_SECONDS: u64 = 10;
/// The run's work ends 5 s before its 30 s budget (time kept for its message), and the lag
/// query runs beside a Describe: a timeout above 20 s could never fire as its own error.
const MAX_PROMETHEUS_TIMEOUT_SECONDS: u64 = 20;
const QUERY_PATH: &str = "api/v1/query";

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::parse(|name| std::env::var(name).ok())
    }

    /// Parses the configuration from a lookup of variable names. Empty values count as unset.
    /// It reads no secret, so a `*_SECRET_ARN` variable is refused: see
    /// [`crate::secrets::load_config`].
    pub fn parse(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::parse_with(lookup, &SecretValues::default())
    }

    /// Parses the configuration with the secrets its `*_SECRET_ARN` variables name, already
    /// read from Secrets Manager.
    pub fn parse_with(
        lookup: impl Fn(&str) -> Option<String>,
        secrets: &SecretValues,
    ) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());

        let endpoint = get("PROMETHEUS_ENDPOINT").ok_or(ConfigError::Missing {
            variable: "PROMETHEUS_ENDPOINT",
            expected: "set it to the Prometheus base URL, e.g. `http://prometheus:9090`",
        })?;
        let (query_url, basic_auth) = parse_endpoint(&endpoint)?;
        let auth = PrometheusAuth::parse(&get, &query_url, basic_auth, secrets)?;

        let query = get("PROMETHEUS_QUERY").ok_or(ConfigError::Missing {
            variable: "PROMETHEUS_QUERY",
            expected: "set it to a PromQL instant query that returns the consumer lag",
        })?;
        let asg_name = get("ASG_NAME").ok_or(ConfigError::Missing {
            variable: "ASG_NAME",
            expected: "set it to the name of the Auto Scaling Group to drive",
        })?;
        let asg_name = asg_name.trim().to_owned();
        if asg_name.chars().count() > 255 {
            return Err(invalid(
                "ASG_NAME",
                &asg_name,
                "a group name of at most 255 characters",
            ));
        }

        let webhook_url = get("WEBHOOK_URL")
            .map(|raw| parse_webhook(&raw))
            .transpose()?;
        let webhook_url = secrets.webhook_url(&get, webhook_url)?;
        let webhook_format = WebhookFormat::parse(&get, webhook_url.as_ref())?;

        let high = parse_count(
            &get,
            "HIGH_LAG_THRESHOLD",
            DEFAULT_HIGH_LAG_THRESHOLD,
            LAG_EXPECTED,
        )?;
        let low = parse_count(
            &get,
            "LOW_LAG_THRESHOLD",
            DEFAULT_LOW_LAG_THRESHOLD,
            LAG_EXPECTED,
        )?;
        if high < low {
            return Err(out_of_order(
                &get,
                ("LOW_LAG_THRESHOLD", low.to_string(), "must not exceed"),
                ("HIGH_LAG_THRESHOLD", high.to_string(), "must not be below"),
            ));
        }
        if low == 0 {
            return Err(ConfigError::Invalid {
                variable: "LOW_LAG_THRESHOLD",
                value: "0".to_owned(),
                expected: "lag is never below 0, so the group would never return to standby; \
                           use at least 1"
                    .to_owned(),
            });
        }
        let scale_out_capacity =
            parse_capacity(&get, "SCALE_OUT_CAPACITY", DEFAULT_SCALE_OUT_CAPACITY)?;
        let scale_in_capacity =
            parse_capacity(&get, "SCALE_IN_CAPACITY", DEFAULT_SCALE_IN_CAPACITY)?;
        if scale_out_capacity <= scale_in_capacity {
            return Err(out_of_order(
                &get,
                (
                    "SCALE_OUT_CAPACITY",
                    scale_out_capacity.to_string(),
                    "must be greater than",
                ),
                (
                    "SCALE_IN_CAPACITY",
                    scale_in_capacity.to_string(),
                    "must be below",
                ),
            ));
        }

        let aggregation = match get("LAG_AGGREGATION").map(|v| v.trim().to_ascii_lowercase()) {
            None => Aggregation::Max,
            Some(value) if value == "max" => Aggregation::Max,
            Some(value) if value == "sum" => Aggregation::Sum,
            Some(value) => return Err(invalid("LAG_AGGREGATION", &value, "`max` or `sum`")),
        };
        let dry_run = match get("DRY_RUN").map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(value) if value == "true" => true,
            Some(value) if value == "false" => false,
            Some(value) => return Err(invalid("DRY_RUN", &value, "`true` or `false`")),
        };
        let timeout_expected =
            format!("a whole number of seconds from 1 to {MAX_PROMETHEUS_TIMEOUT_SECONDS}");
        let timeout_seconds = parse_count(
            &get,
            "PROMETHEUS_TIMEOUT_SECONDS",
            DEFAULT_PROMETHEUS_TIMEOUT_SECONDS,
            &timeout_expected,
        )?;
        if !(1..=MAX_PROMETHEUS_TIMEOUT_SECONDS).contains(&timeout_seconds) {
            return Err(invalid(
                "PROMETHEUS_TIMEOUT_SECONDS",
                &timeout_seconds.to_string(),
                &timeout_expected,
            ));
        }

        let windows = Windows::parse(&get, &query)?;

        Ok(Config {
            prometheus: PrometheusConfig {
                query_url,
                query,
                auth,
                timeout: Duration::from_secs(timeout_seconds),
                aggregation,
            },
            asg_name,
            webhook_url,
            webhook_format,
            thresholds: Thresholds {
                high,
                low,
                scale_out_capacity,
                scale_in_capacity,
            },
            dry_run,
            windows,
        })
    }
}

fn invalid(variable: &'static str, value: &str, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        variable,
        value: value.to_owned(),
        expected: format!("expected {expected}"),
    }
}

/// What a lag threshold may be.
const LAG_EXPECTED: &str = "a whole number of 0 or more, e.g. `10000000`";

fn parse_count(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u64,
    expected: &str,
) -> Result<u64, ConfigError> {
    let Some(raw) = get(variable) else {
        return Ok(default);
    };
    let digits: String = raw.trim().chars().filter(|c| *c != '_').collect();
    digits
        .parse::<u64>()
        .map_err(|_| invalid(variable, &raw, expected))
}

/// The error for a pair of variables out of order: each is `(name, value, what it must be
/// to the other)`. It blames `first` when it was set, `second` when only that one was, and
/// says when the other is its default.
fn out_of_order(
    get: &impl Fn(&str) -> Option<String>,
    first: (&'static str, String, &str),
    second: (&'static str, String, &str),
) -> ConfigError {
    let ((variable, value, rule), (other, other_value, _)) = if get(first.0).is_some() {
        (first, second)
    } else {
        (second, first)
    };
    let note = if get(other).is_some() {
        ""
    } else {
        ", its default"
    };
    ConfigError::Invalid {
        variable,
        value,
        expected: format!("it {rule} {other} ({other_value}{note})"),
    }
}

fn parse_capacity(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: i32,
) -> Result<i32, ConfigError> {
    let Some(raw) = get(variable) else {
        return Ok(default);
    };
    raw.trim().parse::<u16>().map(i32::from).map_err(|_| {
        invalid(
            variable,
            &raw,
            "a whole number of instances from 0 to 65535",
        )
    })
}

/// Turns the endpoint into the query URL and takes any `user:pass@` out of it, so that the
/// URL kept for messages and errors never holds a credential.
fn parse_endpoint(raw: &str) -> Result<(Url, Option<BasicAuth>), ConfigError> {
    let variable = "PROMETHEUS_ENDPOINT";
    let mut url = Url::parse(raw.trim()).map_err(|e| {
        invalid(
            variable,
            &redact_url_text(raw),
            &format!("an http(s) URL ({e})"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(
            variable,
            &redact_url_text(raw),
            "an http(s) URL with a host, e.g. `https://prometheus.example.com`",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            variable,
            &redact_url_text(raw),
            "a URL without `?query` or `#fragment`; put the PromQL in PROMETHEUS_QUERY",
        ));
    }

    let basic_auth = if url.username().is_empty() && url.password().is_none() {
        None
    } else {
        let decode = |part: &str| percent_decode_str(part).decode_utf8_lossy().into_owned();
        let username = decode(url.username());
        let password = url.password().map(decode).unwrap_or_default();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Some(BasicAuth {
            username,
            password: SecretString::from(password),
        })
    };

    // An `@` past the host is a password with an unencoded `/`, `?` or `#` in it, cut at
    // that character: the URL parser read part of it as the path.
    if url.path().contains('@') {
        return Err(invalid(
            variable,
            &redact_url_text(raw),
            "a URL whose credentials are percent-encoded: `/` is `%2F`, `?` is `%3F`, \
             `#` is `%23`, `@` is `%40`",
        ));
    }

    // The base URL, the API root or the query URL itself all mean the same endpoint.
    let path = url.path().trim_end_matches('/').to_owned();
    let base = path
        .strip_suffix(&format!("/{QUERY_PATH}"))
        .or_else(|| path.strip_suffix("/api/v1"))
        .unwrap_or(&path)
        .to_owned();
    if base.contains("/api/v1/") || base.ends_with("/api/v1") {
        return Err(invalid(
            variable,
            &redact_url_text(raw),
            "the Prometheus base URL (the scaler adds `/api/v1/query`), not another API path",
        ));
    }
    url.set_path(&format!("{base}/{QUERY_PATH}"));
    Ok((url, basic_auth))
}

fn parse_webhook(raw: &str) -> Result<SecretString, ConfigError> {
    let url = Url::parse(raw.trim());
    match url {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
            Ok(SecretString::from(url.to_string()))
        }
        _ => Err(invalid(
            "WEBHOOK_URL",
            &redact_url_text(raw),
            "an http(s) URL, or leave it empty for no messages",
        )),
    }
}

/// Shows a URL the operator wrote without its secrets: only the scheme and host survive,
/// and text that does not parse as a URL is hidden altogether. An `@` after the host means a
/// password with an unencoded `/`, `?` or `#` in it, which the parser cut there: what it took
/// for the host is then part of that password, and is hidden too.
pub fn redact_url_text(raw: &str) -> String {
    match Url::parse(raw.trim()) {
        Ok(url) if url[url::Position::AfterHost..].contains('@') => {
            format!(
                "{}://<hidden: credentials not percent-encoded>/…",
                url.scheme()
            )
        }
        Ok(url) => match url.host_str() {
            Some(host) => format!("{}://{host}/…", url.scheme()),
            None => format!("{}:…", url.scheme()),
        },
        Err(_) => "<hidden: not a URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::auth::AuthMode;

    fn parse_with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env: HashMap<String, String> = [
            ("PROMETHEUS_ENDPOINT", "http://prometheus:9090"),
            (
                "PROMETHEUS_QUERY",
                "sum(kafka_consumergroup_lag) by (consumergroup, topic)",
            ),
            ("ASG_NAME", "kafka-fallback"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (key, value) in pairs {
            if value.is_empty() {
                env.remove(*key);
            } else {
                env.insert(key.to_string(), value.to_string());
            }
        }
        Config::parse(|name| env.get(name).cloned())
    }

    fn error_text(pairs: &[(&str, &str)]) -> String {
        parse_with(pairs)
            .expect_err("configuration should be refused")
            .to_string()
    }

    #[test]
    fn defaults_match_the_design() {
        let config = parse_with(&[]).unwrap();

        assert_eq!(config.thresholds.high, 10_000_000);
        assert_eq!(config.thresholds.low, 100_000);
        assert_eq!(config.thresholds.scale_out_capacity, 4);
        assert_eq!(config.thresholds.scale_in_capacity, 0);
        assert_eq!(config.prometheus.aggregation, Aggregation::Max);
        assert_eq!(config.prometheus.timeout, Duration::from_secs(10));
        assert!(!config.dry_run);
        assert!(config.webhook_url.is_none());
        assert_eq!(config.asg_name, "kafka-fallback");
    }

    #[test]
    fn every_value_can_be_set() {
        let config = parse_with(&[
            ("HIGH_LAG_THRESHOLD", "5000"),
            ("LOW_LAG_THRESHOLD", "10"),
            ("SCALE_OUT_CAPACITY", "7"),
            ("SCALE_IN_CAPACITY", "1"),
            ("LAG_AGGREGATION", "SUM"),
            ("DRY_RUN", "True"),
            ("PROMETHEUS_TIMEOUT_SECONDS", "3"),
            ("WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/abc"),
        ])
        .unwrap();

        assert_eq!(
            config.thresholds,
            Thresholds {
                high: 5000,
                low: 10,
                scale_out_capacity: 7,
                scale_in_capacity: 1
            }
        );
        assert_eq!(config.prometheus.aggregation, Aggregation::Sum);
        assert!(config.dry_run);
        assert_eq!(config.prometheus.timeout, Duration::from_secs(3));
        assert_eq!(
            config.webhook_url.unwrap().expose_secret(),
            "https://hooks.slack.com/services/T0/B0/abc"
        );
    }

    #[test]
    fn endpoint_forms_all_reach_the_query_path() {
        let cases = [
            ("http://prom:9090", "http://prom:9090/api/v1/query"),
            ("http://prom:9090/", "http://prom:9090/api/v1/query"),
            (
                "http://prom:9090/api/v1/query",
                "http://prom:9090/api/v1/query",
            ),
            (
                "http://prom:9090/api/v1/query/",
                "http://prom:9090/api/v1/query",
            ),
            (
                "https://mimir.example/prometheus",
                "https://mimir.example/prometheus/api/v1/query",
            ),
            ("http://prom:9090/api/v1", "http://prom:9090/api/v1/query"),
            (
                "https://mimir.example/prometheus/api/v1/",
                "https://mimir.example/prometheus/api/v1/query",
            ),
        ];
        for (endpoint, expected) in cases {
            let config = parse_with(&[("PROMETHEUS_ENDPOINT", endpoint)]).unwrap();
            assert_eq!(
                config.prometheus.query_url.as_str(),
                expected,
                "endpoint {endpoint}"
            );
        }
    }

    #[test]
    fn another_api_path_is_refused_rather_than_extended() {
        for endpoint in [
            "http://prom:9090/api/v1/query_range",
            "http://prom:9090/api/v1/series",
            "http://prom:9090/api/v1/api/v1/query",
        ] {
            let text = error_text(&[("PROMETHEUS_ENDPOINT", endpoint)]);
            assert!(
                text.contains("the Prometheus base URL (the scaler adds `/api/v1/query`)"),
                "{endpoint}: {text}"
            );
        }
    }

    #[test]
    fn a_password_with_an_unencoded_slash_is_refused_without_showing_it() {
        // `/` ends the authority, so the parser reads `scaler:123` as host and port and the
        // rest of the password as the path.
        let text = error_text(&[(
            "PROMETHEUS_ENDPOINT",
            "http://scaler:123/s3cr3t@prom.example:9090",
        )]);

        assert!(
            text.contains("credentials are percent-encoded: `/` is `%2F`"),
            "{text}"
        );
        assert!(!text.contains("s3cr3t"), "{text}");

        // Cut after an `@` of its own, the password's first part reads as the host.
        for endpoint in [
            "http://scaler:p@ssw/rd@prom.example",
            "http://scaler:p@ssw?rd@prom.example",
            "http://scaler:p@ssw#rd@prom.example",
        ] {
            let text = error_text(&[("PROMETHEUS_ENDPOINT", endpoint)]);
            assert!(!text.contains("ssw"), "{endpoint}: {text}");
            assert!(
                text.contains("<hidden: credentials not percent-encoded>"),
                "{text}"
            );
        }
    }

    #[test]
    fn credentials_in_the_endpoint_become_basic_auth_and_leave_the_url() {
        let config = parse_with(&[(
            "PROMETHEUS_ENDPOINT",
            "https://scaler:p%40ss%3Aword@prom.example/",
        )])
        .unwrap();

        let AuthMode::Basic(auth) = config.prometheus.auth.mode else {
            panic!("credentials in the URL should mean basic auth");
        };
        assert_eq!(auth.username, "scaler");
        assert_eq!(auth.password.expose_secret(), "p@ss:word");
        assert_eq!(
            config.prometheus.query_url.as_str(),
            "https://prom.example/api/v1/query"
        );
    }

    #[test]
    fn missing_required_variables_are_named() {
        for variable in ["PROMETHEUS_ENDPOINT", "PROMETHEUS_QUERY", "ASG_NAME"] {
            let text = error_text(&[(variable, "")]);
            assert!(
                text.starts_with(&format!("{variable} is not set")),
                "{text}"
            );
        }
    }

    #[test]
    fn whitespace_only_counts_as_unset() {
        assert!(error_text(&[("ASG_NAME", "   ")]).starts_with("ASG_NAME is not set"));
    }

    #[test]
    fn malformed_values_name_the_variable_the_value_and_what_is_valid() {
        let cases: &[(&str, &str, &str)] = &[
            ("HIGH_LAG_THRESHOLD", "ten", "whole number"),
            ("HIGH_LAG_THRESHOLD", "-5", "whole number"),
            ("HIGH_LAG_THRESHOLD", "1e7", "whole number"),
            ("LOW_LAG_THRESHOLD", "0.5", "whole number"),
            ("SCALE_OUT_CAPACITY", "-1", "from 0 to 65535"),
            ("SCALE_OUT_CAPACITY", "four", "from 0 to 65535"),
            ("SCALE_IN_CAPACITY", "70000", "from 0 to 65535"),
            ("LAG_AGGREGATION", "avg", "`max` or `sum`"),
            ("DRY_RUN", "yes", "`true` or `false`"),
            ("PROMETHEUS_TIMEOUT_SECONDS", "0", "from 1 to 20"),
            ("PROMETHEUS_TIMEOUT_SECONDS", "21", "from 1 to 20"),
            (
                "PROMETHEUS_TIMEOUT_SECONDS",
                "5s",
                "whole number of seconds from 1 to 20",
            ),
            (
                "PROMETHEUS_TIMEOUT_SECONDS",
                "1.5",
                "whole number of seconds from 1 to 20",
            ),
            ("PROMETHEUS_ENDPOINT", "prometheus:9090", "http(s) URL"),
            ("PROMETHEUS_ENDPOINT", "ftp://prometheus", "http(s) URL"),
            (
                "PROMETHEUS_ENDPOINT",
                "http://prom/?query=up",
                "PROMETHEUS_QUERY",
            ),
            ("WEBHOOK_URL", "hooks.slack.com/services/x", "http(s) URL"),
        ];
        for (variable, value, expected) in cases {
            let text = error_text(&[(variable, value)]);
            assert!(text.starts_with(variable), "{variable}={value}: {text}");
            assert!(text.contains(expected), "{variable}={value}: {text}");
            if *variable != "WEBHOOK_URL" && *variable != "PROMETHEUS_ENDPOINT" {
                assert!(
                    text.contains(&format!("`{value}`")),
                    "{variable}={value}: {text}"
                );
            }
        }
    }

    #[test]
    fn thresholds_must_be_ordered() {
        let text = error_text(&[
            ("HIGH_LAG_THRESHOLD", "1000"),
            ("LOW_LAG_THRESHOLD", "2000"),
        ]);
        assert_eq!(
            text,
            "LOW_LAG_THRESHOLD is `2000`; it must not exceed HIGH_LAG_THRESHOLD (1000)"
        );
    }

    #[test]
    fn a_pair_out_of_order_blames_the_one_that_was_set() {
        let cases = [
            (
                ("HIGH_LAG_THRESHOLD", "50000"),
                "HIGH_LAG_THRESHOLD is `50000`; it must not be below LOW_LAG_THRESHOLD (100000, \
                 its default)",
            ),
            (
                ("LOW_LAG_THRESHOLD", "20000000"),
                "LOW_LAG_THRESHOLD is `20000000`; it must not exceed HIGH_LAG_THRESHOLD \
                 (10000000, its default)",
            ),
            (
                ("SCALE_IN_CAPACITY", "5"),
                "SCALE_IN_CAPACITY is `5`; it must be below SCALE_OUT_CAPACITY (4, its default)",
            ),
            (
                ("SCALE_OUT_CAPACITY", "0"),
                "SCALE_OUT_CAPACITY is `0`; it must be greater than SCALE_IN_CAPACITY (0, its \
                 default)",
            ),
        ];
        for (pair, expected) in cases {
            assert_eq!(error_text(&[pair]), expected);
        }
    }

    #[test]
    fn a_low_threshold_of_zero_is_refused_as_it_never_returns_the_group() {
        let text = error_text(&[("LOW_LAG_THRESHOLD", "0")]);
        assert!(
            text.starts_with("LOW_LAG_THRESHOLD is `0`; lag is never below 0"),
            "{text}"
        );
    }

    #[test]
    fn equal_thresholds_are_allowed() {
        let config =
            parse_with(&[("HIGH_LAG_THRESHOLD", "500"), ("LOW_LAG_THRESHOLD", "500")]).unwrap();
        assert_eq!((config.thresholds.high, config.thresholds.low), (500, 500));
    }

    #[test]
    fn scale_out_capacity_must_exceed_scale_in_capacity() {
        let text = error_text(&[("SCALE_OUT_CAPACITY", "2"), ("SCALE_IN_CAPACITY", "2")]);
        assert_eq!(
            text,
            "SCALE_OUT_CAPACITY is `2`; it must be greater than SCALE_IN_CAPACITY (2)"
        );
    }

    #[test]
    fn secrets_never_appear_in_configuration_errors() {
        let text = error_text(&[("PROMETHEUS_ENDPOINT", "ftp://user:hunter2@prom/")]);
        assert!(!text.contains("hunter2"), "{text}");
        let text = error_text(&[("WEBHOOK_URL", "mailto:T0/B0/token-abc")]);
        assert!(!text.contains("token-abc"), "{text}");
        let config = parse_with(&[("PROMETHEUS_ENDPOINT", "http://u:hunter2@prom/")]).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
