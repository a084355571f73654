//! The Lambda binary: logging, configuration, clients, then the runtime loop. Nothing here
//! decides anything.

use kafka_lag_scaler::config::ConfigError;
use kafka_lag_scaler::handler::RunError;
use kafka_lag_scaler::secrets::load_config;
use kafka_lag_scaler::{build_scaler, http_client, sdk_config_loader, telemetry, warm};
use lambda_runtime::service_fn;
use tokio::sync::OnceCell;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();

    let sdk = sdk_config_loader().load().await;
    // Secrets named by `*_SECRET_ARN` are read here, with the SDK's credentials.
    let configure = || async {
        let config = load_config(|name| std::env::var(name).ok(), &sdk)
            .await
            .inspect_err(|error| tracing::error!(error = %error, "invalid configuration"))?;
        Ok::<_, ConfigError>(build_scaler(config, http_client(), &sdk))
    };

    // Configured once, at init when it can be. A configuration that fails is tried again by
    // each invocation, which answers with the error until it succeeds: a secret that could
    // not be read during one cold start (throttling, a network blip, a policy fixed since)
    // must not disable the scaler for the rest of the instance's life.
    let scaler = OnceCell::new();
    if let Ok(ready) = configure().await {
        if !cfg!(feature = "bench-no-warm-up") {
            ready.warm_up(warm::WARM_UP_BUDGET).await;
        }
        // Nothing else sets it.
        let _ = scaler.set(ready);
    }
    let (scaler, configure) = (&scaler, &configure);
    lambda_runtime::run(service_fn(move |event| async move {
        let scaler = scaler
            .get_or_try_init(configure)
            .await
            .map_err(RunError::Config)?;
        scaler.handle(event).await
    }))
    .await
}
