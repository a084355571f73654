//! Chat messages: what a run announces, and the webhook that carries it.
//!
//! The webhook URL holds a token, so it never appears in a log line or an error: errors
//! name only its host.

use std::future::Future;
use std::time::{Duration, SystemTime};

use reqwest::header::RETRY_AFTER;
use reqwest::{Client, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;
use tokio::time::Instant;

use crate::config::Thresholds;
use crate::format::WebhookFormat;
use crate::prometheus::error_chain;

/// The longest one webhook request may take; the run's deadline may cut it shorter.
pub const WEBHOOK_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// What kind of event a message announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ScaleOut,
    ScaleIn,
    Skip,
    Failure,
}

/// Everything a message says; the text is rendered from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub kind: Kind,
    pub group: String,
    pub lag: Option<u64>,
    pub thresholds: Thresholds,
    pub capacity_before: Option<i32>,
    pub capacity_after: Option<i32>,
    /// The series that drove the lag figure.
    pub driver: Option<String>,
    /// The decision's reason, or the error for a failed run.
    pub reason: String,
    pub dry_run: bool,
}

impl Notification {
    /// Where the lag stands against the thresholds, e.g. `above the high threshold 10000000`.
    pub fn threshold_phrase(&self) -> Option<String> {
        let lag = self.lag?;
        let Thresholds { high, low, .. } = self.thresholds;
        Some(if lag > high {
            format!("above the high threshold {high}")
        } else if lag < low {
            format!("below the low threshold {low}")
        } else {
            format!("between the low threshold {low} and the high threshold {high}")
        })
    }

    /// The plain-text message.
    pub fn text(&self) -> String {
        let group = &self.group;
        let capacity = match (self.capacity_before, self.capacity_after) {
            (Some(before), Some(after)) => format!("{before} → {after} instances"),
            (Some(before), None) => format!("{before} instances"),
            _ => "capacity unknown".to_owned(),
        };
        let would = if self.dry_run {
            "[dry run] would have "
        } else {
            ""
        };
        let headline = match self.kind {
            Kind::ScaleOut => format!("{would}scaled out `{group}`: {capacity}"),
            Kind::ScaleIn => format!(
                "{would}scaled in `{group}`: {capacity}; the group is back to standby and \
                 Karpenter carries the load again"
            ),
            Kind::Skip => format!("left `{group}` unchanged (skip): {capacity}"),
            Kind::Failure => format!("run failed for `{group}`"),
        };

        let mut lines = vec![format!("kafka-lag-scaler {headline}.")];
        match (self.lag, self.threshold_phrase()) {
            (Some(lag), Some(phrase)) => lines.push(format!("Lag {lag} is {phrase}.")),
            _ if self.kind != Kind::Failure => lines.push("Lag is unknown.".to_owned()),
            _ => {}
        }
        if let Some(driver) = &self.driver {
            lines.push(format!("Driven by {driver}."));
        }
        let label = if self.kind == Kind::Failure {
            "Error"
        } else {
            "Reason"
        };
        lines.push(format!("{label}: {}.", self.reason.trim_end_matches('.')));
        lines.join("\n")
    }
}

/// A webhook delivery that failed; it never changes a run's outcome.
#[derive(Debug, Error)]
pub enum NotifyError {
    #[error("the webhook at {host} answered HTTP {status}")]
    Status { host: String, status: StatusCode },
    #[error("the webhook at {host} did not answer within {} s", timeout.as_secs_f32())]
    Timeout { host: String, timeout: Duration },
    #[error("could not reach the webhook at {host}: {reason}")]
    Unreachable { host: String, reason: String },
    #[error("no time is left in the run's budget to call the webhook at {host}")]
    OutOfTime { host: String },
}

/// Where messages go.
pub trait Notifier {
    /// Delivers one message, giving up by `deadline`.
    fn send(
        &self,
        notification: &Notification,
        deadline: Instant,
    ) -> impl Future<Output = Result<(), NotifyError>> + Send;
}

/// Posts each message to a chat webhook in the format that tool shows (see
/// [`crate::format`]); any 2xx answer is a delivery.
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    http: Client,
    url: SecretString,
    host: String,
    format: WebhookFormat,
}

impl WebhookNotifier {
    /// A notifier whose format is picked from the URL's host, as `WEBHOOK_FORMAT=auto` does.
    pub fn new(http: Client, url: SecretString) -> Self {
        let host = Url::parse(url.expose_secret())
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_else(|| "<unknown host>".to_owned());
        let format = WebhookFormat::detect(url.expose_secret());
        Self {
            http,
            url,
            host,
            format,
        }
    }

    /// The same notifier, sending `format` whatever the URL.
    pub fn with_format(self, format: WebhookFormat) -> Self {
        Self { format, ..self }
    }

    fn attempt_timeout(&self, deadline: Instant) -> Result<Duration, NotifyError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(NotifyError::OutOfTime {
                host: self.host.clone(),
            });
        }
        Ok(left.min(WEBHOOK_ATTEMPT_TIMEOUT))
    }

    async fn post(
        &self,
        body: &serde_json::Value,
        deadline: Instant,
    ) -> Result<reqwest::Response, NotifyError> {
        let timeout = self.attempt_timeout(deadline)?;
        self.http
            .post(self.url.expose_secret())
            .timeout(timeout)
            .json(body)
            .send()
            .await
            .map_err(|error| {
                if error.is_timeout() {
                    NotifyError::Timeout {
                        host: self.host.clone(),
                        timeout,
                    }
                } else {
                    NotifyError::Unreachable {
                        host: self.host.clone(),
                        reason: error_chain(&error.without_url()),
                    }
                }
            })
    }
}

