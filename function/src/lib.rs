//! kafka-lag-scaler: raises an EC2 Auto Scaling Group to a fixed size when Kafka consumer lag
//! read from Prometheus is very high, and returns it to standby when lag is back to normal.
//!
//! `main.rs` wires the real clients; everything that decides lives here, behind small traits
//! so that it runs against real local services or fakes in tests.

pub mod auth;
pub mod autoscaling;
pub mod config;
pub mod format;
pub mod guards;
pub mod handler;
pub mod notify;
pub mod policy;
pub mod prometheus;
pub mod secrets;
pub mod telemetry;
pub mod warm;
pub mod window;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader};

use crate::autoscaling::SdkGroupApi;
use crate::config::Config;
use crate::handler::{Scaler, Settings};
use crate::notify::WebhookNotifier;
use crate::prometheus::PrometheusClient;

/// The scaler as deployed: Prometheus over HTTP, the Auto Scaling SDK, a chat webhook.
pub type LambdaScaler = Scaler<PrometheusClient, SdkGroupApi, WebhookNotifier>;

/// The AWS SDK configuration the scaler uses: standard retries (three attempts with backoff,
/// throttling included) and timeouts well inside the run's budget. Credentials, region and
/// `AWS_ENDPOINT_URL` come from the environment as usual.
pub fn sdk_config_loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(sdk_retry_config())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(12))
                .build(),
        )
}

/// Standard retries, three attempts in all: throttling and transient errors are retried with
/// backoff, client errors such as `ValidationError` are not.
pub fn sdk_retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3)
}

/// The HTTP client for Prometheus and the webhook. Per-request timeouts are set where the
/// requests are made; connecting must never take long.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        // A redirect would carry the credentials, the tenant header or the webhook's token to
        // a host nobody configured, and its answer would be trusted as the lag: never follow
        // one, and never send the URL (and its token) as a Referer.
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .user_agent(concat!("kafka-lag-scaler/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the TLS backend is compiled in")
}

/// Builds the deployed scaler from a validated configuration and ready clients.
pub fn build_scaler(
    config: Config,
    http: reqwest::Client,
    sdk: &aws_config::SdkConfig,
) -> LambdaScaler {
    let format = config.webhook_format;
    let mut prometheus = config.prometheus;
    prometheus
        .auth
        .use_credentials(sdk.credentials_provider().as_ref());
    let notifier = config
        .webhook_url
        .map(|url| WebhookNotifier::new(http.clone(), url).with_format(format));
    Scaler::new(
        Settings {
            asg_name: config.asg_name,
            thresholds: config.thresholds,
            dry_run: config.dry_run,
        },
        PrometheusClient::new(http, prometheus),
        SdkGroupApi::from_sdk(sdk),
        notifier,
    )
    .with_windows(config.windows)
}
