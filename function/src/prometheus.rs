//! Reading the consumer lag from Prometheus.
//!
//! A query has three outcomes that are never confused with each other:
//!
//! * [`LagReading::Known`]: at least one usable sample; the lag is their aggregate.
//! * [`LagReading::NoData`]: Prometheus answered, but nothing usable came back (an empty
//!   vector, or only `NaN`, `±Inf` or negative samples). Unknown is never zero.
//! * [`PrometheusError`]: the answer could not be had or could not be trusted.
//!
//! [`parse_response`] is pure, so every response shape is tested without a network. So is
//! [`check_stamps`], which refuses an answer whose samples were not evaluated about now.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::hash::BuildHasher as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hashbrown::{DefaultHashBuilder, HashTable};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, StatusCode};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use thiserror::Error;

use crate::auth::refusal_detail;
use crate::config::{Aggregation, PrometheusConfig};

mod written;

/// Bodies larger than this are refused rather than parsed: a 128 MB function must not be
/// taken down by a query that returns far more series than intended. Reading one takes the
/// body and a third of it again as Prometheus writes it, and up to twice the body when serde_json
/// reads it and each label set is copied out, so 32 MiB leaves the function room;
/// it is some 130,000 kafka_exporter series, far more than a query with its `by` clause.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

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
                "{} sample(s) had no usable value (NaN, infinite, negative, beyond any Kafka \
                 offset, or none)",
                self.unusable_samples
            ));
        }
        if !self.warnings.is_empty() {
            parts.push(format!("Prometheus warned: {}", self.warnings.join("; ")));
        }
        f.write_str(&parts.join("; "))
    }
}

/// A body read as Prometheus meant it: the reading, and when its samples were stamped.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub reading: LagReading,
    /// The oldest and newest stamp of its samples; none for an empty vector.
    pub stamped: Option<Stamps>,
}

/// Sample stamps, in seconds since the Unix epoch, as Prometheus writes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stamps {
    pub oldest: f64,
    pub newest: f64,
}

impl Stamps {
    fn of(at: f64) -> Self {
        Self {
            oldest: at,
            newest: at,
        }
    }

    fn include(&mut self, at: f64) {
        self.oldest = self.oldest.min(at);
        self.newest = self.newest.max(at);
    }
}

/// How far from the function's clock a sample's stamp may be. Prometheus stamps each sample of
/// an instant query with the time the query was evaluated, which is its own now; some front
/// ends evaluate up to a minute back (VictoriaMetrics' latency offset is 30 s). Beyond this,
/// the answer is an old one (a cache, a replay) or a clock is wrong: either way, its lag is
/// not the lag now.
pub const STAMP_TOLERANCE: Duration = Duration::from_secs(120);

/// Refuses samples stamped more than [`STAMP_TOLERANCE`] from `now`, naming the farthest.
pub fn check_stamps(stamped: Option<Stamps>, now: SystemTime) -> Result<(), BodyProblem> {
    let Some(stamps) = stamped else {
        return Ok(());
    };
    let now = match now.duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    };
    let farthest = if now - stamps.oldest > stamps.newest - now {
        stamps.oldest
    } else {
        stamps.newest
    };
    let offset = farthest - now;
    if offset.abs() <= STAMP_TOLERANCE.as_secs_f64() {
        return Ok(());
    }
    Err(BodyProblem::Stale {
        stamp: farthest.floor() as i64,
        // Shown past the tolerance even when rounding would bring it back to it.
        seconds: (offset.abs().round() as u64).max(STAMP_TOLERANCE.as_secs() + 1),
        direction: if offset < 0.0 { "behind" } else { "ahead of" },
    })
}

/// A lag figure built from at least one usable sample.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownLag {
    /// The aggregate, rounded up to a whole number of messages.
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
    #[error(
        "Prometheus at {endpoint} answered HTTP {status}, but the body was cut short before its \
         end: {reason}"
    )]
    CutShort {
        endpoint: String,
        status: StatusCode,
        reason: String,
    },
    #[error("could not sign the query to Prometheus at {endpoint}: {reason}")]
    Signing { endpoint: String, reason: String },
    #[error("Prometheus at {endpoint} refused the query with HTTP {status}{detail}; {hint}")]
    Refused {
        endpoint: String,
        status: StatusCode,
        /// The server's own `message`, as `: "…"`, when it sent one.
        detail: String,
        hint: String,
    },
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
    #[error(
        "Prometheus at {endpoint} answered HTTP {status}, a redirect to {target}; redirects are \
         not followed, so that credentials and the query never go to a host that was not \
         configured: set PROMETHEUS_ENDPOINT to the URL that answers"
    )]
    Redirected {
        endpoint: String,
        status: StatusCode,
        /// Where the redirect pointed, as scheme, host and port only.
        target: String,
    },
    #[error(
        "the {variable} window query (built over PROMETHEUS_QUERY, see the README's \
         sustained-breach windows) failed: {cause}"
    )]
    Window {
        variable: &'static str,
        cause: Box<PrometheusError>,
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
         a body the scaler cannot use: {problem}"
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
    #[error(
        "its samples are stamped {stamp} (Unix time), {seconds} s {direction} this function's \
         clock, and an instant query's samples carry the time it was evaluated: the answer is \
         an old one (a cache, a replay) or a clock is wrong by more than {} s",
        STAMP_TOLERANCE.as_secs()
    )]
    Stale {
        stamp: i64,
        seconds: u64,
        direction: &'static str,
    },
}

/// The source of lag figures; the real one queries Prometheus over HTTP.
pub trait LagSource {
    fn read_lag(&self) -> impl Future<Output = Result<LagReading, PrometheusError>> + Send;

