//! The floor under a warm invocation, for `scripts/bench.sh`: one raw Prometheus query and one
//! raw DescribeAutoScalingGroups, each from a client that has already made the same call, with
//! the function's own clients and environment (`PROMETHEUS_ENDPOINT`, `PROMETHEUS_QUERY`,
//! `ASG_NAME`, the `AWS_*` variables).
//!
//! `read_floor [ROUNDS]` prints JSON: median and p95 in milliseconds of each read alone, and of
//! both at once, as a run does them.

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

/// `{"median": .., "p95": ..}` in milliseconds, nearest rank.
fn stats(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let rank = |fraction: f64| {
        let index = (samples.len() as f64 * fraction).ceil() as usize;
        samples[index.clamp(1, samples.len()) - 1].as_secs_f64() * 1000.0
    };
    format!(
        r#"{{"median": {:.3}, "p95": {:.3}}}"#,
        rank(0.5),
        rank(0.95)
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Failure> {
    let rounds: usize = std::env::args().nth(1).map_or(Ok(31), |n| n.parse())?;
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

    let (mut prometheus, mut autoscaling_reads, mut both) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        prometheus.push(timed(query()).await?);
        autoscaling_reads.push(timed(describe()).await?);
        both.push(
            timed(async {
                let (lag, group) = tokio::join!(query(), describe());
                lag?;
                group?;
                Ok(())
            })
            .await?,
        );
    }
    println!(
        r#"{{"rounds": {rounds}, "prometheus_ms": {}, "describe_ms": {}, "both_ms": {}}}"#,
        stats(prometheus),
        stats(autoscaling_reads),
        stats(both)
    );
    Ok(())
}
