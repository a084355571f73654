//! Every way of reaching Prometheus, end to end, with the real clients:
//!
//! * SigV4 against a fake Amazon Managed Prometheus workspace that recomputes each request's
//!   signature with botocore, an implementation independent of ours, and refuses mismatches
//!   (`tests/support/prometheus_gateway.py`);
//! * basic, bearer and a Mimir tenant header against the same gateway in its other modes;
//! * secrets created in moto's Secrets Manager and read through the real SDK at "cold start"
//!   (`secrets::load_config`), the group in moto, messages in the webhook receiver.

use std::collections::HashMap;
use std::io::Write;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};

use aws_config::SdkConfig;
use aws_sdk_autoscaling::config::{Credentials, SharedCredentialsProvider};
use kafka_lag_scaler::config::ConfigError;
use kafka_lag_scaler::handler::{RunError, Summary, RUN_BUDGET};
use kafka_lag_scaler::secrets::load_config;
use kafka_lag_scaler::{build_scaler, http_client, LambdaScaler};
use kafka_lag_scaler_e2e::{create_group, received_texts, repo_root, unique, Sizes, Stack};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// A query with everything that breaks naive encoding or signing: spaces, `+`, braces,
/// quotes of both kinds, `|`, `=~` and `!=`.
const TRICKY_QUERY: &str = concat!(
    r#"sum by (topic) (kafka_consumergroup_lag{topic=~"orders+|pay ments", "#,
    r#"consumergroup!="it's \"x\""}) + 0"#
);

/// The lag every gateway answers: above the default high threshold.
const GATEWAY_LAG: u64 = 12_000_000;

const REGION: &str = "us-east-1";

/// A running `prometheus_gateway.py`, stopped when dropped.
struct Gateway {
    url: String,
    _process: Child,
}

impl Gateway {
    async fn start(args: &[&str]) -> Gateway {
        let script = repo_root().join("tests/support/prometheus_gateway.py");
        let mut process = Command::new("python3")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start tests/support/prometheus_gateway.py (python3 with botocore)");
        let stdout = process.stdout.take().expect("piped stdout");
        let line = BufReader::new(stdout)
            .lines()
            .next_line()
            .await
            .expect("read the gateway's first line")
            .expect("the gateway printed its port");
        let port = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from the gateway: {line}"));
        Gateway {
            url: format!("http://127.0.0.1:{port}"),
            _process: process,
        }
    }

    /// A fake workspace that accepts only queries signed with `credentials` for `aps`.
    async fn workspace(credentials: &Credentials) -> Gateway {
        let mut args = vec![
            "--sigv4",
            REGION,
            "--access-key",
            credentials.access_key_id(),
            "--secret-key",
            credentials.secret_access_key(),
        ];
        if let Some(token) = credentials.session_token() {
            args.extend(["--session-token", token]);
        }
        Gateway::start(&args).await
    }

    /// The workspace URL form: the scaler appends `/api/v1/query`.
    fn workspace_url(&self) -> String {
        format!("{}/workspaces/ws-test", self.url)
    }

    /// What every query request carried and what the gateway made of it.
    async fn requests(&self) -> Vec<Value> {
        reqwest::get(format!("{}/requests", self.url))
            .await
            .expect("reach the gateway")
            .json()
            .await
            .expect("the gateway answers JSON")
    }
}

/// Lambda-like credentials: a session token, as the function's role always has.
fn role_credentials(secret: &str) -> Credentials {
    Credentials::new(
        "ASIATESTKEY",
        secret,
        Some("session/token+with=odd chars".to_owned()),
        None,
        "test",
    )
}

/// The stack's SDK configuration (moto for Auto Scaling and Secrets Manager) signing with
/// `credentials`.
fn sdk_with(stack: &Stack, credentials: Credentials) -> SdkConfig {
    stack
        .sdk_config()
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build()
}

/// One test's group (standing by, MaxSize 10) and webhook path.
struct Case {
    stack: Stack,
    asg: String,
    hook: String,
}

