//! Reading the consumer lag from Prometheus.
//!
//! A query has three outcomes that are never confused with each other:
//!
//! * [`LagReading::Known`]: at least one usable sample; the lag is their aggregate.
//! * [`LagReading::NoData`]: Prometheus answered, but nothing usable came back (an empty
//!   vector, or only `NaN`, `±Inf` or negative samples). Unknown is never zero.
//! * [`PrometheusError`]: the answer could not be had or could not be trusted.
//!
//! [`parse_response`] is pure, so every response shape is tested without a network.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::future::Future;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, StatusCode};
use secrecy::ExposeSecret;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use thiserror::Error;

use crate::config::{Aggregation, PrometheusConfig};

/// Bodies larger than this are refused rather than parsed: a 128 MB function must not be
/// taken down by a query that returns far more series than intended.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// What one query says about the lag.
#[derive(Debug, Clone, PartialEq)]
pub enum LagReading {
    Known(KnownLag),
    NoData(Discards),
}

/// What was left out of a reading, and why it may be partial.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Discards {
    /// Samples dropped because their value was `NaN`, infinite or negative.
    pub unusable_samples: usize,
    /// Warnings that Prometheus attached to the response.
    pub warnings: Vec<String>,
}

impl Discards {
    /// True when the data may be incomplete, which forbids a scale-in.
    pub fn is_partial(&self) -> bool {
        self.unusable_samples > 0 || !self.warnings.is_empty()
    }
}

impl fmt::Display for Discards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.unusable_samples > 0 {
            parts.push(format!(
                "{} sample(s) were NaN, infinite or negative",
                self.unusable_samples
            ));
        }
        if !self.warnings.is_empty() {
            parts.push(format!("Prometheus warned: {}", self.warnings.join("; ")));
        }
        f.write_str(&parts.join("; "))
    }
}

/// A lag figure built from at least one usable sample.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownLag {
    /// The aggregate, rounded to a whole number of messages.
    pub value: u64,
    /// The series that drove the figure, e.g. `{consumergroup="cg-a", topic="orders"}`.
    pub driver: String,
    /// How many distinct usable series went into the figure.
    pub series: usize,
    pub discards: Discards,
}

/// A query that did not give an answer the scaler can trust.
#[derive(Debug, Error)]
pub enum PrometheusError {
    #[error("could not reach Prometheus at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("Prometheus at {endpoint} did not answer within {} s", timeout.as_secs_f32())]
    Timeout { endpoint: String, timeout: Duration },
    #[error(
        "Prometheus at {endpoint} answered HTTP {status} with content type `{content_type}`, \
         not a Prometheus API response"
    )]
    Status {
        endpoint: String,
        status: StatusCode,
        content_type: String,
    },
    #[error("Prometheus at {endpoint} refused the query (HTTP {status}): {error_type}: {error}")]
    Query {
        endpoint: String,
        status: StatusCode,
        error_type: String,
        error: String,
    },
    #[error(
        "Prometheus at {endpoint} answered HTTP {status} with content type `{content_type}` and \
         a body that is not a Prometheus API response: {problem}"
    )]
    Malformed {
        endpoint: String,
        status: StatusCode,
        content_type: String,
        problem: BodyProblem,
    },
}

/// Why a successful HTTP response was still not a usable Prometheus answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BodyProblem {
    #[error("the body is empty")]
    Empty,
    #[error("the body is larger than {} MiB", MAX_BODY_BYTES / 1024 / 1024)]
    TooLarge,
    #[error("it is not the JSON envelope ({0})")]
    NotJson(String),
    #[error("`status` is `{0}`, expected `success` or `error`")]
    UnknownStatus(String),
    #[error("`status` is `error`: {error_type}: {error}")]
    ErrorStatus { error_type: String, error: String },
    #[error("`data` is missing")]
    MissingData,
    #[error("the result type is `{0}`; the query must return an instant vector or a scalar")]
    UnsupportedResultType(String),
    #[error("the `{result_type}` result is malformed ({detail})")]
    MalformedResult {
        result_type: &'static str,
        detail: String,
    },
}