    /// The source as named in errors, e.g. `Prometheus at http://prometheus:9090/api/v1/query`.
    fn name(&self) -> String {
        "the lag source".to_owned()
    }

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

    async fn fetch(&self, query: &str) -> Result<(StatusCode, String, Vec<u8>), PrometheusError> {
        let request = self
            .http
            .post(self.config.query_url.clone())
            .timeout(self.config.timeout)
            .form(&[("query", query)]);
        let auth = &self.config.auth;
        let request = auth
            .authorize(request)
            .build()
            .map_err(|e| self.transport_error(e))?;
        let request = auth
            .sign(request)
            .await
            .map_err(|e| PrometheusError::Signing {
                endpoint: self.endpoint().to_owned(),
                reason: e.to_string(),
            })?;
        let mut response = self
            .http
            .execute(request)
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        // 304 is no redirect: nothing was asked conditionally, so it is just not an answer.
        if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
            return Err(PrometheusError::Redirected {
                endpoint: self.endpoint().to_owned(),
                status,
                target: redirect_target(&response),
            });
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("none")
            .to_owned();

        // Sized once from the announced length, so that a large body is not copied as it grows.
        let announced = response.content_length().unwrap_or(0);
        let announced = usize::try_from(announced).unwrap_or(usize::MAX);
        let mut body = Vec::with_capacity(announced.min(MAX_BODY_BYTES + 1));
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.body_error(status, e))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                // One byte past the limit is enough for the parser to refuse it.
                body.extend_from_slice(&chunk[..MAX_BODY_BYTES + 1 - body.len()]);
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, content_type, body))
    }

    /// The answer began but its body did not arrive whole: it was reached, so it is not
    /// called unreachable.
    fn body_error(&self, status: StatusCode, error: reqwest::Error) -> PrometheusError {
        if error.is_timeout() {
            return self.transport_error(error);
        }
        PrometheusError::CutShort {
            endpoint: self.endpoint().to_owned(),
            status,
            reason: error_chain(&error.without_url()),
        }
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
    fn name(&self) -> String {
        format!("Prometheus at {}", self.endpoint())
    }

    async fn read_lag(&self) -> Result<LagReading, PrometheusError> {
        self.read_query(&self.config.query).await
    }

    async fn read_query(&self, query: &str) -> Result<LagReading, PrometheusError> {
        tracing::debug!(endpoint = self.endpoint(), query = %query, "querying Prometheus");
        let (status, content_type, body) = self.fetch(query).await?;
        tracing::trace!(%status, body = %String::from_utf8_lossy(&body), "Prometheus answered");

        let endpoint = self.endpoint();
        let parsed = parse_response(&body, self.config.aggregation).and_then(|parsed| {
            check_stamps(parsed.stamped, SystemTime::now())?;
            Ok(parsed.reading)
        });
        match (status.is_success(), parsed) {
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
            (false, _) if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                Err(PrometheusError::Refused {
                    endpoint: endpoint.to_owned(),
                    status,
                    detail: refusal_detail(&body),
                    hint: self.config.auth.refusal_hint(),
                })
            }
            (false, _) => Err(PrometheusError::Status {
                endpoint: endpoint.to_owned(),
                status,
                content_type,
            }),
        }
    }
}

/// The origin a redirect points to (`Location` resolved against the request URL), never its
/// path or query, which may hold a token.
fn redirect_target(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|location| location.to_str().ok())
        .and_then(|location| response.url().join(location).ok())
        .map_or_else(
            || "an unreadable location".to_owned(),
            |target| format!("`{}`", target.origin().ascii_serialization()),
        )
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

/// What the one pass over a body shares with every level of it.
struct Pass<'de> {
    /// Where the pass was when it found something malformed: `None` in the envelope, then
    /// `data`, then the result type being read.
    stage: Cell<Option<&'static str>>,
    /// The body: a vector's table is sized from it once, and keys its series by it.
    body: &'de str,
}

/// The envelope, read in one pass: `data` is parsed, and a vector aggregated, as it streams
/// by, so a large result is never held as a list of samples nor scanned twice.
struct Envelope<'a> {
    status: Text<'a>,
    data: Option<Data<'a>>,
    error_type: Option<String>,
    error: Option<String>,
    warnings: Vec<String>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum EnvelopeField {
    Status,
    Data,
    ErrorType,
    Error,
    Warnings,
    #[serde(other)]
    Other,
}

struct EnvelopeSeed<'s, 'de>(&'s Pass<'de>);

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_, 'de> {
    type Value = Envelope<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_, 'de> {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the Prometheus API envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut status, mut data, mut error_type, mut error) = (None, None, None, None);
        let mut warnings = Vec::new();
        while let Some(field) = map.next_key()? {
            match field {
                EnvelopeField::Status => status = Some(map.next_value()?),
                EnvelopeField::Data => {
                    data = map.next_value_seed(DataSeed(self.0))?;
                    self.0.stage.set(None);
                }
                EnvelopeField::ErrorType => error_type = map.next_value()?,
                EnvelopeField::Error => error = map.next_value()?,
                // `null` from some front ends means no warnings, as an absent field does.
                EnvelopeField::Warnings => {
                    warnings = map.next_value::<Option<_>>()?.unwrap_or_default();
                }
                EnvelopeField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Envelope {
            status: status.ok_or_else(|| de::Error::missing_field("status"))?,
            data,
            error_type,
            error,
            warnings,
        })
    }
}