impl Case {
    async fn new() -> Case {
        captured_logs();
        let stack = Stack::get();
        let asg = unique("auth-asg");
        let sizes = Sizes {
            min: 0,
            max: 10,
            desired: 0,
        };
        create_group(&stack.autoscaling(), &asg, sizes).await;
        Case {
            stack,
            asg,
            hook: format!("/hook/{}", unique("auth")),
        }
    }

    fn webhook_url(&self) -> String {
        format!("{}{}", self.stack.receiver_url, self.hook)
    }

    /// The cold start as `main` does it: the environment plus the secrets it names, read with
    /// `sdk`, then the scaler.
    async fn cold_start(
        &self,
        sdk: &SdkConfig,
        endpoint: &str,
        extra: &[(&str, &str)],
    ) -> Result<LambdaScaler, ConfigError> {
        let mut env: HashMap<String, String> = HashMap::from([
            ("PROMETHEUS_ENDPOINT".to_owned(), endpoint.to_owned()),
            ("PROMETHEUS_QUERY".to_owned(), TRICKY_QUERY.to_owned()),
            ("ASG_NAME".to_owned(), self.asg.clone()),
        ]);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = load_config(|name| env.get(name).cloned(), sdk).await?;
        Ok(build_scaler(config, http_client(), sdk))
    }

    async fn run(
        &self,
        sdk: &SdkConfig,
        endpoint: &str,
        extra: &[(&str, &str)],
    ) -> Result<Summary, RunError> {
        let scaler = self.cold_start(sdk, endpoint, extra).await?;
        scaler.run(Instant::now() + RUN_BUDGET).await
    }

    /// Stores `value` in moto's Secrets Manager; returns the secret's ARN.
    async fn put_secret(&self, value: &str) -> String {
        aws_sdk_secretsmanager::Client::new(&self.stack.sdk_config())
            .create_secret()
            .name(unique("kls-secret"))
            .secret_string(value)
            .send()
            .await
            .expect("create the secret in moto")
            .arn()
            .expect("moto returns the ARN")
            .to_owned()
    }
}

fn assert_scaled_out(summary: &Summary) {
    assert_eq!(summary.action, "scale_out", "{summary:?}");
    assert_eq!(summary.lag, Some(GATEWAY_LAG), "{summary:?}");
    assert_eq!(summary.capacity_after, 4, "{summary:?}");
}

fn refusal(result: Result<Summary, RunError>) -> String {
    let error = result.expect_err("the gateway should refuse the query");
    assert_eq!(error.error_type(), "PrometheusQueryFailed", "{error}");
    error.to_string()
}

#[tokio::test]
async fn sigv4_queries_signed_with_the_functions_credentials_pass_the_independent_verifier() {
    let case = Case::new().await;
    let credentials = role_credentials("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    let workspace = Gateway::workspace(&credentials).await;
    let sdk = sdk_with(&case.stack, credentials);

    let summary = case
        .run(
            &sdk,
            &workspace.workspace_url(),
            &[
                ("PROMETHEUS_AUTH", "sigv4"),
                ("PROMETHEUS_SIGV4_REGION", REGION),
            ],
        )
        .await
        .expect("the signed query is accepted");

    assert_scaled_out(&summary);
    let requests = workspace.requests().await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["verdict"], "accepted", "{requests:?}");
    assert_eq!(
        requests[0]["query"], TRICKY_QUERY,
        "the query arrives intact"
    );
    assert_eq!(requests[0]["path"], "/workspaces/ws-test/api/v1/query");
}

#[tokio::test]
async fn sigv4_signed_with_the_wrong_secret_key_is_refused_naming_signing_and_permissions() {
    let case = Case::new().await;
    let workspace = Gateway::workspace(&role_credentials("the-real-secret")).await;
    let sdk = sdk_with(&case.stack, role_credentials("a-stale-secret"));

    let text = refusal(
        case.run(
            &sdk,
            &workspace.workspace_url(),
            &[
                ("PROMETHEUS_AUTH", "sigv4"),
                ("PROMETHEUS_SIGV4_REGION", REGION),
            ],
        )
        .await,
    );

    assert!(text.contains("refused the query with HTTP 403"), "{text}");
    assert!(
        text.contains("signature we calculated does not match"),
        "{text}"
    );
    assert!(text.contains("SigV4-signed query was refused"), "{text}");
    assert!(text.contains("aps:QueryMetrics"), "{text}");
    assert!(!text.contains("a-stale-secret"), "{text}");
}