/// The source of lag figures; the real one queries Prometheus over HTTP.
pub trait LagSource {
    fn read_lag(&self) -> impl Future<Output = Result<LagReading, PrometheusError>> + Send;

    /// Reads another instant query built over the lag query (a sustained-breach window) the
    /// same way as the lag. A source without history, such as a test fake, answers with its
    /// current reading, as if the lag had always been what it is now.
    fn read_query(
        &self,
        query: &str,
    ) -> impl Future<Output = Result<LagReading, PrometheusError>> + Send {
        let _ = query;
        self.read_lag()
    }
}

/// Queries Prometheus's `/api/v1/query` endpoint with a POST form, so that the PromQL is
/// always encoded by the HTTP library.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    http: Client,
    config: PrometheusConfig,
}

impl PrometheusClient {
    pub fn new(http: Client, config: PrometheusConfig) -> Self {
        Self { http, config }
    }

    /// The endpoint as shown in messages: the query URL, which never holds credentials.
    pub fn endpoint(&self) -> &str {
        self.config.query_url.as_str()
    }

    async fn fetch(&self, query: &str) -> Result<(StatusCode, String, Vec<u8>), reqwest::Error> {
        let mut request = self
            .http
            .post(self.config.query_url.clone())
            .timeout(self.config.timeout)
            .form(&[("query", query)]);
        if let Some(auth) = &self.config.basic_auth {
            request = request.basic_auth(&auth.username, Some(auth.password.expose_secret()));
        }
        let mut response = request.send().await?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("none")
            .to_owned();

        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                // One byte past the limit is enough for the parser to refuse it.
                body.extend_from_slice(&chunk[..MAX_BODY_BYTES + 1 - body.len()]);
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, content_type, body))
    }

    fn transport_error(&self, error: reqwest::Error) -> PrometheusError {
        let endpoint = self.endpoint().to_owned();
        if error.is_timeout() {
            return PrometheusError::Timeout {
                endpoint,
                timeout: self.config.timeout,
            };
        }
        PrometheusError::Unreachable {
            endpoint,
            reason: error_chain(&error.without_url()),
        }
    }
}

impl LagSource for PrometheusClient {
    async fn read_lag(&self) -> Result<LagReading, PrometheusError> {
        self.read_query(&self.config.query).await
    }

    async fn read_query(&self, query: &str) -> Result<LagReading, PrometheusError> {
        tracing::debug!(endpoint = self.endpoint(), query = %query, "querying Prometheus");
        let (status, content_type, body) = self
            .fetch(query)
            .await
            .map_err(|e| self.transport_error(e))?;
        tracing::trace!(%status, body = %String::from_utf8_lossy(&body), "Prometheus answered");

        let endpoint = self.endpoint();
        match (
            status.is_success(),
            parse_response(&body, self.config.aggregation),
        ) {
            (_, Err(BodyProblem::ErrorStatus { error_type, error })) => {
                Err(PrometheusError::Query {
                    endpoint: endpoint.to_owned(),
                    status,
                    error_type,
                    error,
                })
            }
            (true, Ok(reading)) => Ok(reading),
            (true, Err(problem)) => Err(PrometheusError::Malformed {
                endpoint: endpoint.to_owned(),
                status,
                content_type,
                problem,
            }),
            (false, _) => Err(PrometheusError::Status {
                endpoint: endpoint.to_owned(),
                status,
                content_type,
            }),
        }
    }
}

/// Joins an error and its sources into one line, each cause once.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "resultType", borrow)]
    result_type: Cow<'a, str>,
    #[serde(borrow)]
    result: &'a RawValue,
}

type Labels<'a> = BTreeMap<Cow<'a, str>, Cow<'a, str>>;

#[derive(Deserialize)]
struct VectorSample<'a> {
    #[serde(borrow, default)]
    metric: Labels<'a>,
    /// Absent for native-histogram samples, which carry no single lag figure.
    value: Option<(Timestamp, SampleValue)>,
}

/// Prometheus timestamps are float seconds; only their shape is checked.
struct Timestamp;

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        f64::deserialize(deserializer).map(|_| Timestamp)
    }
}

