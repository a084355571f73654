//! The Lambda binary: logging, configuration, clients, then the runtime loop. Nothing here
//! decides anything.

use kafka_lag_scaler::handler::{AnyEvent, RunError};
use kafka_lag_scaler::secrets::load_config;
use kafka_lag_scaler::{build_scaler, http_client, sdk_config_loader, telemetry, warm};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();

    // Secrets named by `*_SECRET_ARN` are read here, once, with the SDK's credentials.
    let sdk = sdk_config_loader().load().await;
    let config = match load_config(|name| std::env::var(name).ok(), &sdk).await {
        Ok(config) => config,
        Err(error) => {
            // Every invocation answers with the same clear error instead of a crash loop.
            tracing::error!(error = %error, "invalid configuration");
            return lambda_runtime::run(service_fn(|_: LambdaEvent<AnyEvent>| {
                let error = RunError::Config(error.clone());
                async move { Err::<(), _>(error) }
            }))
            .await;
        }
    };

    let scaler = build_scaler(config, http_client(), &sdk);
    if !cfg!(feature = "bench-no-warm-up") {
        scaler.warm_up(warm::WARM_UP_BUDGET).await;
    }
    let scaler = &scaler;
    lambda_runtime::run(service_fn(move |event| scaler.handle(event))).await
}
