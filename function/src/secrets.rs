//! Secrets read from AWS Secrets Manager once per cold start, so that credentials and the
//! webhook URL stay out of plain environment variables (which anyone allowed
//! `lambda:GetFunctionConfiguration` can read).
//!
//! | variable                           | the secret's text                                 |
//! |------------------------------------|---------------------------------------------------|
//! | `WEBHOOK_URL_SECRET_ARN`           | the webhook URL, instead of `WEBHOOK_URL`         |
//! | `PROMETHEUS_TOKEN_SECRET_ARN`      | the token for `PROMETHEUS_AUTH=bearer`            |
//! | `PROMETHEUS_BASIC_AUTH_SECRET_ARN` | `user:password`, or `{"username":…,"password":…}` |
//!
//! Loading follows the rest of the configuration: [`SecretRefs::parse`] reads the ARNs
//! (pure), [`read_secrets`] fetches each secret once, and [`Config::parse_with`] takes the
//! values. An error names the variable and the ARN, never the secret's value.

use std::future::Future;

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::config::{Config, ConfigError};
use crate::prometheus::error_chain;

pub const WEBHOOK_URL_SECRET_ARN: &str = "WEBHOOK_URL_SECRET_ARN";
pub const PROMETHEUS_TOKEN_SECRET_ARN: &str = "PROMETHEUS_TOKEN_SECRET_ARN";
pub const PROMETHEUS_BASIC_AUTH_SECRET_ARN: &str = "PROMETHEUS_BASIC_AUTH_SECRET_ARN";

const SECRET_VARIABLES: [&str; 3] = [
    WEBHOOK_URL_SECRET_ARN,
    PROMETHEUS_TOKEN_SECRET_ARN,
    PROMETHEUS_BASIC_AUTH_SECRET_ARN,
];

/// The secrets a configuration names: each `*_SECRET_ARN` variable that is set, with its ARN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretRefs(Vec<(&'static str, String)>);

impl SecretRefs {
    /// Reads and checks the ARN variables. Empty values count as unset.
    pub fn parse(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        SECRET_VARIABLES
            .into_iter()
            .filter_map(|variable| {
                get(variable).map(|raw| parse_arn(variable, &raw).map(|arn| (variable, arn)))
            })
            .collect::<Result<_, _>>()
            .map(SecretRefs)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A secret as read at cold start. Its value is a [`SecretString`]: redacted in `Debug`.
#[derive(Debug, Clone)]
pub struct ReadSecret {
    pub arn: String,
    pub value: SecretString,
}

/// The secrets read at cold start, by the variable that named them.
#[derive(Debug, Clone, Default)]
pub struct SecretValues(Vec<(&'static str, ReadSecret)>);

impl SecretValues {
    /// The secret that `variable` names, or `None` when it is unset. A variable that is set
    /// but whose secret was not read (plain [`Config::parse`]) is an error, never a silent
    /// fallback to no credentials.
    pub fn get(
        &self,
        get: &impl Fn(&str) -> Option<String>,
        variable: &'static str,
    ) -> Result<Option<&ReadSecret>, ConfigError> {
        let Some(raw) = get(variable) else {
            return Ok(None);
        };
        let arn = parse_arn(variable, &raw)?;
        self.0
            .iter()
            .find(|(name, secret)| *name == variable && secret.arn == arn)
            .map(|(_, secret)| Some(secret))
            .ok_or_else(|| ConfigError::Invalid {
                variable,
                value: arn,
                expected: "a secret read at cold start, and it was not: load the configuration \
                           with `secrets::load_config`"
                    .to_owned(),
            })
    }

    /// The webhook URL: from `WEBHOOK_URL_SECRET_ARN` when set, else `plain` (`WEBHOOK_URL`).
    pub fn webhook_url(
        &self,
        get: &impl Fn(&str) -> Option<String>,
        plain: Option<SecretString>,
    ) -> Result<Option<SecretString>, ConfigError> {
        let Some(secret) = self.get(get, WEBHOOK_URL_SECRET_ARN)? else {
            return Ok(plain);
        };
        if plain.is_some() {
            return Err(ConfigError::Invalid {
                variable: WEBHOOK_URL_SECRET_ARN,
                value: secret.arn.clone(),
                expected: "set either WEBHOOK_URL or WEBHOOK_URL_SECRET_ARN, not both".to_owned(),
            });
        }
        let text = secret.value.expose_secret().trim();
        match Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
                Ok(Some(SecretString::from(url.to_string())))
            }
            _ => Err(ConfigError::Invalid {
                variable: WEBHOOK_URL_SECRET_ARN,
                value: secret.arn.clone(),
                expected: "the secret to hold an http(s) URL and nothing else; its value is not \
                           shown"
                    .to_owned(),
            }),
        }
    }
}

/// Accepts a Secrets Manager secret ARN, the only form IAM can scope `GetSecretValue` to.
fn parse_arn(variable: &'static str, raw: &str) -> Result<String, ConfigError> {
    let arn = raw.trim();
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    let well_formed = matches!(
        parts.as_slice(),
        ["arn", partition, "secretsmanager", region, account, "secret", name]
            if partition.starts_with("aws")
                && !region.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && !name.is_empty()
    );
    let expected = "expected a Secrets Manager secret ARN, e.g. \
                    `arn:aws:secretsmanager:eu-west-1:123456789012:secret:scaler/webhook-AbCdEf`"
        .to_owned();
    if well_formed {
        Ok(arn.to_owned())
    } else if arn.starts_with("arn:") {
        // An ARN with a mistake in it names a secret; it holds none.
        Err(ConfigError::Invalid {
            variable,
            value: arn.to_owned(),
            expected,
        })
    } else {
        Err(ConfigError::Hidden {
            variable,
            problem: format!(
                "holds {} characters that are not an ARN",
                arn.chars().count()
            ),
            expected,
        })
    }
}

/// Where secrets are read from; the real one is Secrets Manager.
pub trait SecretStore {
    /// The secret's text, or why it could not be had (never containing the value).
    fn read(&self, arn: &str) -> impl Future<Output = Result<SecretString, String>> + Send;
}

/// Secrets Manager through the SDK, with the function's own credentials.
#[derive(Debug, Clone)]
pub struct SecretsManager {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManager {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(sdk),
        }
    }
}

impl SecretStore for SecretsManager {
    async fn read(&self, arn: &str) -> Result<SecretString, String> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|error| match error.as_service_error() {
                Some(service) => format!(
                    "{}: {}",
                    service.code().unwrap_or("error"),
                    service.message().unwrap_or("no message")
                ),
                None => error_chain(&error),
            })?;
        output
            .secret_string
            .map(SecretString::from)
            .ok_or_else(|| "the secret holds binary data; store its value as text".to_owned())
    }
}