#[tokio::test]
async fn sigv4_signed_for_another_region_is_refused_and_the_region_is_named() {
    let case = Case::new().await;
    let credentials = role_credentials("secret");
    let workspace = Gateway::workspace(&credentials).await;
    let sdk = sdk_with(&case.stack, credentials);
    let extra = [
        ("PROMETHEUS_AUTH", "sigv4"),
        ("PROMETHEUS_SIGV4_REGION", "eu-west-1"),
    ];

    let text = refusal(case.run(&sdk, &workspace.workspace_url(), &extra).await);

    assert!(text.contains("HTTP 403"), "{text}");
    assert!(text.contains("signing Region `eu-west-1`"), "{text}");
}

#[tokio::test]
async fn basic_credentials_from_secrets_manager_reach_prometheus() {
    let case = Case::new().await;
    let gateway = Gateway::start(&["--basic", "scaler:pa ss:wörd"]).await;
    let arn = case
        .put_secret(r#"{"username": "scaler", "password": "pa ss:wörd"}"#)
        .await;

    let summary = case
        .run(
            &case.stack.sdk_config(),
            &gateway.url,
            &[("PROMETHEUS_BASIC_AUTH_SECRET_ARN", &arn)],
        )
        .await
        .expect("the basic credentials are accepted");

    assert_scaled_out(&summary);
}

#[tokio::test]
async fn basic_credentials_in_the_endpoint_still_work() {
    let case = Case::new().await;
    let gateway = Gateway::start(&["--basic", "scaler:p@ss"]).await;
    let endpoint = gateway.url.replace("http://", "http://scaler:p%40ss@");

    let summary = case
        .run(&case.stack.sdk_config(), &endpoint, &[])
        .await
        .expect("the basic credentials are accepted");

    assert_scaled_out(&summary);
}

#[tokio::test]
async fn a_bearer_token_from_secrets_manager_and_a_tenant_header_reach_a_mimir_gateway() {
    let case = Case::new().await;
    let gateway = Gateway::start(&[
        "--bearer",
        "glc_t0ken",
        "--require-header",
        "X-Scope-OrgID=team-a",
    ])
    .await;
    let arn = case.put_secret("glc_t0ken\n").await;
    let extra = [
        ("PROMETHEUS_AUTH", "bearer"),
        ("PROMETHEUS_TOKEN_SECRET_ARN", arn.as_str()),
        ("PROMETHEUS_HEADERS", "X-Scope-OrgID=team-a"),
    ];

    let summary = case
        .run(&case.stack.sdk_config(), &gateway.url, &extra)
        .await
        .expect("token and tenant are accepted");

    assert_scaled_out(&summary);
}

#[tokio::test]
async fn a_tenant_gateway_without_the_tenant_header_is_refused_with_a_hint() {
    let case = Case::new().await;
    let gateway = Gateway::start(&["--require-header", "X-Scope-OrgID=team-a"]).await;

    let text = refusal(case.run(&case.stack.sdk_config(), &gateway.url, &[]).await);

    assert!(text.contains("HTTP 401"), "{text}");
    assert!(text.contains("no org id"), "{text}");
    assert!(text.contains("PROMETHEUS_HEADERS"), "{text}");
}

#[tokio::test]
async fn the_webhook_url_from_secrets_manager_receives_the_message() {
    let case = Case::new().await;
    let gateway = Gateway::start(&[]).await;
    let arn = case.put_secret(&case.webhook_url()).await;

    let summary = case
        .run(
            &case.stack.sdk_config(),
            &gateway.url,
            &[("WEBHOOK_URL_SECRET_ARN", &arn)],
        )
        .await
        .expect("the run succeeds");

    assert_scaled_out(&summary);
    let messages = received_texts(&case.stack, &case.hook).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains(&case.asg), "{messages:?}");
}

