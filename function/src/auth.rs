//! How queries authenticate to Prometheus, chosen once per cold start.
//!
//! * `none` (default): no credentials, for an open Prometheus inside the network.
//! * `basic`: `user:pass@` in `PROMETHEUS_ENDPOINT`, or the secret that
//!   `PROMETHEUS_BASIC_AUTH_SECRET_ARN` names.
//! * `bearer`: the token in the secret that `PROMETHEUS_TOKEN_SECRET_ARN` names.
//! * `sigv4`: the function's own AWS credentials, for Amazon Managed Service for Prometheus;
//!   the Region comes from `PROMETHEUS_SIGV4_REGION` or the `aps-workspaces.<region>` host.
//!
//! Left unset, the mode follows the credentials given: `basic` with `user:pass@` or a
//! basic-auth secret, `bearer` with a token secret, otherwise `none`. Credentials that the
//! chosen mode would not use are refused rather than ignored.
//!
//! `PROMETHEUS_HEADERS` adds headers to every query in any mode: comma-separated
//! `Name=value` pairs, e.g. `X-Scope-OrgID=team-a` for a Mimir or Cortex tenant. Errors
//! about them name the header, never its value, which may be a key.

use std::fmt;
use std::time::SystemTime;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Request, RequestBuilder};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use thiserror::Error;
use url::Url;

use crate::config::{redact_url_text, BasicAuth, ConfigError};
use crate::prometheus::error_chain;
use crate::secrets::{
    ReadSecret, SecretValues, PROMETHEUS_BASIC_AUTH_SECRET_ARN, PROMETHEUS_TOKEN_SECRET_ARN,
};

const AUTH: &str = "PROMETHEUS_AUTH";
const HEADERS: &str = "PROMETHEUS_HEADERS";
const SIGV4_REGION: &str = "PROMETHEUS_SIGV4_REGION";
/// The signing name of Amazon Managed Service for Prometheus.
const SIGV4_SERVICE: &str = "aps";

/// Headers the scaler sets itself, or that the auth mode owns.
const RESERVED_HEADERS: [&str; 6] = [
    "authorization",
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
];

/// The credentials each query carries.
#[derive(Debug, Clone)]
pub enum AuthMode {
    None,
    Basic(BasicAuth),
    Bearer(SecretString),
    SigV4(SigV4),
}

impl AuthMode {
    /// The name used in `PROMETHEUS_AUTH`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::Basic(_) => "basic",
            AuthMode::Bearer(_) => "bearer",
            AuthMode::SigV4(_) => "sigv4",
        }
    }
}

/// SigV4 signing for service `aps`, with credentials from the SDK configuration.
#[derive(Debug, Clone)]
pub struct SigV4 {
    pub region: String,
    credentials: Option<SharedCredentialsProvider>,
}

/// How every query authenticates: the mode, plus any extra headers.
#[derive(Debug, Clone)]
pub struct PrometheusAuth {
    pub mode: AuthMode,
    pub headers: ExtraHeaders,
}

/// Headers from `PROMETHEUS_HEADERS`. `Debug` shows their names only.
#[derive(Clone, Default)]
pub struct ExtraHeaders(Vec<(HeaderName, HeaderValue)>);

impl fmt::Debug for ExtraHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| format!("{name}: …")))
            .finish()
    }
}

/// Why a query could not be signed.
#[derive(Debug, Error)]
pub enum SigningError {
    #[error("the function has no AWS credentials to sign with")]
    NoCredentials,
    #[error("could not get the function's AWS credentials: {0}")]
    Credentials(String),
    #[error("{0}")]
    Sign(String),
}

