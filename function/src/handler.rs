//! One run: read the lag and the group concurrently, decide, act, announce, summarise.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use thiserror::Error;
use tokio::time::Instant;

use crate::autoscaling::{AutoScalingError, GroupApi, GroupState};
use crate::config::{ConfigError, Thresholds};
use crate::guards;
use crate::notify::{Kind, Notification, Notifier};
use crate::policy::{self, Action, Decision, Lag};
use crate::prometheus::{LagReading, LagSource, PrometheusError};
use crate::warm;
use crate::window::{Checks, Windows};

/// The most a run may take, whatever the Lambda timeout: reads, the write and the message.
pub const RUN_BUDGET: Duration = Duration::from_secs(30);

/// Kept free before the Lambda deadline so that a run always returns its own answer.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(1500);

/// The most of a run's time kept back for the message that announces its outcome: the reads
/// and the write must end this much before the run does, so that a run that runs out of
/// time, or whose write's answer is lost at the last moment, can still say so. A short run
/// keeps a quarter of its time instead.
pub const MESSAGE_RESERVE: Duration = Duration::from_secs(5);

/// When the reads and the write of a run that ends by `deadline` must be done.
fn work_deadline(deadline: Instant) -> Instant {
    let left = deadline.saturating_duration_since(Instant::now());
    deadline - MESSAGE_RESERVE.min(left / 4)
}

/// The event a run starts from: any JSON at all. Its content is never read, so no shape or
/// depth of it can fail a run (a `serde_json::Value` refuses nesting deeper than 128).
pub use serde::de::IgnoredAny as AnyEvent;

/// The JSON a run returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub action: &'static str,
    pub lag: Option<u64>,
    pub capacity_before: i32,
    pub capacity_after: i32,
    pub reason: String,
    pub dry_run: bool,
}

/// A run that could not do its job.
#[derive(Error)]
pub enum RunError {
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Prometheus(#[from] PrometheusError),
    #[error(transparent)]
    AutoScaling(#[from] AutoScalingError),
    #[error("the run's time budget ran out while {stage}{}", if *.write_sent {
        "; the group may or may not have been changed"
    } else { "" })]
    OutOfTime { stage: String, write_sent: bool },
}

impl RunError {
    /// A stable name for the Lambda `errorType`, for alarms and dashboards.
    pub fn error_type(&self) -> &'static str {
        match self {
            RunError::Config(_) => "InvalidConfiguration",
            RunError::Prometheus(_) => "PrometheusQueryFailed",
            RunError::AutoScaling(AutoScalingError::GroupNotFound(_)) => "GroupNotFound",
            RunError::AutoScaling(_) => "AutoScalingFailed",
            RunError::OutOfTime { .. } => "RunBudgetExceeded",
        }
    }
}

/// The Lambda runtime logs a failed invocation's error in its `Debug` form: give it the same
/// stable name and sentence as the Lambda error, not a dump of the enum.
impl std::fmt::Debug for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {self}", self.error_type())
    }
}