/// Reads every secret `refs` names, once. The first that cannot be read fails the
/// configuration with an error naming its variable and ARN; `main` tries it again on the next
/// invocation.
pub async fn read_secrets(
    refs: &SecretRefs,
    store: &impl SecretStore,
) -> Result<SecretValues, ConfigError> {
    let mut values = Vec::with_capacity(refs.0.len());
    for (variable, arn) in &refs.0 {
        let value = store
            .read(arn)
            .await
            .map_err(|reason| ConfigError::Invalid {
                variable,
                value: arn.clone(),
                expected: format!(
                    "Secrets Manager did not return it ({reason}); the next run tries again. If \
                     it persists, check that the secret exists in that Region and that the \
                     function's role may call secretsmanager:GetSecretValue on it"
                ),
            })?;
        tracing::debug!(variable, arn = %arn, "read secret");
        values.push((
            *variable,
            ReadSecret {
                arn: arn.clone(),
                value,
            },
        ));
    }
    Ok(SecretValues(values))
}

/// The whole configuration for a cold start: the environment, plus the secrets it names read
/// from Secrets Manager with the SDK configuration `sdk`. No secret means no AWS call.
pub async fn load_config(
    lookup: impl Fn(&str) -> Option<String>,
    sdk: &aws_config::SdkConfig,
) -> Result<Config, ConfigError> {
    let refs = SecretRefs::parse(&lookup)?;
    let secrets = if refs.is_empty() {
        SecretValues::default()
    } else {
        read_secrets(&refs, &SecretsManager::new(sdk)).await?
    };
    Config::parse_with(lookup, &secrets)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const WEBHOOK_ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:hook-AbCdEf";

    /// Secrets held in memory; an ARN it does not hold is "not found".
    struct FakeStore(HashMap<&'static str, &'static str>);

    impl SecretStore for FakeStore {
        async fn read(&self, arn: &str) -> Result<SecretString, String> {
            self.0
                .get(arn)
                .map(|value| SecretString::from(*value))
                .ok_or_else(|| "ResourceNotFoundException: no such secret".to_owned())
        }
    }

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name: &str| env.get(name).cloned()
    }

    #[test]
    fn only_the_variables_that_are_set_name_secrets() {
        let refs = SecretRefs::parse(lookup(&[
            (WEBHOOK_URL_SECRET_ARN, WEBHOOK_ARN),
            (PROMETHEUS_TOKEN_SECRET_ARN, "  "),
        ]))
        .unwrap();

        assert_eq!(
            refs,
            SecretRefs(vec![(WEBHOOK_URL_SECRET_ARN, WEBHOOK_ARN.to_owned())])
        );
        assert!(SecretRefs::parse(lookup(&[])).unwrap().is_empty());
    }

    #[test]
    fn a_secret_name_or_another_arn_is_refused_with_an_example() {
        let cases = [
            "arn:aws:ssm:eu-west-1:123456789012:parameter/hook",
            "arn:aws:secretsmanager:eu-west-1:1234:secret:hook",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:",
        ];
        for raw in cases {
            let error = SecretRefs::parse(lookup(&[(PROMETHEUS_TOKEN_SECRET_ARN, raw)]))
                .expect_err(raw)
                .to_string();
            assert!(
                error.starts_with(&format!("PROMETHEUS_TOKEN_SECRET_ARN is `{raw}`")),
                "{error}"
            );
            assert!(error.contains("Secrets Manager secret ARN"), "{error}");
        }
    }

    #[test]
    fn a_secret_pasted_where_its_arn_belongs_is_never_quoted() {
        let pasted = [
            (
                WEBHOOK_URL_SECRET_ARN,
                "https://hooks.slack.com/services/T0/B0/s3cr3t-t0ken",
            ),
            (PROMETHEUS_TOKEN_SECRET_ARN, "glc_s3cr3t"),
            (PROMETHEUS_BASIC_AUTH_SECRET_ARN, "scaler:s3cr3t"),
            (PROMETHEUS_BASIC_AUTH_SECRET_ARN, "scaler/prometheus-basic"),
        ];
        for (variable, value) in pasted {
            let error = SecretRefs::parse(lookup(&[(variable, value)]))
                .expect_err(value)
                .to_string();

            assert!(
                error.starts_with(&format!(
                    "{variable} holds {} characters that are not an ARN (the value is not \
                     shown: it may be a secret)",
                    value.len()
                )),
                "{error}"
            );
            assert!(!error.contains("s3cr3t"), "{error}");
            assert!(!error.contains(value), "{error}");
        }
    }

    #[tokio::test]
    async fn each_named_secret_is_read_once_and_kept_by_its_variable() {
        let store = FakeStore(HashMap::from([(WEBHOOK_ARN, "https://hooks.example/T0")]));
        let get = lookup(&[(WEBHOOK_URL_SECRET_ARN, WEBHOOK_ARN)]);
        let refs = SecretRefs::parse(&get).unwrap();

        let values = read_secrets(&refs, &store).await.unwrap();

        let secret = values.get(&get, WEBHOOK_URL_SECRET_ARN).unwrap().unwrap();
        assert_eq!(secret.arn, WEBHOOK_ARN);
        assert_eq!(secret.value.expose_secret(), "https://hooks.example/T0");
        assert!(values
            .get(&get, PROMETHEUS_TOKEN_SECRET_ARN)
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn a_missing_secret_fails_naming_the_variable_the_arn_and_the_permission() {
        let store = FakeStore(HashMap::new());
        let refs = SecretRefs::parse(lookup(&[(WEBHOOK_URL_SECRET_ARN, WEBHOOK_ARN)])).unwrap();

        let error = read_secrets(&refs, &store).await.unwrap_err().to_string();

        assert!(
            error.starts_with(&format!("WEBHOOK_URL_SECRET_ARN is `{WEBHOOK_ARN}`")),
            "{error}"
        );
        assert!(error.contains("ResourceNotFoundException"), "{error}");
        assert!(error.contains("secretsmanager:GetSecretValue"), "{error}");
    }

    #[test]
    fn a_secret_that_was_never_read_is_an_error_not_an_absence() {
        let get = lookup(&[(WEBHOOK_URL_SECRET_ARN, WEBHOOK_ARN)]);

        let error = SecretValues::default()
            .get(&get, WEBHOOK_URL_SECRET_ARN)
            .unwrap_err()
            .to_string();

        assert!(error.contains("secrets::load_config"), "{error}");
    }

    #[tokio::test]
    async fn the_webhook_secret_must_hold_a_url_and_the_error_never_shows_it() {
        let store = FakeStore(HashMap::from([(WEBHOOK_ARN, "T0/B0/s3cr3t-token")]));
        let get = lookup(&[(WEBHOOK_URL_SECRET_ARN, WEBHOOK_ARN)]);
        let values = read_secrets(&SecretRefs::parse(&get).unwrap(), &store)
            .await
            .unwrap();

        let error = values.webhook_url(&get, None).unwrap_err().to_string();

        assert!(
            error.starts_with("WEBHOOK_URL_SECRET_ARN is `arn:"),
            "{error}"
        );
        assert!(!error.contains("s3cr3t"), "{error}");
    }

    #[tokio::test]
    async fn the_webhook_url_comes_from_one_place_only() {
        let store = FakeStore(HashMap::from([(WEBHOOK_ARN, "https://hooks.example/T0")]));
        let get = lookup(&[(WEBHOOK_URL_SECRET_ARN, WEBHOOK_ARN)]);
        let values = read_secrets(&SecretRefs::parse(&get).unwrap(), &store)
            .await
            .unwrap();

        let from_secret = values.webhook_url(&get, None).unwrap().unwrap();
        let both = values.webhook_url(&get, Some(SecretString::from("https://other.example/")));

        assert_eq!(from_secret.expose_secret(), "https://hooks.example/T0");
        assert!(both.unwrap_err().to_string().contains("not both"));
    }
}
