//! Warm connections during init.
//!
//! Lambda runs the init phase with a full vCPU, while a 128 MB invocation gets a fraction of
//! one. DNS, TCP, TLS, the SDK's credentials and endpoint resolution are therefore cheaper
//! before the first event than inside it: one trivial Prometheus query and one
//! DescribeAutoScalingGroups, through the very clients the runs use, leave pooled connections
//! behind for the first run. BENCHMARKS.md has the figures with and without.

use std::time::Duration;

use crate::autoscaling::GroupApi;
use crate::prometheus::LagSource;

/// How long init may spend warming. A healthy handshake takes a fraction of this; a
/// Prometheus that does not answer in time is the first run's problem, not init's.
pub const WARM_UP_BUDGET: Duration = Duration::from_secs(2);

/// The cheapest instant query every Prometheus-compatible API answers.
const TRIVIAL_QUERY: &str = "1";

/// Makes both calls at once, within `budget`. Never fails: whatever it finds is logged at
/// debug and dropped.
pub async fn connections(
    lag_source: &impl LagSource,
    groups: &impl GroupApi,
    asg_name: &str,
    budget: Duration,
) {
    let calls = async {
        tokio::join!(
            lag_source.read_query(TRIVIAL_QUERY),
            groups.describe(asg_name)
        )
    };
    match tokio::time::timeout(budget, calls).await {
        Ok((lag, group)) => tracing::debug!(
            prometheus = lag.err().map(|e| e.to_string()),
            autoscaling = group.err().map(|e| e.to_string()),
            "connections warmed (errors, if any, are for the first run to report)"
        ),
        Err(_) => tracing::debug!(?budget, "warming connections ran out of time"),
    }
}

#[cfg(test)]
mod tests {
    use std::future::pending;
    use std::sync::Mutex;

    use super::*;
    use crate::autoscaling::{AutoScalingError, GroupState};
    use crate::prometheus::{LagReading, PrometheusError};

    /// Records what it was asked; answers nothing, ever, when `silent`.
    #[derive(Default)]
    struct Recorder {
        silent: bool,
        calls: Mutex<Vec<String>>,
    }

    impl LagSource for Recorder {
        async fn read_lag(&self) -> Result<LagReading, PrometheusError> {
            unreachable!("warming never reads the lag query itself")
        }

        async fn read_query(&self, query: &str) -> Result<LagReading, PrometheusError> {
            self.calls.lock().unwrap().push(format!("query {query}"));
            if self.silent {
                pending::<()>().await;
            }
            Err(PrometheusError::Unreachable {
                endpoint: "http://prometheus:9090/api/v1/query".into(),
                reason: "connection refused".into(),
            })
        }
    }

    impl GroupApi for Recorder {
        async fn describe(&self, name: &str) -> Result<GroupState, AutoScalingError> {
            self.calls.lock().unwrap().push(format!("describe {name}"));
            if self.silent {
                pending::<()>().await;
            }
            Err(AutoScalingError::GroupNotFound(name.into()))
        }

        async fn set_capacity(&self, _: &str, _: i32) -> Result<(), AutoScalingError> {
            unreachable!("warming never writes to the group")
        }
    }

    #[tokio::test]
    async fn sends_a_trivial_query_and_describes_the_group_and_swallows_errors() {
        let (lag, groups) = (Recorder::default(), Recorder::default());

        connections(&lag, &groups, "consumers", WARM_UP_BUDGET).await;

        assert_eq!(*lag.calls.lock().unwrap(), ["query 1"]);
        assert_eq!(*groups.calls.lock().unwrap(), ["describe consumers"]);
    }

    #[tokio::test]
    async fn gives_up_when_nothing_answers() {
        let silent = Recorder {
            silent: true,
            ..Recorder::default()
        };

        connections(&silent, &silent, "consumers", Duration::from_millis(5)).await;

        assert_eq!(silent.calls.lock().unwrap().len(), 2);
    }
}
