//! The floor under a warm invocation, for `scripts/bench.sh`: one raw Prometheus query and one
//! raw DescribeAutoScalingGroups, each from a client that has already made the same call, with
//! the function's own clients and environment (`PROMETHEUS_ENDPOINT`, `PROMETHEUS_QUERY`,
//! `ASG_NAME`, the `AWS_*` variables).
//!
//! It warms both clients, then makes one round for each line read from standard input and
//! prints its times as one JSON line, in milliseconds: each read alone, then both at once, as a
//! run does them. `scripts/bench_runtime.py` asks for a round between the function's warm
//! invocations, so that the floor is measured in the same minute as what it is compared with.

use std::error::Error;
use std::future::Future;
use std::time::{Duration, Instant};

use kafka_lag_scaler::config::Config;
use kafka_lag_scaler::{http_client, sdk_config_loader};

type Failure = Box<dyn Error + Send + Sync>;

async fn timed<T>(read: impl Future<Output = Result<T, Failure>>) -> Result<Duration, Failure> {
    let start = Instant::now();
    read.await?;
    Ok(start.elapsed())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Failure> {
    let config = Config::from_env()?;
    let http = http_client();
    let autoscaling = aws_sdk_autoscaling::Client::new(&sdk_config_loader().load().await);

    let query = || async {
        let response = http
            .post(config.prometheus.query_url.clone())
            .form(&[("query", config.prometheus.query.as_str())])
            .send()
            .await?
            .error_for_status()?;
        Ok::<_, Failure>(response.bytes().await?)
    };
    let describe = || async {
        let groups = autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&config.asg_name)
            .send()
            .await?;
        Ok::<_, Failure>(groups)
    };

    // Warm both clients: connections, credentials, endpoint resolution.
    query().await?;
    describe().await?;

    let ms = |elapsed: Duration| elapsed.as_secs_f64() * 1000.0;
    for line in std::io::stdin().lines() {
        line?;
        let prometheus = timed(query()).await?;
        let autoscaling_read = timed(describe()).await?;
        let both = timed(async {
            let (lag, group) = tokio::join!(query(), describe());
            lag?;
            group?;
            Ok(())
        })
        .await?;
        println!(
            r#"{{"prometheus": {:.3}, "describe": {:.3}, "both": {:.3}}}"#,
            ms(prometheus),
            ms(autoscaling_read),
            ms(both)
        );
    }
    Ok(())
}