#[tokio::test]
async fn a_missing_or_deleted_secret_fails_the_cold_start_naming_the_variable_and_the_arn() {
    let case = Case::new().await;
    let sdk = case.stack.sdk_config();
    let deleted = case.put_secret("glc_deleted-t0ken").await;
    aws_sdk_secretsmanager::Client::new(&sdk)
        .delete_secret()
        .secret_id(&deleted)
        .send()
        .await
        .expect("delete the secret in moto");
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kls-never-made-AbCdEf";

    for (arn, reason) in [
        (missing, "ResourceNotFoundException"),
        (deleted.as_str(), "InvalidRequestException"),
    ] {
        let error = case
            .cold_start(
                &sdk,
                "http://127.0.0.1:9",
                &[("PROMETHEUS_TOKEN_SECRET_ARN", arn)],
            )
            .await
            .expect_err("the cold start fails");

        let text = error.to_string();
        assert!(
            text.starts_with(&format!("PROMETHEUS_TOKEN_SECRET_ARN is `{arn}`")),
            "{text}"
        );
        assert!(text.contains(reason), "{text}");
        assert!(text.contains("secretsmanager:GetSecretValue"), "{text}");
        assert!(!text.contains("glc_deleted-t0ken"), "{text}");
        assert_eq!(RunError::Config(error).error_type(), "InvalidConfiguration");
    }
}

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything any test in this file logs, at debug for every crate (the SDK's included): a
/// global subscriber, installed by the first [`Case::new`], so no log line escapes it.
fn captured_logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .init();
        logs
    })
}

#[tokio::test]
async fn no_secret_value_reaches_a_log_line_or_an_error_message_at_debug() {
    let case = Case::new().await;
    let sdk = case.stack.sdk_config();
    let webhook_secret = format!("{}/T0-s3cr3t-webhook", case.webhook_url());
    let token = "s3cr3t-bearer-t0ken";
    let webhook_arn = case.put_secret(&webhook_secret).await;
    let token_arn = case.put_secret(token).await;
    let basic_arn = case.put_secret("scaler:s3cr3t-basic-pw").await;
    let accepting = Gateway::start(&["--bearer", token]).await;
    let refusing = Gateway::start(&["--bearer", "another-token"]).await;
    let mut texts = Vec::new();

    // A run that succeeds and posts to the secret webhook, one the gateway refuses, and a
    // configuration refused for holding a secret its mode does not use.
    let with_token = [
        ("WEBHOOK_URL_SECRET_ARN", webhook_arn.as_str()),
        ("PROMETHEUS_TOKEN_SECRET_ARN", token_arn.as_str()),
    ];
    let scaler = case.cold_start(&sdk, &accepting.url, &with_token).await;
    let scaler = scaler.expect("the configuration is valid");
    texts.push(format!("{scaler:?}"));
    let summary = scaler.run(Instant::now() + RUN_BUDGET).await;
    assert_scaled_out(summary.as_ref().expect("the run succeeds"));
    let refused = case.run(&sdk, &refusing.url, &with_token).await;
    texts.push(refusal(refused));
    let both = [
        ("PROMETHEUS_TOKEN_SECRET_ARN", token_arn.as_str()),
        ("PROMETHEUS_BASIC_AUTH_SECRET_ARN", basic_arn.as_str()),
    ];
    let error = case.cold_start(&sdk, &accepting.url, &both).await;
    texts.push(error.expect_err("two credentials are refused").to_string());

    let logs = String::from_utf8(captured_logs().0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("read secret"),
        "debug logs were captured: {logs}"
    );
    assert!(
        logs.contains("GetSecretValue"),
        "SDK debug logs were captured"
    );
    for secret in ["T0-s3cr3t-webhook", token, "s3cr3t-basic-pw"] {
        assert!(!logs.contains(secret), "`{secret}` in the logs:\n{logs}");
        for text in &texts {
            assert!(!text.contains(secret), "`{secret}` in: {text}");
        }
    }
}