impl PrometheusAuth {
    /// Reads `PROMETHEUS_AUTH`, `PROMETHEUS_HEADERS` and `PROMETHEUS_SIGV4_REGION`, with the
    /// credentials taken out of the endpoint (`from_url`) and the secrets read at cold start.
    pub fn parse(
        get: &impl Fn(&str) -> Option<String>,
        query_url: &Url,
        from_url: Option<BasicAuth>,
        secrets: &SecretValues,
    ) -> Result<Self, ConfigError> {
        let headers = ExtraHeaders::parse(get)?;
        let basic_secret = secrets.get(get, PROMETHEUS_BASIC_AUTH_SECRET_ARN)?;
        let token_secret = secrets.get(get, PROMETHEUS_TOKEN_SECRET_ARN)?;

        let name = match get(AUTH).map(|raw| raw.trim().to_ascii_lowercase()) {
            Some(name) if ["none", "basic", "bearer", "sigv4"].contains(&name.as_str()) => name,
            Some(other) => {
                return Err(invalid(
                    AUTH,
                    &other,
                    "expected `none`, `basic`, `bearer` or `sigv4`",
                ))
            }
            None if from_url.is_some() || basic_secret.is_some() => "basic".to_owned(),
            None if token_secret.is_some() => "bearer".to_owned(),
            None => "none".to_owned(),
        };

        if name != "basic" {
            if from_url.is_some() {
                return Err(invalid(
                    "PROMETHEUS_ENDPOINT",
                    &redact_url_text(query_url.as_str()),
                    &format!(
                        "credentials in the URL are used only with PROMETHEUS_AUTH=basic, and it \
                         is `{name}`"
                    ),
                ));
            }
            refuse_unused(
                basic_secret,
                PROMETHEUS_BASIC_AUTH_SECRET_ARN,
                "basic",
                &name,
            )?;
        }
        if name != "bearer" {
            refuse_unused(token_secret, PROMETHEUS_TOKEN_SECRET_ARN, "bearer", &name)?;
        }
        if name != "sigv4" {
            if let Some(region) = get(SIGV4_REGION) {
                return Err(invalid(
                    SIGV4_REGION,
                    &region,
                    &format!("it is used only with PROMETHEUS_AUTH=sigv4, and it is `{name}`"),
                ));
            }
        }

        let mode = match name.as_str() {
            "basic" => AuthMode::Basic(match (from_url, basic_secret) {
                (Some(_), Some(secret)) => {
                    return Err(invalid(
                        PROMETHEUS_BASIC_AUTH_SECRET_ARN,
                        &secret.arn,
                        "use either `user:pass@` in PROMETHEUS_ENDPOINT or this secret, not both",
                    ))
                }
                (Some(auth), None) => auth,
                (None, Some(secret)) => basic_from_secret(secret)?,
                (None, None) => {
                    return Err(ConfigError::Missing {
                        variable: PROMETHEUS_BASIC_AUTH_SECRET_ARN,
                        expected: "PROMETHEUS_AUTH=basic needs credentials: set it to a secret \
                                   holding `user:password`, or put `user:pass@` in \
                                   PROMETHEUS_ENDPOINT",
                    })
                }
            }),
            "bearer" => AuthMode::Bearer(token_from_secret(token_secret.ok_or(
                ConfigError::Missing {
                    variable: PROMETHEUS_TOKEN_SECRET_ARN,
                    expected: "PROMETHEUS_AUTH=bearer reads its token from Secrets Manager: set \
                               it to the secret's ARN",
                },
            )?)?),
            "sigv4" => AuthMode::SigV4(SigV4 {
                region: sigv4_region(get, query_url)?,
                credentials: None,
            }),
            _ => AuthMode::None,
        };
        Ok(PrometheusAuth { mode, headers })
    }

    /// Gives SigV4 the credentials to sign with (the SDK configuration's provider, which
    /// refreshes them as they expire). Other modes ignore them.
    pub fn use_credentials(&mut self, provider: Option<&SharedCredentialsProvider>) {
        if let AuthMode::SigV4(sigv4) = &mut self.mode {
            sigv4.credentials = provider.cloned();
        }
    }

