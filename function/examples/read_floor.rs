//! The floor under a warm invocation, for `scripts/bench.sh`: one raw Prometheus query and one
//! raw DescribeAutoScalingGroups, each from a client that has already made the same call, with
//! the function's own clients and environment (`PROMETHEUS_ENDPOINT`, `PROMETHEUS_QUERY`,
//! `ASG_NAME`, the `AWS_*` variables).
//!
//! It warms both clients and prints `ready`, then makes one read for each line of standard
//! input, which names it: `prometheus`, `describe`, or `both` (the two at once, as a run makes
//! them), and prints how long it took, in milliseconds, on a line of its own.
//! `scripts/bench_runtime.py` asks for one of each before each of the function's warm
//! invocations, each after the same pause as it leaves before an invocation, so that the floor
//! is measured in the same minute as the runs and, like them, after a pause.

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
    println!("ready");

    for line in std::io::stdin().lines() {
        let read = line?;
        let elapsed = match read.trim() {
            "prometheus" => timed(query()).await?,
            "describe" => timed(describe()).await?,
            "both" => {
                timed(async {
                    let (lag, group) = tokio::join!(query(), describe());
                    lag?;
                    group?;
                    Ok(())
                })
                .await?
            }
            other => return Err(format!("unknown read `{other}`").into()),
        };
        println!("{:.3}", elapsed.as_secs_f64() * 1000.0);
    }
    Ok(())
}