impl Notifier for WebhookNotifier {
    async fn send(
        &self,
        notification: &Notification,
        deadline: Instant,
    ) -> Result<(), NotifyError> {
        let body = self.format.body(notification);
        tracing::trace!(%body, "webhook message");

        let response = self.post(&body, deadline).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // One retry, and only when the receiver says when and that moment fits the budget: a
        // message is worth less than ending the run on time. A Retry-After too large for the
        // clock (`checked_add` fails) is one that does not fit either.
        let wait = retry_after(&response).filter(|wait| {
            let retry_at = Instant::now().checked_add(*wait);
            status == StatusCode::TOO_MANY_REQUESTS && retry_at.is_some_and(|at| at < deadline)
        });
        let Some(wait) = wait else {
            return Err(NotifyError::Status {
                host: self.host.clone(),
                status,
            });
        };
        tracing::debug!(
            wait_ms = wait.as_millis() as u64,
            "webhook rate-limited; retrying once"
        );
        tokio::time::sleep(wait).await;
        let status = self.post(&body, deadline).await?.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(NotifyError::Status {
                host: self.host.clone(),
                status,
            })
        }
    }
}

/// `Retry-After` in seconds; the HTTP-date form is treated as absent.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    retry_delay(value, SystemTime::now())
}

/// A `Retry-After` value as a wait from `now`: delay seconds, or an HTTP date (RFC 9110). A
/// date already past means no wait.
fn retry_delay(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const THRESHOLDS: Thresholds = Thresholds {
        high: 10_000_000,
        low: 100_000,
        scale_out_capacity: 4,
        scale_in_capacity: 0,
    };

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let now = httpdate::parse_http_date("Fri, 04 Dec 2026 02:00:00 GMT").unwrap();
        let rows = [
            ("30", Some(30), "delay seconds"),
            (" 2 ", Some(2), "delay seconds with spaces"),
            ("Fri, 04 Dec 2026 02:00:05 GMT", Some(5), "a date ahead"),
            (
                "Fri, 04 Dec 2026 01:59:00 GMT",
                Some(0),
                "a date already past",
            ),
            ("soon", None, "neither"),
            ("-3", None, "a negative delay"),
        ];
        for (value, expected, why) in rows {
            assert_eq!(
                retry_delay(value, now),
                expected.map(Duration::from_secs),
                "{why}"
            );
        }
    }

    fn notification(kind: Kind, lag: Option<u64>, before: i32, after: i32) -> Notification {
        Notification {
            kind,
            group: "kafka-fallback".into(),
            lag,
            thresholds: THRESHOLDS,
            capacity_before: Some(before),
            capacity_after: Some(after),
            driver: Some(r#"{consumergroup="cg-a", topic="orders"}"#.into()),
            reason: "lag 12000000 > 10000000 with 0 instance(s)".into(),
            dry_run: false,
        }
    }

    #[test]
    fn scale_out_names_group_lag_threshold_capacity_and_series() {
        let text = notification(Kind::ScaleOut, Some(12_000_000), 0, 4).text();
        assert_eq!(
            text,
            "kafka-lag-scaler scaled out `kafka-fallback`: 0 → 4 instances.\n\
             Lag 12000000 is above the high threshold 10000000.\n\
             Driven by {consumergroup=\"cg-a\", topic=\"orders\"}.\n\
             Reason: lag 12000000 > 10000000 with 0 instance(s)."
        );
    }

    #[test]
    fn scale_in_says_karpenter_carries_the_load_again() {
        let text = notification(Kind::ScaleIn, Some(40_000), 4, 0).text();
        assert!(
            text.contains("scaled in `kafka-fallback`: 4 → 0 instances"),
            "{text}"
        );
        assert!(text.contains("Karpenter carries the load again"), "{text}");
        assert!(
            text.contains("Lag 40000 is below the low threshold 100000."),
            "{text}"
        );
    }

    #[test]
    fn dry_run_says_what_would_have_happened() {
        let mut dry = notification(Kind::ScaleOut, Some(12_000_000), 0, 4);
        dry.dry_run = true;
        assert!(dry
            .text()
            .starts_with("kafka-lag-scaler [dry run] would have scaled out"));
    }

    #[test]
    fn skip_with_unknown_lag_says_so() {
        let mut skip = notification(Kind::Skip, None, 4, 4);
        skip.driver = None;
        skip.reason = "no usable lag".into();
        let text = skip.text();
        assert!(
            text.contains("left `kafka-fallback` unchanged (skip): 4 → 4"),
            "{text}"
        );
        assert!(text.contains("Lag is unknown."), "{text}");
        assert!(text.ends_with("Reason: no usable lag."), "{text}");
    }

    #[test]
    fn failure_quotes_the_error() {
        let failure = Notification {
            capacity_before: None,
            capacity_after: None,
            driver: None,
            lag: None,
            reason: "could not reach Prometheus at http://prom/api/v1/query".into(),
            ..notification(Kind::Failure, None, 0, 0)
        };
        assert_eq!(
            failure.text(),
            "kafka-lag-scaler run failed for `kafka-fallback`.\n\
             Error: could not reach Prometheus at http://prom/api/v1/query."
        );
    }

    #[test]
    fn threshold_phrase_covers_the_band_between() {
        let between = notification(Kind::ScaleOut, Some(5_000_000), 2, 4);
        assert_eq!(
            between.threshold_phrase().unwrap(),
            "between the low threshold 100000 and the high threshold 10000000"
        );
    }
}