    /// Adds the extra headers and the basic or bearer credentials to a request.
    pub fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        let request = self
            .headers
            .0
            .iter()
            .fold(request, |request, (name, value)| {
                request.header(name, value)
            });
        match &self.mode {
            AuthMode::Basic(auth) => {
                request.basic_auth(&auth.username, Some(auth.password.expose_secret()))
            }
            AuthMode::Bearer(token) => request.bearer_auth(token.expose_secret()),
            AuthMode::None | AuthMode::SigV4(_) => request,
        }
    }

    /// Signs a built request in `sigv4` mode, covering its headers and its body (the query
    /// form); returns it unchanged in the other modes.
    pub async fn sign(&self, request: Request) -> Result<Request, SigningError> {
        match &self.mode {
            AuthMode::SigV4(sigv4) => sigv4.sign(request).await,
            _ => Ok(request),
        }
    }

    /// What to check when the endpoint answers 401 or 403, for the error message.
    pub fn refusal_hint(&self) -> String {
        match &self.mode {
            AuthMode::SigV4(sigv4) => format!(
                "the SigV4-signed query was refused: check that the function's role allows \
                 aps:QueryMetrics on this workspace and that the signing Region `{}` is the \
                 workspace's (PROMETHEUS_SIGV4_REGION)",
                sigv4.region
            ),
            AuthMode::Basic(_) => {
                "check the basic-auth credentials (PROMETHEUS_BASIC_AUTH_SECRET_ARN \
                                  or `user:pass@` in PROMETHEUS_ENDPOINT)"
                    .to_owned()
            }
            AuthMode::Bearer(_) => {
                "check the token in the secret PROMETHEUS_TOKEN_SECRET_ARN names".to_owned()
            }
            AuthMode::None => "the endpoint wants credentials: set PROMETHEUS_AUTH (`basic`, \
                               `bearer` or `sigv4`), or a tenant header in PROMETHEUS_HEADERS"
                .to_owned(),
        }
    }
}

impl SigV4 {
    async fn sign(&self, mut request: Request) -> Result<Request, SigningError> {
        let provider = self
            .credentials
            .as_ref()
            .ok_or(SigningError::NoCredentials)?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|error| SigningError::Credentials(error_chain(&error)))?;
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SIGV4_SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|error| SigningError::Sign(error.to_string()))?
            .into();

        let instructions = {
            let headers = request
                .headers()
                .iter()
                .map(|(name, value)| Ok((name.as_str(), value.to_str()?)))
                .collect::<Result<Vec<_>, reqwest::header::ToStrError>>()
                .map_err(|error| SigningError::Sign(error.to_string()))?;
            let body = request
                .body()
                .and_then(reqwest::Body::as_bytes)
                .unwrap_or_default();
            let signable = SignableRequest::new(
                request.method().as_str(),
                request.url().as_str(),
                headers.into_iter(),
                SignableBody::Bytes(body),
            )
            .map_err(|error| SigningError::Sign(error_chain(&error)))?;
            sign(signable, &params)
                .map_err(|error| SigningError::Sign(error_chain(&error)))?
                .into_parts()
                .0
        };
        let (headers, _query_params) = instructions.into_parts();
        for header in headers {
            let mut value = HeaderValue::from_str(header.value())
                .map_err(|error| SigningError::Sign(error.to_string()))?;
            value.set_sensitive(header.sensitive());
            request
                .headers_mut()
                .insert(HeaderName::from_static(header.name()), value);
        }
        Ok(request)
    }
}

impl ExtraHeaders {
    /// Reads `PROMETHEUS_HEADERS`: `Name=value` pairs separated by commas.
    fn parse(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let Some(raw) = get(HEADERS) else {
            return Ok(Self::default());
        };
        let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
        for (position, entry) in raw
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let Some((name, value)) = entry.split_once('=') else {
                return Err(malformed_header(position + 1, entry));
            };
            let shown = name.trim();
            // The text before `=` may hold part of a value (`Name: token=`, `Name;token=`), so
            // a name that is not one is never quoted.
            let Ok(name) = HeaderName::from_bytes(shown.as_bytes()) else {
                return Err(malformed_header(position + 1, entry));
            };
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| header_error(shown, "has a value with characters HTTP refuses"))?;
            if RESERVED_HEADERS.contains(&name.as_str()) || name.as_str().starts_with("x-amz-") {
                return Err(header_error(
                    shown,
                    "is set by the scaler or by PROMETHEUS_AUTH; leave it out",
                ));
            }
            if headers.iter().any(|(seen, _)| *seen == name) {
                return Err(header_error(shown, "appears twice"));
            }
            headers.push((name, value));
        }
        Ok(Self(headers))
    }

    /// The header names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_str()).collect()
    }
}