/// A string borrowed from the body unless it holds escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// `data`, with its result already read.
enum Data<'de> {
    Vector(SeriesTable<'de>),
    Scalar {
        at: f64,
        value: f64,
    },
    Unsupported(String),
    /// A field left out; reported only once `status` says the body is an answer.
    Missing(&'static str),
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum DataField {
    ResultType,
    Result,
    #[serde(other)]
    Other,
}

struct DataSeed<'s, 'de>(&'s Pass<'de>);

impl<'de> DeserializeSeed<'de> for DataSeed<'_, 'de> {
    type Value = Option<Data<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_, 'de> {
    type Value = Option<Data<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with `resultType` and `result`")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.0.stage.set(Some("data"));
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut result_type, mut data, mut deferred) = (None::<Text>, None, None);
        while let Some(field) = map.next_key()? {
            match (field, &result_type) {
                (DataField::ResultType, _) => result_type = Some(map.next_value()?),
                (DataField::Result, Some(kind)) => {
                    data = Some(map.next_value_seed(ResultSeed(&kind.0, self.0))?);
                }
                // Prometheus writes `resultType` first; if another server does not, the result
                // is kept as raw JSON and read once its type is known.
                (DataField::Result, None) => deferred = Some(map.next_value::<&RawValue>()?),
                (DataField::Other, _) => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let Some(kind) = result_type else {
            return Ok(Some(Data::Missing("resultType")));
        };
        if let Some(data) = data {
            return Ok(Some(data));
        }
        let Some(raw) = deferred else {
            return Ok(Some(Data::Missing("result")));
        };
        let mut deserializer = serde_json::Deserializer::from_str(raw.get());
        ResultSeed(&kind.0, self.0)
            .deserialize(&mut deserializer)
            .map(Some)
            .map_err(de::Error::custom)
    }
}

/// Reads `result` as the result type named.
struct ResultSeed<'k, 's, 'de>(&'k str, &'s Pass<'de>);

impl<'de> DeserializeSeed<'de> for ResultSeed<'_, '_, 'de> {
    type Value = Data<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Data<'de>, D::Error> {
        match self.0 {
            "vector" => {
                self.1.stage.set(Some("vector"));
                deserializer.deserialize_seq(VectorVisitor(self.1.body))
            }
            "scalar" => {
                self.1.stage.set(Some("scalar"));
                let (Timestamp(at), SampleValue(value)) =
                    <(Timestamp, SampleValue)>::deserialize(deserializer)?;
                Ok(Data::Scalar { at, value })
            }
            other => {
                IgnoredAny::deserialize(deserializer)?;
                Ok(Data::Unsupported(other.to_owned()))
            }
        }
    }
}

/// Reads a vector's samples; holds the body.
struct VectorVisitor<'de>(&'de str);

impl<'de> Visitor<'de> for VectorVisitor<'de> {
    type Value = Data<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of samples")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Data<'de>, A::Error> {
        let mut table = SeriesTable::sized_for(self.0);
        // One label buffer for all samples: its strings borrow from the body.
        let mut labels = Vec::new();
        while let Some(sample) = seq.next_element_seed(SampleSeed(&mut labels))? {
            table.add(&mut labels, sample);
        }
        Ok(Data::Vector(table))
    }
}

type LabelPairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// One vector sample: its labels go into the buffer, its stamp and value (absent for
/// native-histogram samples, which carry no single lag figure) are returned.
struct SampleSeed<'b, 'de>(&'b mut LabelPairs<'de>);

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum SampleField {
    Metric,
    Value,
    #[serde(other)]
    Other,
}

impl<'de> DeserializeSeed<'de> for SampleSeed<'_, 'de> {
    type Value = Option<(f64, f64)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SampleSeed<'_, 'de> {
    type Value = Option<(f64, f64)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sample with `metric` and `value`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        self.0.clear();
        let mut sample = None;
        while let Some(field) = map.next_key()? {
            match field {
                SampleField::Metric => map.next_value_seed(LabelsSeed(&mut *self.0))?,
                SampleField::Value => {
                    sample = map
                        .next_value::<Option<(Timestamp, SampleValue)>>()?
                        .map(|(Timestamp(at), SampleValue(value))| (at, value));
                }
                SampleField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(sample)
    }
}

struct LabelsSeed<'b, 'de>(&'b mut LabelPairs<'de>);

impl<'de> DeserializeSeed<'de> for LabelsSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LabelsSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of label names to values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some((Text(name), Text(value))) = map.next_entry()? {
            self.0.push((name, value));
        }
        Ok(())
    }
}

/// The distinct usable series of a vector, each with its largest value, keyed by its label
/// set written in one canonical form (see [`canonical_key`]).
///
/// Prometheus writes each label set in that form already, so that the reader of its bodies
/// (`written.rs`) keys series by spans of the body and copies nothing; serde_json's pass
/// writes each key into an arena. The series sit in one list
/// in the order they came, and the hash table holds only each series' index, so that it stays
/// small enough for the cache however many series there are. Keys with equal hashes are still
/// compared byte for byte: a collision never merges two series.
struct SeriesTable<'de> {
    index: HashTable<u32>,
    series: Vec<Series>,
    body: &'de str,
    arena: Vec<u8>,
    hasher: DefaultHashBuilder,
    unusable: usize,
    stamped: Option<Stamps>,
}

/// One distinct series: its key is `start..end` of the body, or of the arena.
struct Series {
    hash: u64,
    start: u32,
    end: u32,
    in_arena: bool,
    value: f64,
}

impl Series {
    fn key<'k>(&self, body: &'k [u8], arena: &'k [u8]) -> &'k [u8] {
        let keys = if self.in_arena { arena } else { body };
        &keys[self.start as usize..self.end as usize]
    }
}