impl From<RunError> for Diagnostic {
    fn from(error: RunError) -> Self {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// What a run needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub asg_name: String,
    pub thresholds: Thresholds,
    pub dry_run: bool,
}

/// The scaler, generic over its three outside systems.
#[derive(Debug)]
pub struct Scaler<L, G, N> {
    settings: Settings,
    lag_source: L,
    groups: G,
    notifier: Option<N>,
    windows: Windows,
}

/// Runs `future` unless `deadline` passes first.
async fn within<T, E>(
    deadline: Instant,
    stage: &str,
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, RunError>
where
    RunError: From<E>,
{
    match tokio::time::timeout_at(deadline, future).await {
        Ok(result) => result.map_err(RunError::from),
        Err(_) => Err(RunError::OutOfTime {
            stage: stage.to_owned(),
            write_sent: stage == WRITE_STAGE,
        }),
    }
}

const WRITE_STAGE: &str = "updating the group";

/// The deadline of a run that the Lambda runtime says must end by `deadline_ms` (Unix time
/// in milliseconds).
///
/// A deadline that has already passed cannot come from Lambda, whose deadline is always the
/// invocation's start plus its timeout; local emulators send one (`cargo lambda watch` sends
/// a fixed 600000). Such a run gets the full [`RUN_BUDGET`] instead of failing at once.
pub fn run_deadline(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |now| now.as_millis() as u64);
    if deadline_ms <= now_ms {
        tracing::debug!(deadline_ms, "deadline already passed; using the run budget");
        return Instant::now() + RUN_BUDGET;
    }
    let remaining = Duration::from_millis(deadline_ms - now_ms);
    Instant::now() + remaining.saturating_sub(DEADLINE_MARGIN).min(RUN_BUDGET)
}

impl<L, G, N> Scaler<L, G, N>
where
    L: LagSource + Sync,
    G: GroupApi + Sync,
    N: Notifier + Sync,
{
    pub fn new(settings: Settings, lag_source: L, groups: G, notifier: Option<N>) -> Self {
        Self {
            settings,
            lag_source,
            groups,
            notifier,
            windows: Windows::default(),
        }
    }

    /// The same scaler, confirming starts and returns with sustained-breach windows.
    pub fn with_windows(self, windows: Windows) -> Self {
        Self { windows, ..self }
    }

    /// Opens the connections a run uses, ahead of the first event (see [`warm`]).
    pub async fn warm_up(&self, budget: Duration) {
        warm::connections(
            &self.lag_source,
            &self.groups,
            &self.settings.asg_name,
            budget,
        )
        .await
    }

    /// The Lambda entry point. Any JSON event starts the same run; its content is ignored.
    pub async fn handle(&self, event: LambdaEvent<AnyEvent>) -> Result<Summary, RunError> {
        self.run(run_deadline(event.context.deadline)).await
    }

    /// One complete run that ends by `deadline`, its message included.
    pub async fn run(&self, deadline: Instant) -> Result<Summary, RunError> {
        let name = self.settings.asg_name.as_str();
        let work = work_deadline(deadline);
        // A source slower than the time left is named in the error, as its own timeout would.
        let reading_stage = format!("reading the lag from {}", self.lag_source.name());
        let windows = self
            .windows
            .check(&self.lag_source, &self.settings.thresholds);
        let (reading, group, checks) = tokio::join!(
            within(work, &reading_stage, self.lag_source.read_lag()),
            within(work, "describing the group", self.groups.describe(name)),
            within(work, "reading the sustain windows", windows),
        );
        // The operator who set the tag knows: no write, no message, whatever else was found.
        if let Ok(group) = &group {
            if guards::is_paused(group) {
                let paused = Decision {
                    action: Action::Skip,
                    reason: guards::PAUSED_REASON.to_owned(),
                };
                let lag = reading.as_ref().ok().and_then(known_value);
                return Ok(self.summarise(&paused, lag, group));
            }
        }
        let (reading, group, checks) = match (reading, group, checks) {
            (Ok(reading), Ok(group), Ok(checks)) => (reading, group, checks),
            (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => {
                return Err(self.fail(error, deadline).await)
            }
        };
        tracing::debug!(?reading, ?group, ?checks, "inputs");

        let decision = guards::explain_hold(self.decide(&reading, &group, &checks), &group);
        let decision = match self.act(decision, work).await {
            Ok(decision) => decision,
            Err(error) => return Err(self.fail(error, deadline).await),
        };
        let summary = self.summarise(&decision, known_value(&reading), &group);

        let kind = match decision.action {
            Action::ScaleOut { .. } => Kind::ScaleOut,
            Action::ScaleIn { .. } => Kind::ScaleIn,
            Action::Skip => Kind::Skip,
            Action::Hold => return Ok(summary),
        };
        let notification = Notification {
            kind,
            group: name.to_owned(),
            lag: summary.lag,
            thresholds: self.settings.thresholds,
            capacity_before: Some(group.desired_capacity),
            capacity_after: Some(decision.action.capacity_after(group.desired_capacity)),
            driver: driver(&reading),
            reason: decision.reason,
            dry_run: self.settings.dry_run,
        };
        self.notify(&notification, deadline).await;
        Ok(summary)
    }

    /// The run's summary, logged as the one `info` line of the run.
    fn summarise(&self, decision: &Decision, lag: Option<u64>, group: &GroupState) -> Summary {
        let target = decision.action.capacity_after(group.desired_capacity);
        let summary = Summary {
            action: decision.action.name(),
            lag,
            capacity_before: group.desired_capacity,
            capacity_after: if self.settings.dry_run {
                group.desired_capacity
            } else {
                target
            },
            reason: decision.reason.clone(),
            dry_run: self.settings.dry_run,
        };
        tracing::info!(
            action = summary.action,
            lag = summary.lag,
            capacity_before = summary.capacity_before,
            capacity_after = summary.capacity_after,
            target,
            reason = %summary.reason,
            dry_run = summary.dry_run,
            group = %self.settings.asg_name,
            "decision"
        );
        summary
    }

    fn decide(&self, reading: &LagReading, group: &GroupState, checks: &Checks) -> Decision {
        let (lag, discards) = match reading {
            LagReading::Known(known) => (
                Lag::Known {
                    value: known.value,
                    partial: known.discards.is_partial(),
                },
                &known.discards,
            ),
            LagReading::NoData(discards) => (Lag::Unknown, discards),
        };
        let view = policy::Group {
            desired_capacity: group.desired_capacity,
            max_size: group.max_size,
            suspended_processes: group.suspended_processes.clone(),
            desired_capacity_type: group.desired_capacity_type.clone(),
        };
        let mut decision = policy::decide_within(lag, checks, &view, &self.settings.thresholds);
        if discards.is_partial() && decision.action != Action::Hold {
            decision.reason = format!("{} ({discards})", decision.reason);
        }
        decision
    }

    /// Carries out a scale action; a group that is busy turns the run into a skip.
    async fn act(&self, decision: Decision, deadline: Instant) -> Result<Decision, RunError> {
        let target = match decision.action {
            Action::ScaleOut { target, .. } | Action::ScaleIn { target } => target,
            Action::Hold | Action::Skip => return Ok(decision),
        };
        if self.settings.dry_run {
            return Ok(decision);
        }
        let write = self.groups.set_capacity(&self.settings.asg_name, target);
        match within(deadline, WRITE_STAGE, write).await {
            Ok(()) => Ok(decision),
            Err(RunError::AutoScaling(error)) if error.is_busy() => Ok(Decision {
                action: Action::Skip,
                reason: format!(
                    "{}; the group is busy ({error}), the next run tries again",
                    decision.reason
                ),
            }),
            Err(error) => Err(error),
        }
    }

    /// Announces a failed run and hands the error back.
    async fn fail(&self, error: RunError, deadline: Instant) -> RunError {
        tracing::error!(error_type = error.error_type(), error = %error, "run failed");
        let notification = Notification {
            kind: Kind::Failure,
            group: self.settings.asg_name.clone(),
            lag: None,
            thresholds: self.settings.thresholds,
            capacity_before: None,
            capacity_after: None,
            driver: None,
            reason: error.to_string(),
            dry_run: self.settings.dry_run,
        };
        self.notify(&notification, deadline).await;
        error
    }

    async fn notify(&self, notification: &Notification, deadline: Instant) {
        let Some(notifier) = &self.notifier else {
            return;
        };
        if let Err(error) = notifier.send(notification, deadline).await {
            tracing::error!(error = %error, "webhook message not delivered");
        }
    }
}

fn known_value(reading: &LagReading) -> Option<u64> {
    match reading {
        LagReading::Known(known) => Some(known.value),
        LagReading::NoData(_) => None,
    }
}

fn driver(reading: &LagReading) -> Option<String> {
    match reading {
        LagReading::Known(known) => Some(known.driver.clone()),
        LagReading::NoData(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix_ms_in(offset: Duration) -> u64 {
        (SystemTime::now() + offset)
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    #[test]
    fn an_error_debugs_as_its_type_and_message() {
        let error = RunError::OutOfTime {
            stage: "describing the group".into(),
            write_sent: false,
        };
        assert_eq!(
            format!("{error:?}"),
            "RunBudgetExceeded: the run's time budget ran out while describing the group"
        );
    }

    #[test]
    fn any_json_is_an_event_however_deep() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        for event in ["{}", r#"{"anything": 1}"#, "null", "\"tick\"", &deep] {
            assert!(
                serde_json::from_str::<AnyEvent>(event).is_ok(),
                "{}",
                &event[..event.len().min(20)]
            );
        }
    }

    #[test]
    fn the_work_of_a_run_ends_early_enough_to_announce_it() {
        let long = Instant::now() + Duration::from_secs(28);
        assert_eq!(long - work_deadline(long), MESSAGE_RESERVE);
        let short = Instant::now() + Duration::from_secs(4);
        let kept = short - work_deadline(short);
        assert!(
            kept <= Duration::from_secs(1) && kept > Duration::from_millis(900),
            "a quarter of a short run: {kept:?}"
        );
    }

    #[test]
    fn run_deadline_keeps_a_margin_before_the_lambda_deadline() {
        let deadline = run_deadline(unix_ms_in(Duration::from_secs(15)));
        let left = deadline - Instant::now();
        assert!(
            left <= Duration::from_secs(15) - DEADLINE_MARGIN,
            "{left:?}"
        );
        assert!(left > Duration::from_secs(12), "{left:?}");
    }

    #[test]
    fn run_deadline_never_exceeds_the_run_budget() {
        let left = run_deadline(unix_ms_in(Duration::from_secs(900))) - Instant::now();
        assert!(left <= RUN_BUDGET, "{left:?}");
    }

    #[test]
    fn a_deadline_in_the_past_gets_the_full_budget() {
        for deadline_ms in [600_000, 0] {
            let left = run_deadline(deadline_ms) - Instant::now();
            assert!(
                left > RUN_BUDGET - Duration::from_secs(1),
                "{deadline_ms}: {left:?}"
            );
        }
    }
}