/// An error about one `PROMETHEUS_HEADERS` entry, naming the header but not its value.
/// An entry without `=`, or whose text before `=` is no header name: its text may be a value
/// (`Name: value`, or the tail of a value that held a comma), so only its position and, when it
/// reads `Name: value`, the name are shown.
fn malformed_header(position: usize, entry: &str) -> ConfigError {
    let colon_name = entry
        .split_once(':')
        .map(|(name, _)| name.trim())
        .filter(|name| HeaderName::from_bytes(name.as_bytes()).is_ok());
    let problem = match colon_name {
        Some(name) => format!("entry {position} reads `{name}: …`; write it as `{name}=…`"),
        None if entry.contains('=') => format!(
            "entry {position} does not start with a valid header name (letters, digits and \
             `-`, then `=`)"
        ),
        None => format!(
            "entry {position} is not `Name=value` (a value cannot hold a comma, which separates \
             headers)"
        ),
    };
    ConfigError::Hidden {
        variable: HEADERS,
        problem,
        expected: "expected comma-separated `Name=value` pairs such as `X-Scope-OrgID=team-a`"
            .to_owned(),
    }
}

fn header_error(name: &str, problem: &str) -> ConfigError {
    let name = name.split_once('=').map_or(name, |(name, _)| name).trim();
    ConfigError::Invalid {
        variable: HEADERS,
        value: format!("{name}=…"),
        expected: format!(
            "header `{name}` {problem}; expected comma-separated `Name=value` pairs such as \
             `X-Scope-OrgID=team-a` (values are not shown)"
        ),
    }
}

/// The `message` a refusing server sent (Amazon Managed Prometheus says which permission or
/// which part of the signature failed), as `: "…"` for an error; empty when there is none.
pub fn refusal_detail(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Refusal {
        #[serde(alias = "Message")]
        message: String,
    }
    match serde_json::from_slice::<Refusal>(body) {
        Ok(refusal) => {
            let message: String = refusal.message.chars().take(300).collect();
            format!(": \"{message}\"")
        }
        Err(_) => String::new(),
    }
}

fn invalid(variable: &'static str, value: &str, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        variable,
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}

fn refuse_unused(
    secret: Option<&ReadSecret>,
    variable: &'static str,
    needs: &str,
    mode: &str,
) -> Result<(), ConfigError> {
    match secret {
        Some(secret) => Err(invalid(
            variable,
            &secret.arn,
            &format!("it is used only with PROMETHEUS_AUTH={needs}, and it is `{mode}`"),
        )),
        None => Ok(()),
    }
}

#[derive(Deserialize)]
struct BasicAuthJson {
    username: String,
    password: String,
}

/// `user:password`, or the JSON object the Secrets Manager console writes for key/value pairs.
fn basic_from_secret(secret: &ReadSecret) -> Result<BasicAuth, ConfigError> {
    let text = secret.value.expose_secret().trim();
    let pair = if text.starts_with('{') {
        serde_json::from_str::<BasicAuthJson>(text)
            .ok()
            .map(|json| (json.username, json.password))
    } else {
        text.split_once(':')
            .map(|(user, password)| (user.to_owned(), password.to_owned()))
    };
    match pair {
        Some((username, password)) if !username.is_empty() => Ok(BasicAuth {
            username,
            password: SecretString::from(password),
        }),
        _ => Err(invalid(
            PROMETHEUS_BASIC_AUTH_SECRET_ARN,
            &secret.arn,
            "expected the secret to hold `user:password` or \
             {\"username\": \"...\", \"password\": \"...\"}; its value is not shown",
        )),
    }
}