impl<'de> SeriesTable<'de> {
    /// A table for `body`, sized so that it is not regrown while the body is read: realistic
    /// samples take at least [`TYPICAL_SAMPLE_BYTES`]. Room reserved and never written is
    /// address space, not memory the function is charged for.
    fn sized_for(body: &'de str) -> Self {
        let series = body.len() / TYPICAL_SAMPLE_BYTES;
        Self {
            index: HashTable::with_capacity(series),
            series: Vec::with_capacity(series),
            body,
            arena: Vec::new(),
            hasher: DefaultHashBuilder::default(),
            unusable: 0,
            stamped: None,
        }
    }

    /// Notes a sample's stamp, usable or not: the answer's time is in every one.
    fn stamp(&mut self, at: f64) {
        match &mut self.stamped {
            Some(stamps) => stamps.include(at),
            None => self.stamped = Some(Stamps::of(at)),
        }
    }

    /// Adds a sample read label by label: its stamp and value, if it has them.
    fn add(&mut self, labels: &mut LabelPairs, sample: Option<(f64, f64)>) {
        if let Some((at, _)) = sample {
            self.stamp(at);
        }
        let Some(value) = self.usable(sample.map(|(_, value)| value)) else {
            return;
        };
        // A key takes no more bytes than its labels do in the body, so the arena is reserved
        // once, when first needed, rather than regrown and copied.
        if self.arena.capacity() == 0 {
            self.arena.reserve(self.body.len());
        }
        let start = self.arena.len();
        canonical_key(labels, &mut self.arena);
        self.insert((start, self.arena.len()), true, value);
    }

    /// Adds a sample whose label set is written at `span` of the body as its key.
    fn add_written(&mut self, span: (usize, usize), value: f64) {
        if let Some(value) = self.usable(Some(value)) {
            self.insert(span, false, value);
        }
    }

    /// The value if it is usable; otherwise it is counted as discarded.
    fn usable(&mut self, value: Option<f64>) -> Option<f64> {
        let usable = value.filter(|&value| usable(value));
        if usable.is_none() {
            self.unusable += 1;
        }
        usable
    }

    /// Counts the series keyed by `start..end` of the arena or the body. A key written into
    /// the arena is taken back if the series is known already.
    fn insert(&mut self, (start, end): (usize, usize), in_arena: bool, value: f64) {
        let (body, arena, series) = (self.body.as_bytes(), &self.arena, &mut self.series);
        let key = if in_arena {
            &arena[start..end]
        } else {
            &body[start..end]
        };
        let hash = self.hasher.hash_one(key);
        // Identical label sets (two replicas of one exporter behind a front end) describe the
        // same series: they are counted once, with the larger value, and never added together.
        let same = |&i: &u32| {
            let known = &series[i as usize];
            known.hash == hash && known.key(body, arena) == key
        };
        if let Some(&i) = self.index.find(hash, same) {
            let known = &mut series[i as usize];
            known.value = known.value.max(value);
            if in_arena {
                self.arena.truncate(start);
            }
            return;
        }
        // A body within MAX_BODY_BYTES holds far fewer than u32::MAX samples, and its keys
        // take fewer bytes than that.
        let position = |at: usize| u32::try_from(at).expect("keys within MAX_BODY_BYTES");
        let i = position(series.len());
        series.push(Series {
            hash,
            start: position(start),
            end: position(end),
            in_arena,
            value,
        });
        self.index
            .insert_unique(hash, i, |&i| series[i as usize].hash);
    }

    fn len(&self) -> usize {
        self.series.len()
    }

    /// The key of each series with its value.
    fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> {
        let (body, arena) = (self.body.as_bytes(), self.arena.as_slice());
        self.series
            .iter()
            .map(move |series| (series.key(body, arena), series.value))
    }
}

/// What a realistic sample takes in the body: kafka_exporter's series with their labels take
/// 150 to 250 bytes. Smaller samples only grow the table as usual.
const TYPICAL_SAMPLE_BYTES: usize = 128;

/// Appends the key of a label set: the members of a JSON object of it,
/// `"name":"value","name":"value"`, sorted by name, a repeated name keeping its last value as
/// a map would, and every string written as serde_json writes it. Equal label sets have equal
/// keys however they were written, and a key tells its labels back. Prometheus writes `metric`
/// exactly so, which lets the reader of its bodies take keys from the body as they are.
fn canonical_key(labels: &mut LabelPairs, key: &mut Vec<u8>) {
    // A stable sort keeps a repeated name's values in the order they came.
    labels.sort_by(|a, b| a.0.cmp(&b.0));
    let start = key.len();
    for (i, (name, value)) in labels.iter().enumerate() {
        if labels.get(i + 1).is_some_and(|next| next.0 == *name) {
            continue;
        }
        if key.len() > start {
            key.push(b',');
        }
        write_json_string(key, name);
        key.push(b':');
        write_json_string(key, value);
    }
}

fn write_json_string(key: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(key, text).expect("writing to a Vec cannot fail");
}

/// Prometheus timestamps are float seconds since the Unix epoch.
struct Timestamp(f64);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        f64::deserialize(deserializer).map(Timestamp)
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
                sample_value(text).map(SampleValue).map_err(E::custom)
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

/// A sample value written as a string.
fn sample_value(text: &str) -> Result<f64, String> {
    // Lags are mostly whole numbers, which below 10^15 are exact in an f64, as `parse` would
    // give them; they are read without the general float reader.
    if !text.is_empty() && text.len() <= 15 && text.bytes().all(|byte| byte.is_ascii_digit()) {
        let whole = text
            .bytes()
            .fold(0_u64, |whole, digit| whole * 10 + u64::from(digit - b'0'));
        return Ok(whole as f64);
    }
    text.trim()
        .parse::<f64>()
        .map_err(|_| format!("sample value `{text}` is not a number"))
}