/// A sample value: Prometheus sends a string (`"12000000"`, `"NaN"`, `"+Inf"`), some
/// front ends send a JSON number.
struct SampleValue(f64);

impl<'de> Deserialize<'de> for SampleValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;

        impl Visitor<'_> for ValueVisitor {
            type Value = SampleValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sample value as a string or a number")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<SampleValue, E> {
                text.trim()
                    .parse::<f64>()
                    .map(SampleValue)
                    .map_err(|_| E::custom(format!("sample value `{text}` is not a number")))
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<SampleValue, E> {
                Ok(SampleValue(value))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<SampleValue, E> {
                Ok(SampleValue(value as f64))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<SampleValue, E> {
                Ok(SampleValue(value as f64))
            }
        }

        deserializer.deserialize_any(ValueVisitor)
    }
}

/// Parses a Prometheus `/api/v1/query` body and aggregates its usable samples.
pub fn parse_response(body: &[u8], aggregation: Aggregation) -> Result<LagReading, BodyProblem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyProblem::Empty);
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(BodyProblem::TooLarge);
    }
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| BodyProblem::NotJson(e.to_string()))?;

    match envelope.status.as_ref() {
        "success" => {}
        "error" => {
            return Err(BodyProblem::ErrorStatus {
                error_type: envelope.error_type.unwrap_or_else(|| "unknown".to_owned()),
                error: envelope.error.unwrap_or_else(|| "no message".to_owned()),
            })
        }
        other => return Err(BodyProblem::UnknownStatus(other.to_owned())),
    }

    let data = envelope.data.ok_or(BodyProblem::MissingData)?;
    let data: Data =
        serde_json::from_str(data.get()).map_err(|e| BodyProblem::MalformedResult {
            result_type: "data",
            detail: e.to_string(),
        })?;
    let discards = Discards {
        unusable_samples: 0,
        warnings: envelope.warnings,
    };
    match data.result_type.as_ref() {
        "vector" => {
            let samples: Vec<VectorSample> =
                serde_json::from_str(data.result.get()).map_err(|e| malformed("vector", &e))?;
            Ok(aggregate_vector(samples, aggregation, discards))
        }
        "scalar" => {
            let (_, SampleValue(value)): (Timestamp, SampleValue) =
                serde_json::from_str(data.result.get()).map_err(|e| malformed("scalar", &e))?;
            Ok(aggregate_scalar(value, discards))
        }
        other => Err(BodyProblem::UnsupportedResultType(other.to_owned())),
    }
}

fn malformed(result_type: &'static str, error: &serde_json::Error) -> BodyProblem {
    BodyProblem::MalformedResult {
        result_type,
        detail: error.to_string(),
    }
}

/// A sample is usable when it is finite and not negative (kafka_exporter reports `-1` for a
/// group that never committed).
fn usable(value: f64) -> bool {
    value.is_finite() && value >= 0.0
}

fn aggregate_scalar(value: f64, mut discards: Discards) -> LagReading {
    if !usable(value) {
        discards.unusable_samples = 1;
        return LagReading::NoData(discards);
    }
    known(value, "scalar result".to_owned(), 1, discards)
}

fn aggregate_vector(
    samples: Vec<VectorSample>,
    aggregation: Aggregation,
    mut discards: Discards,
) -> LagReading {
    // Identical label sets (two replicas of one exporter behind a front end) describe the same
    // series: they are counted once, with the larger value, and never added together.
    let mut by_labels: HashMap<Labels, f64> = HashMap::with_capacity(samples.len());
    for sample in samples {
        match sample.value {
            Some((_, SampleValue(value))) if usable(value) => {
                by_labels
                    .entry(sample.metric)
                    .and_modify(|existing| *existing = existing.max(value))
                    .or_insert(value);
            }
            _ => discards.unusable_samples += 1,
        }
    }
    if by_labels.is_empty() {
        return LagReading::NoData(discards);
    }

    let series = by_labels.len();
    match aggregation {
        Aggregation::Max => {
            let (labels, value) = by_labels
                .iter()
                .max_by(|a, b| a.1.total_cmp(b.1).then_with(|| b.0.cmp(a.0)))
                .expect("at least one series");
            known(*value, format_labels(labels), series, discards)
        }
        Aggregation::Sum => {
            let total: f64 = by_labels.values().sum();
            known(total, format!("sum of {series} series"), series, discards)
        }
    }
}