fn token_from_secret(secret: &ReadSecret) -> Result<SecretString, ConfigError> {
    let token = secret.value.expose_secret().trim();
    if token.is_empty() || HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
        return Err(invalid(
            PROMETHEUS_TOKEN_SECRET_ARN,
            &secret.arn,
            "expected the secret to hold one token of printable characters; its value is not \
             shown",
        ));
    }
    Ok(SecretString::from(token.to_owned()))
}

fn sigv4_region(
    get: &impl Fn(&str) -> Option<String>,
    query_url: &Url,
) -> Result<String, ConfigError> {
    if let Some(raw) = get(SIGV4_REGION) {
        let region = raw.trim();
        return if is_region(region) {
            Ok(region.to_owned())
        } else {
            Err(invalid(
                SIGV4_REGION,
                region,
                "expected an AWS Region code such as `eu-west-1`",
            ))
        };
    }
    region_from_host(query_url.host_str().unwrap_or_default()).ok_or(ConfigError::Missing {
        variable: SIGV4_REGION,
        expected: "PROMETHEUS_AUTH=sigv4 needs the workspace's Region: set it, or use the \
                   workspace URL `https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>`",
    })
}

/// The Region in an Amazon Managed Prometheus host: `aps-workspaces.<region>.amazonaws.com`,
/// its FIPS form, or an interface endpoint's `vpce-….aps-workspaces.<region>.vpce.…`.
fn region_from_host(host: &str) -> Option<String> {
    let labels: Vec<&str> = host.split('.').collect();
    labels
        .windows(2)
        .find(|pair| matches!(pair[0], "aps-workspaces" | "aps-workspaces-fips"))
        .map(|pair| pair[1])
        .filter(|region| is_region(region))
        .map(str::to_owned)
}