/// Parses a Prometheus `/api/v1/query` body and aggregates its usable samples. A body written
/// exactly as Prometheus writes an instant vector is read by the one-pass reader in
/// `written.rs`; any other body, and every error, by serde_json.
pub fn parse_response(body: &[u8], aggregation: Aggregation) -> Result<Parsed, BodyProblem> {
    if body.len() > MAX_BODY_BYTES {
        return Err(BodyProblem::TooLarge);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyProblem::Empty);
    }
    // Checked once here, the body's strings are then borrowed without a check of their own.
    let body = std::str::from_utf8(body).map_err(|e| BodyProblem::NotJson(e.to_string()))?;
    match written::read_vector(body) {
        Some(table) => Ok(aggregate_vector(table, aggregation, Discards::default())),
        None => read_envelope(body, aggregation),
    }
}

/// Reads a body of any form with serde_json, in one pass over it.
fn read_envelope(body: &str, aggregation: Aggregation) -> Result<Parsed, BodyProblem> {
    let pass = Pass {
        stage: Cell::default(),
        body,
    };
    let mut deserializer = serde_json::Deserializer::from_str(body);
    let envelope = EnvelopeSeed(&pass)
        .deserialize(&mut deserializer)
        .and_then(|envelope| deserializer.end().map(|()| envelope))
        .map_err(|e| match pass.stage.get() {
            Some(result_type) if e.is_data() => malformed(result_type, &e),
            _ => BodyProblem::NotJson(e.to_string()),
        })?;

    match envelope.status.0.as_ref() {
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
    let discards = Discards {
        unusable_samples: 0,
        warnings: envelope.warnings,
    };
    match data {
        Data::Vector(table) => Ok(aggregate_vector(table, aggregation, discards)),
        Data::Scalar { at, value } => Ok(Parsed {
            reading: aggregate_scalar(value, discards),
            stamped: Some(Stamps::of(at)),
        }),
        Data::Unsupported(other) => Err(BodyProblem::UnsupportedResultType(other)),
        Data::Missing(field) => Err(BodyProblem::MalformedResult {
            result_type: "data",
            detail: format!("missing field `{field}`"),
        }),
    }
}

fn malformed(result_type: &'static str, error: &serde_json::Error) -> BodyProblem {
    BodyProblem::MalformedResult {
        result_type,
        detail: error.to_string(),
    }
}

/// The largest lag a sample can honestly report: Kafka offsets are signed 64-bit integers.
pub const MAX_LAG: u64 = i64::MAX as u64;

/// A sample is usable when it is a lag Kafka can have: finite, not negative (kafka_exporter
/// reports `-1` for a group that never committed), and no larger than an offset can be.
fn usable(value: f64) -> bool {
    value.is_finite() && (0.0..=MAX_LAG as f64).contains(&value)
}

fn aggregate_scalar(value: f64, mut discards: Discards) -> LagReading {
    if !usable(value) {
        discards.unusable_samples = 1;
        return LagReading::NoData(discards);
    }
    known(value, "scalar result".to_owned(), 1, discards)
}

fn aggregate_vector(table: SeriesTable, aggregation: Aggregation, discards: Discards) -> Parsed {
    Parsed {
        stamped: table.stamped,
        reading: aggregate_series(table, aggregation, discards),
    }
}

fn aggregate_series(
    table: SeriesTable,
    aggregation: Aggregation,
    mut discards: Discards,
) -> LagReading {
    discards.unusable_samples += table.unusable;
    if table.len() == 0 {
        return LagReading::NoData(discards);
    }

    let series = table.len();
    match aggregation {
        Aggregation::Max => {
            let (labels, value) = table
                .iter()
                .max_by(|a, b| a.1.total_cmp(&b.1).then_with(|| b.0.cmp(a.0)))
                .expect("at least one series");
            known(value, format_labels(labels), series, discards)
        }
        Aggregation::Sum => {
            let total: f64 = table.iter().map(|(_, value)| value).sum();
            known(total, format!("sum of {series} series"), series, discards)
        }
    }
}

fn known(value: f64, driver: String, series: usize, discards: Discards) -> LagReading {
    // `value` is finite and not negative here; a sum that overflowed is saturated, which is
    // the right answer for a lag that large. A fraction (from `avg` or `rate`) is rounded up:
    // against whole thresholds, `lag > HIGH` then holds exactly when the fraction is above
    // HIGH, and `lag < LOW` only when it is at least a whole message below, so rounding never
    // starts a scale-in that the exact figure would not.
    let value = if value.is_finite() {
        value.ceil() as u64
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

/// `{name="value", ...}` from a series key, without `__name__`.
fn format_labels(key: &[u8]) -> String {
    let object = [b"{", key, b"}"].concat();
    let labels: BTreeMap<String, String> =
        serde_json::from_slice(&object).expect("a series key is the members of a JSON object");
    let pairs: Vec<String> = labels
        .iter()
        .filter(|(name, _)| *name != "__name__")
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
            concat!(
                r#"{{"metric":{{"consumergroup":"{group}","topic":"{topic}"}},"#,
                r#""value":[1712345678.123,{value}]}}"#
            ),
            group = group,
            topic = topic,
            value = value,
        )
    }

    fn parse(body: &str) -> Result<LagReading, BodyProblem> {
        parse_response(body.as_bytes(), Aggregation::Max).map(|parsed| parsed.reading)
    }

    fn known_value(body: &str, aggregation: Aggregation) -> KnownLag {
        match parse_response(body.as_bytes(), aggregation).map(|parsed| parsed.reading) {
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
    fn label_order_and_a_repeated_name_do_not_make_another_series() {
        let body = vector(
            r#"{"metric":{"consumergroup":"a","topic":"t"},"value":[1,"7"]},
               {"metric":{"topic":"t","consumergroup":"a"},"value":[1,"9"]},
               {"metric":{"consumergroup":"x","topic":"t","consumergroup":"a"},"value":[1,"3"]},
               {"metric":{"topic":"t","consumergroup":"b"},"value":[1,"1"]}"#,
        );

        let lag = known_value(&body, Aggregation::Sum);

        assert_eq!((lag.value, lag.series), (10, 2), "{lag:?}");
    }

    #[test]
    fn accepts_values_as_json_numbers_and_rounds_fractions_up() {
        let body = vector(&[sample("a", "t", "41.2"), sample("b", "t", "12")].join(","));
        assert_eq!(known_value(&body, Aggregation::Max).value, 42);
    }

    #[test]
    fn a_fraction_just_above_a_whole_threshold_reads_as_above_it() {
        // 12.4 > 12 must read as above a HIGH of 12, and 12.7 must not read as below a LOW
        // of 13 by more than it is.
        for (value, expected) in [("12.4", 13), ("12.7", 13), ("12", 12), ("0.2", 1)] {
            let body = vector(&sample("a", "t", &format!(r#""{value}""#)));
            assert_eq!(
                known_value(&body, Aggregation::Max).value,
                expected,
                "{value}"
            );
        }
    }

    #[test]
    fn a_value_no_kafka_offset_can_reach_is_unusable() {
        for value in ["1e30", "1.2e19", "18446744073709551615"] {
            let body = vector(&sample("a", "t", &format!(r#""{value}""#)));
            let reading = parse(&body).unwrap();
            assert!(
                matches!(&reading, LagReading::NoData(d) if d.unusable_samples == 1),
                "{value}: {reading:?}"
            );
        }
        let body = vector(&sample("a", "t", r#""9223372036854775807""#));
        assert_eq!(
            known_value(&body, Aggregation::Max).value,
            9_223_372_036_854_775_808,
            "the largest offset, as near as a float gets"
        );
    }

    #[test]
    fn scalar_results_are_read() {
        let body = concat!(
            r#"{"status":"success","#,
            r#""data":{"resultType":"scalar","result":[1712345678.5,"250000"]}}"#
        );
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
    fn null_warnings_are_no_warnings() {
        let body = r#"{"status":"success","warnings":null,
            "data":{"resultType":"vector","result":[{"metric":{},"value":[1,"5"]}]}}"#;
        let lag = known_value(body, Aggregation::Max);
        assert_eq!(lag.value, 5);
        assert!(!lag.discards.is_partial());
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
        let body = concat!(
            r#"{"status":"error","errorType":"bad_data","#,
            r#""error":"invalid parameter \"query\": 1:38: parse error: unexpected \"}\""}"#
        );
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
                concat!(
                    r#"{"status":"success","data":{"resultType":"vector","#,
                    r#""result":[{"metric":{},"value":[1,"lots"]}]}}"#
                ),
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
    fn a_body_that_is_not_utf8_is_refused() {
        let mut body = vector(&sample("cg-a", "orders", r#""5""#)).into_bytes();
        let at = body.iter().position(|&b| b == b'c').unwrap();
        body[at] = 0xff;

        let problem = parse_response(&body, Aggregation::Max).unwrap_err();

        assert!(
            matches!(&problem, BodyProblem::NotJson(why) if why.contains("utf-8")),
            "{problem}"
        );
    }

    #[test]
    fn a_body_over_the_limit_is_refused_before_it_is_read() {
        let mut body = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(
            parse_response(&body, Aggregation::Max),
            Err(BodyProblem::TooLarge),
            "blank, but too large to call empty"
        );
        body[0] = b'{';

        assert_eq!(
            parse_response(&body, Aggregation::Max),
            Err(BodyProblem::TooLarge)
        );
    }

    #[test]
    fn duplicates_are_found_however_far_apart_and_however_the_table_grew() {
        // Short samples, many more than the table is first sized for, so that it is regrown
        // between a series and its duplicate.
        let first: Vec<String> = (0..3_000)
            .map(|i| sample(&format!("g{i}"), "t", &format!(r#""{i}""#)))
            .collect();
        let again: Vec<String> = (0..3_000)
            .map(|i| sample(&format!("g{i}"), "t", r#""1""#))
            .collect();
        let body = vector(&[first.join(","), again.join(",")].join(","));

        let lag = known_value(&body, Aggregation::Sum);

        assert_eq!(lag.series, 3_000);
        assert_eq!(lag.value, (0..3_000).map(|i| i.max(1)).sum::<u64>());
    }

    #[test]
    fn a_sum_too_large_for_the_counter_saturates() {
        let body = vector(
            &[
                sample("a", "t", "9e18"),
                sample("b", "t", "9e18"),
                sample("c", "t", "9e18"),
            ]
            .join(","),
        );
        assert_eq!(known_value(&body, Aggregation::Sum).value, u64::MAX);
    }

    #[test]
    fn a_result_written_before_its_type_is_still_read() {
        let body = r#"{"status":"success","data":{"result":[{"metric":{"topic":"t"},
            "value":[1,"9"]}],"resultType":"vector"}}"#;
        assert_eq!(known_value(body, Aggregation::Max).value, 9);
    }

    #[test]
    fn label_sets_differing_only_in_escapes_or_nul_are_distinct_series() {
        let body = vector(
            r#"{"metric":{"g":"a\u0000b"},"value":[1,"2"]},
               {"metric":{"g":"a\u0000"},"value":[1,"3"]},
               {"metric":{"g":"a\"b"},"value":[1,"5"]}"#,
        );

        let lag = known_value(&body, Aggregation::Sum);
        assert_eq!((lag.value, lag.series), (10, 3));

        let lag = known_value(&body, Aggregation::Max);
        assert_eq!(lag.driver, r#"{g="a\"b"}"#);
    }

    #[test]
    fn one_label_set_written_in_other_ways_is_still_one_series() {
        // As Prometheus writes it, then with spaces, in another order, and with escapes that
        // read as the same text.
        let body = vector(
            r#"{"metric":{"consumergroup":"a","topic":"t/1"},"value":[1,"7"]},
               {"metric":{ "consumergroup" : "a" , "topic" : "t/1" },"value":[1,"9"]},
               {"metric":{"topic":"t/1","consumergroup":"a"},"value":[1,"3"]},
               {"metric":{"consumergroup":"a","topic":"t\/1"},"value":[1,"5"]},
               {"metric":{"consumergroup":"\u0061","topic":"t/1"},"value":[1,"4"]},
               {"metric":{"consumergroup":"b","topic":"t/1"},"value":[1,"1"]}"#,
        );

        let lag = known_value(&body, Aggregation::Sum);

        assert_eq!((lag.value, lag.series), (10, 2), "{lag:?}");
    }

    #[test]
    fn a_driver_copied_out_of_the_body_is_named_as_one_read_from_it() {
        for (metric, driver) in [
            (
                r#"{"topic":"t","consumergroup":"a"}"#,
                r#"{consumergroup="a", topic="t"}"#,
            ),
            (r#"{"g":"tab\there"}"#, r#"{g="tab\there"}"#),
            (r#"{"g":"caf\u00e9"}"#, r#"{g="café"}"#),
            (r#"{"g" : "spaced"}"#, r#"{g="spaced"}"#),
        ] {
            let body = vector(&format!(r#"{{"metric":{metric},"value":[1,"2"]}}"#));
            assert_eq!(
                known_value(&body, Aggregation::Max).driver,
                driver,
                "{metric}"
            );
        }
    }

    #[test]
    fn a_metric_that_is_not_a_map_of_strings_is_malformed() {
        for metric in ["null", r#"{"partition":0}"#, r#"["a"]"#] {
            let body = vector(&format!(r#"{{"metric":{metric},"value":[1,"2"]}}"#));
            let problem = parse(&body).unwrap_err();
            assert!(
                matches!(
                    &problem,
                    BodyProblem::MalformedResult {
                        result_type: "vector",
                        ..
                    }
                ),
                "{metric}: {problem}"
            );
        }
    }

    /// Bodies as Prometheus writes them, for the reader of that form.
    fn prometheus_bodies() -> Vec<String> {
        let many: Vec<String> = (0..40)
            .map(|i| {
                let value = match i % 10 {
                    3 => r#""-1""#.to_owned(),
                    5 => r#""NaN""#.to_owned(),
                    7 => r#""2.5e3""#.to_owned(),
                    _ => format!(r#""{}""#, i * 1_000),
                };
                sample(&format!("group-{}", i % 7), &format!("t{i}"), &value)
            })
            .collect();
        vec![
            vector(""),
            vector(&sample("cg-a", "orders", r#""12000000""#)),
            vector(&many.join(",")),
            vector(concat!(
                r#"{"metric":{},"value":[0.5,"3"]},"#,
                r#"{"metric":{"g":"café"},"value":[9,"+Inf"]}"#
            )),
        ]
    }

    #[test]
    fn bodies_as_prometheus_writes_them_are_read_without_serde_json_to_the_same_figures() {
        for body in prometheus_bodies() {
            for aggregation in [Aggregation::Max, Aggregation::Sum] {
                let table = written::read_vector(&body).expect("Prometheus's own form");
                assert_eq!(
                    Ok(aggregate_vector(table, aggregation, Discards::default())),
                    read_envelope(&body, aggregation),
                    "{body}"
                );
            }
        }
    }

    #[test]
    fn a_label_set_as_prometheus_writes_it_is_its_own_key() {
        let members = r#""__name__":"lag","consumergroup":"café","topic":"t/1""#;
        let body = vector(&format!(r#"{{"metric":{{{members}}},"value":[1,"2"]}}"#));
        let table = written::read_vector(&body).expect("Prometheus's own form");
        let (taken, _) = table.iter().next().expect("one series");

        let mut labels: LabelPairs = [
            ("topic", "t/1"),
            ("__name__", "lag"),
            ("consumergroup", "café"),
        ]
        .into_iter()
        .map(|(name, value)| (Cow::from(name), Cow::from(value)))
        .collect();
        let mut written = Vec::new();
        canonical_key(&mut labels, &mut written);

        assert_eq!(taken, members.as_bytes());
        assert_eq!(written, members.as_bytes());
    }

    #[test]
    fn a_body_in_any_other_form_is_left_to_serde_json() {
        let one = |metric: &str, value: &str| {
            vector(&format!(r#"{{"metric":{metric},"value":{value}}}"#))
        };
        let cases = [
            (one(r#"{"g":"a"}"#, r#"[1, "2"]"#), "a space"),
            (one(r#"{"g":"a\"b"}"#, r#"[1,"2"]"#), "an escape"),
            (one(r#"{"g":"a\u0026b"}"#, r#"[1,"2"]"#), "Go's escape of &"),
            (
                one(r#"{"t":"a","g":"b"}"#, r#"[1,"2"]"#),
                "labels out of order",
            ),
            (
                one(r#"{"g":"a","g":"b"}"#, r#"[1,"2"]"#),
                "a repeated label",
            ),
            (one(r#"{"g":"a"}"#, "[1,2]"), "a value as a JSON number"),
            (
                one(r#"{"g":"a"}"#, r#"[1e3,"2"]"#),
                "a timestamp with an exponent",
            ),
            (
                one(r#"{"g":"a"}"#, r#"[01,"2"]"#),
                "a timestamp with a leading zero",
            ),
            (
                one(r#"{"g":"a"}"#, r#"[1,"lots"]"#),
                "a value that is not a number",
            ),
            (
                vector(r#"{"metric":{"g":"a"},"histogram":[1,{"count":"1"}]}"#),
                "a histogram",
            ),
            (
                format!("{}x", vector(&sample("a", "t", r#""1""#))),
                "something after the body",
            ),
            (
                concat!(
                    r#"{"status":"success","data":{"resultType":"vector","result":[]},"#,
                    r#""warnings":["w"]}"#
                )
                .to_owned(),
                "warnings",
            ),
        ];
        for (body, why) in cases {
            assert!(written::read_vector(&body).is_none(), "{why}: {body}");
        }
    }

    #[test]
    fn wherever_the_reader_of_prometheus_form_takes_a_body_serde_json_reads_the_same() {
        // Every body in Prometheus's form, with one byte changed, dropped or doubled, many
        // times over: the reader must decline each one it cannot read as serde_json does.
        let replacements = b"\"\\,:{}[] 0123-.eE+\x01\x7faz";
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % below as u64).expect("below a usize")
        };
        let (mut taken, mut tried) = (0, 0);
        for body in prometheus_bodies() {
            for _ in 0..4_000 {
                let mut bytes = body.clone().into_bytes();
                let at = next(bytes.len());
                match next(3) {
                    0 => bytes[at] = replacements[next(replacements.len())],
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, bytes[at]),
                }
                let Ok(text) = std::str::from_utf8(&bytes) else {
                    continue;
                };
                tried += 1;
                for aggregation in [Aggregation::Max, Aggregation::Sum] {
                    if let Some(table) = written::read_vector(text) {
                        taken += 1;
                        assert_eq!(
                            Ok(aggregate_vector(table, aggregation, Discards::default())),
                            read_envelope(text, aggregation),
                            "{text}"
                        );
                    }
                }
            }
        }
        // Enough of the changed bodies are still in the form for the comparison to mean
        // something, and most are not.
        assert!(taken > 1_000 && taken < tried, "{taken} of {tried}");
    }

    #[test]
    fn the_oldest_and_newest_stamps_are_kept_in_either_form_and_for_a_scalar() {
        let stamped = |at: &str| format!(r#"{{"metric":{{"topic":"t{at}"}},"value":[{at},"5"]}}"#);
        let samples = ["1712345678.5", "1712345600", "1712345700.25"].map(stamped);
        let written = vector(&samples.join(","));
        let spaced = written.replace(',', ", ");
        let expected = Some(Stamps {
            oldest: 1_712_345_600.0,
            newest: 1_712_345_700.25,
        });
        for body in [&written, &spaced] {
            let parsed = parse_response(body.as_bytes(), Aggregation::Max).unwrap();
            assert_eq!(parsed.stamped, expected, "{body}");
        }
        assert!(
            written::read_vector(&written).is_some(),
            "the written form's reader took it"
        );

        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[17.5,"1"]}}"#;
        let parsed = parse_response(scalar.as_bytes(), Aggregation::Max).unwrap();
        assert_eq!(parsed.stamped, Some(Stamps::of(17.5)));
        let empty = parse_response(vector("").as_bytes(), Aggregation::Max).unwrap();
        assert_eq!(empty.stamped, None);
    }

    #[test]
    fn a_sample_without_a_usable_value_still_stamps_the_answer() {
        let body = vector(r#"{"metric":{"topic":"t"},"value":[1712345678,"NaN"]}"#);
        let parsed = parse_response(body.as_bytes(), Aggregation::Max).unwrap();
        assert_eq!(parsed.stamped, Some(Stamps::of(1_712_345_678.0)));
    }

    #[test]
    fn samples_stamped_about_now_pass_and_old_or_future_ones_are_refused() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |offset: f64| Some(Stamps::of(1_800_000_000.0 + offset));
        for fresh in [0.0, -30.0, -119.5, 119.5] {
            assert_eq!(check_stamps(at(fresh), now), Ok(()), "{fresh}");
        }
        assert_eq!(
            check_stamps(None, now),
            Ok(()),
            "an empty answer has no stamp to check"
        );

        let day_old = check_stamps(at(-86_400.0), now).unwrap_err();
        assert_eq!(
            day_old,
            BodyProblem::Stale {
                stamp: 1_799_913_600,
                seconds: 86_400,
                direction: "behind"
            }
        );
        assert!(
            day_old
                .to_string()
                .contains("86400 s behind this function's clock"),
            "{day_old}"
        );
        let ahead = check_stamps(at(600.0), now).unwrap_err();
        assert!(ahead.to_string().contains("600 s ahead of"), "{ahead}");

        // One old sample among fresh ones is enough: the answer was not evaluated now.
        let mixed = Some(Stamps {
            oldest: 1_800_000_000.0 - 3_600.0,
            newest: 1_800_000_000.0,
        });
        assert!(matches!(
            check_stamps(mixed, now),
            Err(BodyProblem::Stale { seconds: 3_600, .. })
        ));
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