fn known(value: f64, driver: String, series: usize, discards: Discards) -> LagReading {
    // `value` is finite and not negative here; a sum that overflowed is saturated, which is
    // the right answer for a lag that large.
    let value = if value.is_finite() {
        value.round() as u64
    } else {
        u64::MAX
    };
    LagReading::Known(KnownLag {
        value,
        driver,
        series,
        discards,
    })
}

fn format_labels(labels: &Labels) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .filter(|(name, _)| name.as_ref() != "__name__")
        .map(|(name, value)| format!("{name}={value:?}"))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(samples: &str) -> String {
        format!(r#"{{"status":"success","data":{{"resultType":"vector","result":[{samples}]}}}}"#)
    }

    fn sample(group: &str, topic: &str, value: &str) -> String {
        format!(
            r#"{{"metric":{{"consumergroup":"{group}","topic":"{topic}"}},"value":[1712345678.123,{value}]}}"#
        )
    }

    fn parse(body: &str) -> Result<LagReading, BodyProblem> {
        parse_response(body.as_bytes(), Aggregation::Max)
    }

    fn known_value(body: &str, aggregation: Aggregation) -> KnownLag {
        match parse_response(body.as_bytes(), aggregation) {
            Ok(LagReading::Known(lag)) => lag,
            other => panic!("expected a known lag, got {other:?}"),
        }
    }

    #[test]
    fn takes_the_largest_series_by_default_and_names_it() {
        let body = vector(
            &[
                sample("cg-a", "orders", r#""12000000""#),
                sample("cg-b", "audit", r#""5""#),
            ]
            .join(","),
        );

        let lag = known_value(&body, Aggregation::Max);

        assert_eq!(lag.value, 12_000_000);
        assert_eq!(lag.driver, r#"{consumergroup="cg-a", topic="orders"}"#);
        assert_eq!(lag.series, 2);
        assert!(!lag.discards.is_partial());
    }

    #[test]
    fn sums_series_when_asked() {
        let body = vector(&[sample("a", "t", r#""7""#), sample("b", "t", "3")].join(","));

        let lag = known_value(&body, Aggregation::Sum);

        assert_eq!(lag.value, 10);
        assert_eq!(lag.driver, "sum of 2 series");
    }

    #[test]
    fn never_adds_samples_with_identical_labels() {
        let body = vector(
            &[
                sample("a", "t", r#""700""#),
                sample("a", "t", r#""650""#),
                sample("b", "t", r#""1""#),
            ]
            .join(","),
        );

        let lag = known_value(&body, Aggregation::Sum);

        assert_eq!(
            lag.value, 701,
            "duplicates count once, with the larger value"
        );
        assert_eq!(lag.series, 2);
    }

    #[test]
    fn accepts_values_as_json_numbers_and_rounds_fractions() {
        let body = vector(&[sample("a", "t", "41.6"), sample("b", "t", "12")].join(","));
        assert_eq!(known_value(&body, Aggregation::Max).value, 42);
    }

    #[test]
    fn scalar_results_are_read() {
        let body = r#"{"status":"success","data":{"resultType":"scalar","result":[1712345678.5,"250000"]}}"#;
        let lag = known_value(body, Aggregation::Max);
        assert_eq!((lag.value, lag.driver.as_str()), (250_000, "scalar result"));
    }

    #[test]
    fn unusable_samples_alone_mean_no_data_never_zero() {
        let cases = [
            (r#""NaN""#, "NaN"),
            (r#""+Inf""#, "positive infinity"),
            (r#""-Inf""#, "negative infinity"),
            (r#""-1""#, "a group that never committed"),
        ];
        for (value, why) in cases {
            let reading = parse(&vector(&sample("a", "t", value))).unwrap();
            assert_eq!(
                reading,
                LagReading::NoData(Discards {
                    unusable_samples: 1,
                    warnings: vec![]
                }),
                "{why}"
            );
        }
    }

    #[test]
    fn an_empty_vector_is_no_data() {
        assert_eq!(
            parse(&vector("")).unwrap(),
            LagReading::NoData(Discards::default())
        );
    }

    #[test]
    fn a_scalar_nan_is_no_data() {
        let body = r#"{"status":"success","data":{"resultType":"scalar","result":[1.0,"NaN"]}}"#;
        assert!(matches!(parse(body).unwrap(), LagReading::NoData(d) if d.unusable_samples == 1));
    }

    #[test]
    fn discarded_samples_mark_the_reading_partial() {
        let body = vector(&[sample("a", "t", r#""NaN""#), sample("b", "t", r#""20""#)].join(","));

        let lag = known_value(&body, Aggregation::Max);

        assert_eq!(lag.value, 20);
        assert_eq!(lag.discards.unusable_samples, 1);
        assert!(lag.discards.is_partial());
    }

    #[test]
    fn warnings_mark_the_reading_partial() {
        let body = r#"{"status":"success","warnings":["store gateway timed out"],
            "data":{"resultType":"vector","result":[{"metric":{},"value":[1,"5"]}]}}"#;

        let lag = known_value(body, Aggregation::Max);

        assert!(lag.discards.is_partial());
        assert!(lag.discards.to_string().contains("store gateway timed out"));
    }

    #[test]
    fn native_histogram_samples_are_discarded() {
        let body = vector(r#"{"metric":{"a":"b"},"histogram":[1,{"count":"3","sum":"1"}]}"#);
        assert!(matches!(parse(&body).unwrap(), LagReading::NoData(d) if d.unusable_samples == 1));
    }

    #[test]
    fn error_status_quotes_the_error_type_and_message() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:38: parse error: unexpected \"}\""}"#;
        assert_eq!(
            parse(body).unwrap_err(),
            BodyProblem::ErrorStatus {
                error_type: "bad_data".into(),
                error: r#"invalid parameter "query": 1:38: parse error: unexpected "}""#.into(),
            }
        );
    }

    #[test]
    fn shapes_that_are_not_a_usable_answer_are_refused() {
        let cases: &[(&str, &str, &str)] = &[
            ("", "the body is empty", "an empty body"),
            ("  \n", "the body is empty", "a blank body"),
            (
                "<html><body>Bad Gateway</body></html>",
                "not the JSON envelope",
                "an HTML proxy page",
            ),
            (r#"{"status":"success"}"#, "`data` is missing", "no data"),
            (
                r#"{"status":"pending","data":{}}"#,
                "`status` is `pending`",
                "unknown status",
            ),
            (
                r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
                "the result type is `matrix`",
                "a range vector",
            ),
            (
                r#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#,
                "the result type is `string`",
                "a string",
            ),
            (
                r#"{"status":"success","data":{"resultType":"vector","result":{}}}"#,
                "the `vector` result is malformed",
                "an object where the vector belongs",
            ),
            (
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"lots"]}]}}"#,
                "sample value `lots` is not a number",
                "a value that is not a number",
            ),
            (
                r#"{"status":"success","data":{"resultType":"scalar","result":["x","1"]}}"#,
                "the `scalar` result is malformed",
                "a timestamp that is not a number",
            ),
        ];
        for (body, expected, why) in cases {
            let problem = parse(body).expect_err(why).to_string();
            assert!(problem.contains(expected), "{why}: {problem}");
        }
    }

    #[test]
    fn a_sum_too_large_for_the_counter_saturates() {
        let body = vector(&[sample("a", "t", "1.7e308"), sample("b", "t", "1.7e308")].join(","));
        assert_eq!(known_value(&body, Aggregation::Sum).value, u64::MAX);
    }

    #[test]
    fn the_name_label_is_left_out_of_the_driver() {
        let body = vector(
            r#"{"metric":{"__name__":"kafka_consumergroup_lag","topic":"t"},"value":[1,"9"]}"#,
        );
        assert_eq!(
            known_value(&body, Aggregation::Max).driver,
            r#"{topic="t"}"#
        );
    }
}