/// `eu-west-1`, `us-gov-west-1`, `ap-southeast-5`: lowercase words joined by `-`, ending in a
/// number.
fn is_region(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_credential_types::Credentials;

    use super::*;
    use crate::secrets::{read_secrets, SecretRefs, SecretStore};

    const URL: &str = "http://prom:9090/api/v1/query";
    const AMP_URL: &str =
        "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1234/api/v1/query";

    fn parse(url: &str, pairs: &[(&str, &str)]) -> Result<PrometheusAuth, ConfigError> {
        let env: HashMap<&str, &str> = pairs.iter().copied().collect();
        let get = |name: &str| env.get(name).map(|v| v.to_string());
        PrometheusAuth::parse(
            &get,
            &Url::parse(url).unwrap(),
            None,
            &SecretValues::default(),
        )
    }

    fn error_text(url: &str, pairs: &[(&str, &str)]) -> String {
        parse(url, pairs)
            .expect_err("should be refused")
            .to_string()
    }

    fn from_url() -> Option<BasicAuth> {
        Some(BasicAuth {
            username: "scaler".to_owned(),
            password: SecretString::from("hunter2"),
        })
    }

    #[test]
    fn no_auth_is_the_default() {
        let auth = parse(URL, &[]).unwrap();

        assert!(matches!(auth.mode, AuthMode::None));
        assert!(auth.headers.names().is_empty());
    }

    #[test]
    fn credentials_in_the_url_mean_basic_unless_another_mode_is_asked_for() {
        let url = Url::parse(URL).unwrap();
        let none = SecretValues::default();
        let get = |_: &str| None;
        let implied = PrometheusAuth::parse(&get, &url, from_url(), &none).unwrap();
        let sigv4 = |name: &str| (name == AUTH).then(|| "sigv4".to_owned());

        let refused = PrometheusAuth::parse(&sigv4, &url, from_url(), &none).unwrap_err();

        assert!(matches!(implied.mode, AuthMode::Basic(ref b) if b.username == "scaler"));
        let text = refused.to_string();
        assert!(
            text.starts_with("PROMETHEUS_ENDPOINT is `http://prom/…`"),
            "{text}"
        );
        assert!(text.contains("only with PROMETHEUS_AUTH=basic"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prom-AbCdEf";

    /// A store in which every secret holds the same text.
    struct Store(&'static str);

    impl SecretStore for Store {
        async fn read(&self, _arn: &str) -> Result<SecretString, String> {
            Ok(SecretString::from(self.0))
        }
    }

    /// Parses with the secret `variable` set to [`ARN`], holding `text`.
    async fn parse_with_secret(
        variable: &str,
        text: &'static str,
        pairs: &[(&str, &str)],
        from_url: Option<BasicAuth>,
    ) -> Result<PrometheusAuth, ConfigError> {
        let mut env: HashMap<&str, &str> = pairs.iter().copied().collect();
        env.insert(variable, ARN);
        let get = |name: &str| env.get(name).map(|v| v.to_string());
        let refs = SecretRefs::parse(get).unwrap();
        let secrets = read_secrets(&refs, &Store(text)).await.unwrap();
        PrometheusAuth::parse(&get, &Url::parse(URL).unwrap(), from_url, &secrets)
    }

    #[tokio::test]
    async fn basic_credentials_come_from_a_secret_as_text_or_json() {
        let basic = PROMETHEUS_BASIC_AUTH_SECRET_ARN;
        for text in [
            "scaler:pa:ss",
            r#"{"username": "scaler", "password": "pa:ss"}"#,
        ] {
            let auth = parse_with_secret(basic, text, &[], None).await.unwrap();

            let AuthMode::Basic(credentials) = auth.mode else {
                panic!("{text}: not basic")
            };
            assert_eq!(credentials.username, "scaler", "{text}");
            assert_eq!(credentials.password.expose_secret(), "pa:ss", "{text}");
        }
    }

    #[tokio::test]
    async fn a_token_secret_means_bearer() {
        let auth = parse_with_secret(PROMETHEUS_TOKEN_SECRET_ARN, " t0ken\n", &[], None)
            .await
            .unwrap();

        assert!(matches!(auth.mode, AuthMode::Bearer(ref t) if t.expose_secret() == "t0ken"));
    }

    #[tokio::test]
    async fn unusable_secrets_are_refused_by_arn_without_their_value() {
        let basic = PROMETHEUS_BASIC_AUTH_SECRET_ARN;
        let token = PROMETHEUS_TOKEN_SECRET_ARN;
        let cases = [
            (basic, "s3cr3t", vec![], None, "`user:password`"),
            (basic, "u:s3cr3t", vec![], from_url(), "not both"),
            (
                basic,
                "u:s3cr3t",
                vec![(AUTH, "bearer")],
                None,
                "only with PROMETHEUS_AUTH=basic",
            ),
            (
                token,
                "s3cr3t",
                vec![(AUTH, "sigv4"), (SIGV4_REGION, "eu-west-1")],
                None,
                "only with PROMETHEUS_AUTH=bearer",
            ),
            (
                token,
                "s3c\nr3t",
                vec![],
                None,
                "one token of printable characters",
            ),
        ];
        for (variable, text, pairs, from_url, expected) in cases {
            let error = parse_with_secret(variable, text, &pairs, from_url)
                .await
                .expect_err(expected)
                .to_string();

            assert!(
                error.starts_with(&format!("{variable} is `{ARN}`")),
                "{error}"
            );
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("s3c"), "{error}");
        }
    }

    #[test]
    fn each_mode_names_what_it_is_missing() {
        let cases = [
            ("basic", "PROMETHEUS_BASIC_AUTH_SECRET_ARN is not set"),
            ("bearer", "PROMETHEUS_TOKEN_SECRET_ARN is not set"),
            ("sigv4", "PROMETHEUS_SIGV4_REGION is not set"),
            (
                "digest",
                "PROMETHEUS_AUTH is `digest`; expected `none`, `basic`",
            ),
        ];
        for (mode, expected) in cases {
            let text = error_text(URL, &[(AUTH, mode)]);
            assert!(text.starts_with(expected), "{mode}: {text}");
        }
    }

    #[test]
    fn sigv4_takes_the_region_from_the_workspace_host_or_the_variable() {
        let cases = [
            (AMP_URL, None, "eu-west-1"),
            (
                "https://aps-workspaces-fips.us-gov-west-1.amazonaws.com/workspaces/ws-1",
                None,
                "us-gov-west-1",
            ),
            (
                "https://vpce-0a1b.aps-workspaces.ap-southeast-2.vpce.amazonaws.com/workspaces/w",
                None,
                "ap-southeast-2",
            ),
            (AMP_URL, Some("us-east-1"), "us-east-1"),
            (
                "http://127.0.0.1:9999/workspaces/ws-1",
                Some("us-east-1"),
                "us-east-1",
            ),
        ];
        for (url, region, expected) in cases {
            let mut pairs = vec![(AUTH, "sigv4")];
            pairs.extend(region.map(|r| (SIGV4_REGION, r)));
            let auth = parse(url, &pairs).unwrap();
            let AuthMode::SigV4(sigv4) = auth.mode else {
                panic!("{url}: not sigv4")
            };
            assert_eq!(sigv4.region, expected, "{url}");
        }
    }

    #[test]
    fn a_malformed_region_or_one_without_sigv4_is_refused() {
        let text = error_text(AMP_URL, &[(AUTH, "sigv4"), (SIGV4_REGION, "Europe")]);
        assert!(
            text.starts_with("PROMETHEUS_SIGV4_REGION is `Europe`"),
            "{text}"
        );
        assert!(text.contains("`eu-west-1`"), "{text}");

        let text = error_text(URL, &[(SIGV4_REGION, "eu-west-1")]);
        assert!(text.contains("only with PROMETHEUS_AUTH=sigv4"), "{text}");
    }

    #[test]
    fn extra_headers_are_parsed_in_order() {
        let auth = parse(
            URL,
            &[(HEADERS, " X-Scope-OrgID = team-a|team-b , X-Extra=1 ")],
        )
        .unwrap();

        assert_eq!(auth.headers.names(), ["x-scope-orgid", "x-extra"]);
        assert_eq!(auth.headers.0[0].1, "team-a|team-b");
    }

    #[test]
    fn bad_headers_are_named_without_their_values() {
        let cases = [
            ("X-Scope-OrgID", "entry 1 is not `Name=value`"),
            ("X Bad=1", "entry 1 does not start with a valid header name"),
            (
                "Authorization=Bearer s3cr3t",
                "set by the scaler or by PROMETHEUS_AUTH",
            ),
            (
                "X-Amz-Date=s3cr3t",
                "set by the scaler or by PROMETHEUS_AUTH",
            ),
            ("A=1,a=s3cr3t", "appears twice"),
            ("X-Key=s3cr3t\u{7f}", "characters HTTP refuses"),
        ];
        for (raw, expected) in cases {
            let text = error_text(URL, &[(HEADERS, raw)]);
            assert!(text.starts_with("PROMETHEUS_HEADERS "), "{raw}: {text}");
            assert!(text.contains(expected), "{raw}: {text}");
            assert!(!text.contains("s3cr3t"), "{raw}: {text}");
        }
    }

    #[test]
    fn an_entry_without_an_equals_sign_is_placed_never_quoted() {
        let cases = [
            // Written the HTTP way, with a colon.
            (
                "X-Api-Key: s3cr3t",
                "entry 1 reads `X-Api-Key: …`; write it as `X-Api-Key=…`",
            ),
            // Written with a colon, and a value with `=` in it (base64 padding).
            (
                "X-Api-Key: s3cr3t==",
                "entry 1 reads `X-Api-Key: …`; write it as `X-Api-Key=…`",
            ),
            (
                "Authorization: Bearer ey.s3cr3t=",
                "entry 1 reads `Authorization: …`; write it as `Authorization=…`",
            ),
            // Neither `=` nor `:` where a name ends.
            (
                "X-Tenant;s3cr3t=1",
                "entry 1 does not start with a valid header name",
            ),
            // A value that held a comma: its tail became an entry of its own.
            (
                "X-Api-Key=abc,tail-of-s3cr3t",
                "entry 2 is not `Name=value`",
            ),
        ];
        for (raw, expected) in cases {
            let text = error_text(URL, &[(HEADERS, raw)]);
            assert!(text.contains(expected), "{raw}: {text}");
            assert!(text.contains("the value is not shown"), "{raw}: {text}");
            assert!(!text.contains("s3cr3t"), "{raw}: {text}");
        }
    }

    #[test]
    fn debug_output_shows_header_names_and_no_credentials() {
        let mut auth = parse(URL, &[(HEADERS, "X-Api-Key=s3cr3t")]).unwrap();
        auth.mode = AuthMode::Bearer(SecretString::from("t0ken"));

        let shown = format!("{auth:?}");

        assert!(shown.contains("x-api-key"), "{shown}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("t0ken"),
            "{shown}"
        );
    }

    #[test]
    fn basic_and_bearer_credentials_and_extra_headers_reach_the_request() {
        let client = reqwest::Client::new();
        let mut auth = parse(URL, &[(HEADERS, "X-Scope-OrgID=team-a")]).unwrap();
        auth.mode = AuthMode::Bearer(SecretString::from("t0ken"));

        let request = auth.authorize(client.post(URL)).build().unwrap();

        assert_eq!(request.headers()["x-scope-orgid"], "team-a");
        assert_eq!(request.headers()["authorization"], "Bearer t0ken");
        assert!(request.headers()["authorization"].is_sensitive());
    }

    #[tokio::test]
    async fn sigv4_signs_headers_and_body_for_aps_in_the_region() {
        let mut auth = parse(AMP_URL, &[(AUTH, "sigv4")]).unwrap();
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", Some("tok".into()), None, "t");
        auth.use_credentials(Some(&SharedCredentialsProvider::new(credentials)));
        let request = reqwest::Client::new()
            .post(AMP_URL)
            .form(&[("query", "sum(up)")])
            .build()
            .unwrap();

        let signed = auth.sign(request).await.unwrap();

        let authorization = signed.headers()["authorization"].to_str().unwrap();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{authorization}"
        );
        assert!(
            authorization.contains("/eu-west-1/aps/aws4_request"),
            "{authorization}"
        );
        assert!(
            authorization
                .contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"),
            "{authorization}"
        );
        assert_eq!(signed.headers()["x-amz-security-token"], "tok");
        assert!(signed.headers()["x-amz-security-token"].is_sensitive());
    }

    #[tokio::test]
    async fn sigv4_without_credentials_fails_to_sign_rather_than_send_unsigned() {
        let auth = parse(AMP_URL, &[(AUTH, "sigv4")]).unwrap();
        let request = reqwest::Client::new().post(AMP_URL).build().unwrap();

        let error = auth.sign(request).await.unwrap_err();

        assert!(matches!(error, SigningError::NoCredentials));
    }

    #[test]
    fn a_refusal_quotes_the_servers_message_when_it_sent_one() {
        let amp = br#"{"message":"User: arn:aws:sts::1:assumed-role/r is not authorized"}"#;

        assert_eq!(
            refusal_detail(amp),
            r#": "User: arn:aws:sts::1:assumed-role/r is not authorized""#
        );
        assert_eq!(refusal_detail(b"<html>401</html>"), "");
    }

    #[test]
    fn a_refusal_points_at_what_the_mode_depends_on() {
        let sigv4 = parse(AMP_URL, &[(AUTH, "sigv4")]).unwrap();
        let none = parse(URL, &[]).unwrap();

        assert!(sigv4.refusal_hint().contains("aps:QueryMetrics"));
        assert!(sigv4.refusal_hint().contains("`eu-west-1`"));
        assert!(none.refusal_hint().contains("PROMETHEUS_AUTH"));
    }
}
