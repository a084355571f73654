//! Production controls through the handler: sustained-breach windows against the real
//! Prometheus, the pause tag and the suspended-process guards against moto, the guards moto
//! cannot express (a busy group, a capacity type other than units, instances not yet
//! InService) against the real SDK adapter over aws-smithy-mocks, and every message format
//! as the webhook receives it. Thresholds are the defaults: HIGH 10000000, LOW 100000, OUT 4,
//! IN 0.

use std::time::Duration;

use aws_sdk_autoscaling::error::ErrorMetadata;
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
use aws_sdk_autoscaling::operation::update_auto_scaling_group::{
    UpdateAutoScalingGroupError, UpdateAutoScalingGroupOutput,
};
use aws_sdk_autoscaling::types::error::{ResourceContentionFault, ScalingActivityInProgressFault};
use aws_sdk_autoscaling::types::{AutoScalingGroup, Instance, LifecycleState, Tag};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use kafka_lag_scaler::autoscaling::SdkGroupApi;
use kafka_lag_scaler::config::{Config, Thresholds};
use kafka_lag_scaler::format::WebhookFormat;
use kafka_lag_scaler::guards::PAUSE_TAG;
use kafka_lag_scaler::handler::{Scaler, Settings, Summary, RUN_BUDGET};
use kafka_lag_scaler::notify::{Kind, Notification, Notifier, WebhookNotifier};
use kafka_lag_scaler::prometheus::PrometheusClient;
use kafka_lag_scaler::window::{scale_in_query, scale_out_query};
use kafka_lag_scaler::{http_client, LambdaScaler};
use kafka_lag_scaler_e2e::{
    create_group, group_sizes, lag_query, received, set_lag, unique, values, wait_for_query, Sizes,
    Stack,
};
use serde_json::{json, Value};
use tokio::time::Instant;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const CONSUMERS: &str = "orders-consumer";
const HIGH: u64 = 10_000_000;
const LOW: u64 = 100_000;

/// Windows short enough for a test: eight one-second steps.
const WINDOW: Duration = Duration::from_secs(8);
const STEP: Duration = Duration::from_secs(1);
const WINDOW_ENV: &str = "8s";
const STEP_ENV: &str = "1s";

/// One test's own topic, group and webhook path on the shared stack.
struct Case {
    stack: Stack,
    topic: String,
    asg: String,
    hook: String,
    started: std::time::Instant,
}

impl Case {
    fn new() -> Case {
        Case {
            stack: Stack::get(),
            topic: unique("controls"),
            asg: unique("asg"),
            hook: format!("/controls/{}", unique("hook")),
            started: std::time::Instant::now(),
        }
    }

    /// A case whose group exists in moto with DesiredCapacity and MinSize `desired`.
    async fn with_group(desired: i32) -> Case {
        let case = Case::new();
        let sizes = Sizes {
            min: desired,
            max: 10,
            desired,
        };
        create_group(&case.stack.autoscaling(), &case.asg, sizes).await;
        case
    }

    fn query(&self) -> String {
        lag_query(&self.topic)
    }

    fn webhook(&self) -> String {
        format!("{}{}", self.stack.receiver_url, self.hook)
    }

    /// Sets the topic's one series and waits until Prometheus answers it.
    async fn set_lag(&self, lag: i64) {
        self.set_value(json!(lag), &lag.to_string()).await;
    }

    /// Sets the topic's one series to `value`, which Prometheus shows as `shown` (`NaN`, `-1`).
    async fn set_value(&self, value: Value, shown: &str) {
        set_lag(&self.stack, CONSUMERS, &self.topic, 0, value).await;
        let expected = vec![shown.to_owned()];
        wait_for_query(&self.stack, &self.query(), |result| {
            values(result) == expected
        })
        .await;
        self.mark(&format!("Prometheus answers lag {shown}"));
    }

    /// Waits until Prometheus has held the series for a whole test window, whatever its values.
    async fn wait_for_a_whole_window(&self) {
        let samples = format!(
            "count_over_time(({}\n)[{WINDOW_ENV}:{STEP_ENV}])",
            self.query()
        );
        let steps = (WINDOW.as_secs() / STEP.as_secs()) as f64;
        self.wait_until("a whole window of samples", &samples, |n| n >= steps)
            .await;
    }

    /// Waits until Prometheus evaluates `query` to one sample that `check` accepts.
    async fn wait_until(&self, what: &str, query: &str, check: impl Fn(f64) -> bool) {
        wait_for_query(&self.stack, query, |result| {
            let seen: Vec<f64> = values(result)
                .iter()
                .filter_map(|v| v.parse().ok())
                .collect();
            seen.len() == 1 && check(seen[0])
        })
        .await;
        self.mark(what);
    }

    /// Prints a line of the test's timeline, in seconds since the case began.
    fn mark(&self, what: &str) {
        eprintln!(
            "[{:>5.1}s] {}: {what}",
            self.started.elapsed().as_secs_f64(),
            self.topic
        );
    }

    fn scaler(&self, query: &str, extra: &[(&str, &str)]) -> LambdaScaler {
        let webhook = self.webhook();
        let mut env = vec![("WEBHOOK_URL", webhook.as_str())];
        env.extend_from_slice(extra);
        self.stack.scaler(&self.asg, query, &env)
    }

    async fn run(&self, extra: &[(&str, &str)]) -> Summary {
        self.run_query(&self.query(), extra).await
    }

    async fn run_query(&self, query: &str, extra: &[(&str, &str)]) -> Summary {
        let summary = self
            .scaler(query, extra)
            .run(Instant::now() + RUN_BUDGET)
            .await
            .expect("the run completes");
        self.mark(&format!("run: {} ({})", summary.action, summary.reason));
        summary
    }

    async fn desired(&self) -> i32 {
        group_sizes(&self.stack.autoscaling(), &self.asg)
            .await
            .desired
    }

    /// The bodies the receiver recorded for this case.
    async fn messages(&self) -> Vec<Value> {
        received(&self.stack, &self.hook)
            .await
            .into_iter()
            .map(|message| message["body"].clone())
            .collect()
    }

    async fn texts(&self) -> Vec<String> {
        self.messages()
            .await
            .iter()
            .map(|body| body["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Sustained-breach windows, against the real Prometheus.

#[tokio::test(flavor = "multi_thread")]
async fn a_brief_crossing_holds_and_a_crossing_for_the_whole_window_starts_the_group() {
    let case = Case::with_group(0).await;
    let extra = [
        ("SCALE_OUT_SUSTAIN", WINDOW_ENV),
        ("SUSTAIN_STEP", STEP_ENV),
    ];
    let window = scale_out_query(&case.query(), WINDOW, STEP);

    // A low lag that Prometheus has watched for a whole window.
    case.set_lag(1_000).await;
    case.wait_until("the window is covered, lowest 1000", &window, |v| {
        v == 1_000.0
    })
    .await;

    // The lag crosses HIGH: the current reading alone would start the group.
    case.set_lag(12_000_000).await;
    let brief = case.run(&extra).await;

    assert_eq!(brief.action, "hold", "{}", brief.reason);
    assert_eq!(
        brief.lag,
        Some(12_000_000),
        "the summary reports the current value"
    );
    assert!(
        brief.reason.contains(
            "has not stayed above the threshold for the whole window: the lowest lag over the \
             last 8s was 1000"
        ),
        "{}",
        brief.reason
    );
    assert_eq!(case.desired().await, 0);
    assert!(case.messages().await.is_empty(), "a hold sends no message");

    // The lag stays above HIGH until the whole window has seen it.
    case.wait_until("the lowest lag of the window is above HIGH", &window, |v| {
        v > HIGH as f64
    })
    .await;
    let sustained = case.run(&extra).await;

    assert_eq!(sustained.action, "scale_out", "{}", sustained.reason);
    assert_eq!(sustained.lag, Some(12_000_000));
    assert_eq!(case.desired().await, 4);
    let texts = case.texts().await;
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("scaled out"), "{}", texts[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_brief_dip_holds_and_a_dip_for_the_whole_window_returns_the_group() {
    let case = Case::with_group(4).await;
    let extra = [("SCALE_IN_SUSTAIN", WINDOW_ENV), ("SUSTAIN_STEP", STEP_ENV)];
    let window = scale_in_query(&case.query(), WINDOW, STEP);

    case.set_lag(12_000_000).await;
    case.wait_until("the window is covered, highest 12000000", &window, |v| {
        v == 12_000_000.0
    })
    .await;

    // The lag falls below LOW: the current reading alone would return the group.
    case.set_lag(1_000).await;
    let brief = case.run(&extra).await;

    assert_eq!(brief.action, "hold", "{}", brief.reason);
    assert_eq!(
        brief.lag,
        Some(1_000),
        "the summary reports the current value"
    );
    assert!(
        brief
            .reason
            .contains("the highest lag over the last 8s was 12000000"),
        "{}",
        brief.reason
    );
    assert_eq!(case.desired().await, 4);
    assert!(case.messages().await.is_empty());

    case.wait_until("the highest lag of the window is below LOW", &window, |v| {
        v < LOW as f64
    })
    .await;
    let sustained = case.run(&extra).await;

    assert_eq!(sustained.action, "scale_in", "{}", sustained.reason);
    assert_eq!(case.desired().await, 0);
    let texts = case.texts().await;
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(
        texts[0].contains("back to standby and Karpenter carries the load again"),
        "{}",
        texts[0]
    );
}

/// A window in which the lag was unknown (`unknown`, shown by Prometheus as `shown`) and then
/// low for a moment: the return waits until low lag has been seen for a whole window.
async fn unknown_lag_never_confirms_a_return(unknown: Value, shown: &str) {
    let case = Case::with_group(4).await;
    let extra = [("SCALE_IN_SUSTAIN", WINDOW_ENV), ("SUSTAIN_STEP", STEP_ENV)];
    let window = scale_in_query(&case.query(), WINDOW, STEP);

    case.set_value(unknown, shown).await;
    case.wait_for_a_whole_window().await;
    case.set_lag(1_000).await;
    let brief = case.run(&extra).await;

    assert_eq!(brief.action, "hold", "{}", brief.reason);
    assert!(
        brief
            .reason
            .contains("usable samples do not yet cover the last 8s for every series"),
        "{}",
        brief.reason
    );
    assert_eq!(case.desired().await, 4);

    case.wait_until("low lag has covered the window", &window, |v| {
        v < LOW as f64
    })
    .await;
    let sustained = case.run(&extra).await;

    assert_eq!(sustained.action, "scale_in", "{}", sustained.reason);
    assert_eq!(case.desired().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_of_nan_lag_never_confirms_a_return() {
    unknown_lag_never_confirms_a_return(json!("NaN"), "NaN").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_of_never_committed_lag_never_confirms_a_return() {
    // kafka_exporter reports -1 for a consumer group that never committed an offset.
    unknown_lag_never_confirms_a_return(json!(-1), "-1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_of_nan_lag_never_confirms_a_start() {
    let case = Case::with_group(0).await;
    let extra = [
        ("SCALE_OUT_SUSTAIN", WINDOW_ENV),
        ("SUSTAIN_STEP", STEP_ENV),
    ];

    case.set_value(json!("NaN"), "NaN").await;
    case.wait_for_a_whole_window().await;
    case.set_lag(12_000_000).await;
    let brief = case.run(&extra).await;

    assert_eq!(brief.action, "hold", "{}", brief.reason);
    assert!(
        brief
            .reason
            .ends_with("no series has usable samples covering the last 8s"),
        "{}",
        brief.reason
    );
    assert_eq!(case.desired().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_series_younger_than_the_window_has_not_been_high_for_all_of_it() {
    let case = Case::with_group(0).await;

    // A series that did not exist a moment ago, high from its first sample on.
    case.set_lag(12_000_000).await;
    let uncovered = format!("min_over_time(({}\n)[60s:1s])", case.query());
    case.wait_until("its samples so far are all high", &uncovered, |v| {
        v > HIGH as f64
    })
    .await;
    let young = case
        .run(&[("SCALE_OUT_SUSTAIN", "1m"), ("SUSTAIN_STEP", STEP_ENV)])
        .await;

    assert_eq!(young.action, "hold", "{}", young.reason);
    assert!(
        young
            .reason
            .ends_with("no series has usable samples covering the last 1m"),
        "{}",
        young.reason
    );
    assert_eq!(case.desired().await, 0);

    // Without a window, the original single-reading behaviour starts the group at once.
    let single = case.run(&[]).await;
    assert_eq!(single.action, "scale_out", "{}", single.reason);
    assert_eq!(case.desired().await, 4);
}

// ---------------------------------------------------------------------------------------
// The pause tag and suspended processes, against moto.

async fn tag_group(case: &Case, value: &str) {
    case.stack
        .autoscaling()
        .create_or_update_tags()
        .tags(
            Tag::builder()
                .resource_id(&case.asg)
                .resource_type("auto-scaling-group")
                .key(PAUSE_TAG)
                .value(value)
                .propagate_at_launch(false)
                .build(),
        )
        .send()
        .await
        .expect("tag the group in moto");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_group_is_skipped_without_a_write_or_a_message_until_the_tag_goes() {
    let case = Case::with_group(0).await;
    tag_group(&case, "True").await;
    case.set_lag(12_000_000).await;

    let paused = case.run(&[]).await;

    assert_eq!(
        (paused.action, paused.reason.as_str()),
        ("skip", "paused by tag")
    );
    assert_eq!(paused.lag, Some(12_000_000));
    assert_eq!((paused.capacity_before, paused.capacity_after), (0, 0));
    assert_eq!(case.desired().await, 0);
    assert!(case.messages().await.is_empty(), "no message while paused");

    // Removing the tag resumes the scaler on the next run.
    case.stack
        .autoscaling()
        .delete_tags()
        .tags(
            Tag::builder()
                .resource_id(&case.asg)
                .resource_type("auto-scaling-group")
                .key(PAUSE_TAG)
                .build(),
        )
        .send()
        .await
        .expect("untag the group in moto");
    let resumed = case.run(&[]).await;

    assert_eq!(resumed.action, "scale_out", "{}", resumed.reason);
    assert_eq!(case.desired().await, 4);
    assert_eq!(case.messages().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_group_stays_quiet_even_when_prometheus_refuses_the_query() {
    let case = Case::with_group(0).await;
    tag_group(&case, "true").await;

    let paused = case.run_query("sum(", &[]).await;

    assert_eq!(
        (paused.action, paused.reason.as_str(), paused.lag),
        ("skip", "paused by tag", None)
    );
    assert!(case.messages().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_tag_set_to_false_changes_nothing() {
    let case = Case::with_group(0).await;
    tag_group(&case, "false").await;
    case.set_lag(12_000_000).await;

    let summary = case.run(&[]).await;

    assert_eq!(summary.action, "scale_out", "{}", summary.reason);
}

async fn suspend(case: &Case, process: &str) {
    case.stack
        .autoscaling()
        .suspend_processes()
        .auto_scaling_group_name(&case.asg)
        .scaling_processes(process)
        .send()
        .await
        .expect("suspend a process in moto");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_suspended_launch_process_skips_the_start_names_it_and_writes_nothing() {
    let case = Case::with_group(0).await;
    suspend(&case, "Launch").await;
    case.set_lag(12_000_000).await;

    let summary = case.run(&[]).await;

    assert_eq!(summary.action, "skip");
    assert!(
        summary.reason.contains("Launch process is suspended"),
        "{}",
        summary.reason
    );
    assert_eq!(case.desired().await, 0);
    let texts = case.texts().await;
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(
        texts[0].contains("Launch process is suspended"),
        "{}",
        texts[0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_suspended_terminate_process_skips_the_return_names_it_and_writes_nothing() {
    let case = Case::with_group(4).await;
    suspend(&case, "Terminate").await;
    case.set_lag(1_000).await;

    let summary = case.run(&[]).await;

    assert_eq!(summary.action, "skip");
    assert!(
        summary.reason.contains("Terminate process is suspended"),
        "{}",
        summary.reason
    );
    assert_eq!(case.desired().await, 4);
    assert_eq!(case.messages().await.len(), 1);
}

// ---------------------------------------------------------------------------------------
// Guards moto cannot express: the real SDK adapter over aws-smithy-mocks.

/// The scaler with the real Prometheus and receiver, and a group that answers `rules`.
fn mocked(case: &Case, rules: &[&Rule]) -> Scaler<PrometheusClient, SdkGroupApi, WebhookNotifier> {
    let env = [
        ("PROMETHEUS_ENDPOINT", case.stack.prometheus_url.clone()),
        ("PROMETHEUS_QUERY", case.query()),
        ("ASG_NAME", case.asg.clone()),
        ("WEBHOOK_URL", case.webhook()),
    ];
    let lookup = |name: &str| {
        env.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    };
    let config = Config::parse(lookup).expect("valid test configuration");
    let http = http_client();
    let webhook = config.webhook_url.expect("a webhook is configured");
    Scaler::new(
        Settings {
            asg_name: config.asg_name,
            thresholds: config.thresholds,
            dry_run: false,
        },
        PrometheusClient::new(http.clone(), config.prometheus),
        SdkGroupApi::new(mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, rules)),
        Some(WebhookNotifier::new(http, webhook)),
    )
}

fn described(group: AutoScalingGroup) -> Rule {
    mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups).then_output(move || {
        DescribeAutoScalingGroupsOutput::builder()
            .auto_scaling_groups(group.clone())
            .build()
    })
}

fn group(name: &str, desired: i32, states: &[LifecycleState]) -> AutoScalingGroup {
    let mut group = AutoScalingGroup::builder()
        .auto_scaling_group_name(name)
        .min_size(desired)
        .max_size(10)
        .desired_capacity(desired);
    for (n, state) in states.iter().enumerate() {
        group = group.instances(
            Instance::builder()
                .instance_id(format!("i-{n}"))
                .lifecycle_state(state.clone())
                .availability_zone("us-east-1a")
                .health_status("Healthy")
                .protected_from_scale_in(false)
                .build(),
        );
    }
    group.build()
}

fn updated() -> Rule {
    mock!(aws_sdk_autoscaling::Client::update_auto_scaling_group)
        .then_output(|| UpdateAutoScalingGroupOutput::builder().build())
}

/// The refusals that only mean "not now", as the SDK reports them.
fn busy(code: &'static str) -> UpdateAutoScalingGroupError {
    let message = match code {
        "ScalingActivityInProgress" => "Scaling activity 1234 is in progress",
        _ => "You already have a pending update to an Auto Scaling resource",
    };
    let meta = ErrorMetadata::builder().code(code).message(message).build();
    match code {
        "ScalingActivityInProgress" => UpdateAutoScalingGroupError::ScalingActivityInProgressFault(
            ScalingActivityInProgressFault::builder()
                .message(message)
                .meta(meta)
                .build(),
        ),
        _ => UpdateAutoScalingGroupError::ResourceContentionFault(
            ResourceContentionFault::builder()
                .message(message)
                .meta(meta)
                .build(),
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_group_turns_the_write_into_a_skip_and_one_message() {
    for code in ["ScalingActivityInProgress", "ResourceContention"] {
        let case = Case::new();
        case.set_lag(12_000_000).await;
        let describe = described(group(&case.asg, 0, &[]));
        let update = mock!(aws_sdk_autoscaling::Client::update_auto_scaling_group)
            .then_error(move || busy(code));

        let summary = mocked(&case, &[&describe, &update])
            .run(Instant::now() + RUN_BUDGET)
            .await
            .expect("a busy group is not an error");

        assert_eq!(summary.action, "skip", "{code}");
        assert_eq!(summary.capacity_after, 0, "{code}");
        assert!(summary.reason.contains(code), "{}", summary.reason);
        assert!(
            summary.reason.contains("the next run tries again"),
            "{}",
            summary.reason
        );
        assert!(update.num_calls() >= 1, "{code}: the write was tried");
        let texts = case.texts().await;
        assert_eq!(texts.len(), 1, "{code}: {texts:?}");
        assert!(texts[0].contains("unchanged (skip)"), "{}", texts[0]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_capacity_counted_in_vcpus_is_skipped_with_why_instance_counts_do_not_apply() {
    let case = Case::new();
    case.set_lag(12_000_000).await;
    let weighted = AutoScalingGroup::builder()
        .auto_scaling_group_name(&case.asg)
        .min_size(0)
        .max_size(64)
        .desired_capacity(0)
        .desired_capacity_type("vcpu")
        .build();
    let describe = described(weighted);
    let update = updated();

    let summary = mocked(&case, &[&describe, &update])
        .run(Instant::now() + RUN_BUDGET)
        .await
        .unwrap();

    assert_eq!(summary.action, "skip");
    assert!(
        summary
            .reason
            .contains("DesiredCapacityType is `vcpu`, so its capacity is not an instance count"),
        "{}",
        summary.reason
    );
    assert_eq!(update.num_calls(), 0, "nothing is written");
    assert_eq!(case.messages().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_converging_on_its_target_holds_and_is_never_written_twice() {
    let case = Case::new();
    case.set_lag(12_000_000).await;
    let states = [
        LifecycleState::InService,
        LifecycleState::Pending,
        LifecycleState::Pending,
        LifecycleState::PendingWait,
    ];
    let describe = described(group(&case.asg, 4, &states));
    let update = updated();
    let scaler = mocked(&case, &[&describe, &update]);

    for _ in 0..2 {
        let summary = scaler.run(Instant::now() + RUN_BUDGET).await.unwrap();

        assert_eq!(summary.action, "hold", "{}", summary.reason);
        assert!(
            summary.reason.ends_with(
                "the group is converging on 4 instance(s) (1 InService, 2 Pending, \
                 1 Pending:Wait), so nothing is written again"
            ),
            "{}",
            summary.reason
        );
    }
    assert_eq!(update.num_calls(), 0, "no write at all");
    assert!(case.messages().await.is_empty(), "a hold sends no message");
}

// ---------------------------------------------------------------------------------------
// Message formats, as the receiver gets them from a real run.

#[tokio::test(flavor = "multi_thread")]
async fn each_format_reaches_the_webhook_in_its_own_shape() {
    for format in ["slack", "teams", "discord", "json", "text"] {
        let case = Case::with_group(0).await;
        case.set_lag(12_000_000).await;

        let summary = case.run(&[("WEBHOOK_FORMAT", format)]).await;

        assert_eq!(summary.action, "scale_out");
        let bodies = case.messages().await;
        assert_eq!(bodies.len(), 1, "{format}: {bodies:?}");
        let body = &bodies[0];
        eprintln!("{format} message: {body}");
        let driver = format!(
            "{{consumergroup=\"{CONSUMERS}\", topic=\"{}\"}}",
            case.topic
        );
        match format {
            "slack" => {
                assert!(body["text"].as_str().unwrap().contains("scaled out"));
                let blocks = body["blocks"].as_array().unwrap();
                let kinds: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
                assert_eq!(kinds, ["header", "section", "section"], "{format}");
                assert_eq!(
                    blocks[0]["text"]["text"],
                    format!("Scaled out {}", case.asg)
                );
                let fields: Vec<&str> = blocks[1]["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f["text"].as_str().unwrap())
                    .collect();
                assert_eq!(
                    fields,
                    [
                        format!("*Group*\n{}", case.asg),
                        "*Lag*\n12000000".into(),
                        "*Threshold*\nabove the high threshold 10000000".into(),
                        "*Capacity*\n0 → 4".into(),
                        format!("*Series*\n{driver}"),
                    ]
                );
            }
            "teams" => {
                assert_eq!(body["type"], "message");
                let attachments = body["attachments"].as_array().unwrap();
                assert_eq!(attachments.len(), 1);
                assert_eq!(
                    attachments[0]["contentType"],
                    "application/vnd.microsoft.card.adaptive"
                );
                let card = &attachments[0]["content"];
                assert_eq!(card["type"], "AdaptiveCard");
                assert_eq!(card["body"][1]["type"], "FactSet");
                assert_eq!(
                    card["body"][1]["facts"][3],
                    json!({ "title": "Capacity", "value": "0 → 4" })
                );
                assert!(
                    body.get("text").is_none(),
                    "Workflows drop a bare text body"
                );
            }
            "discord" => {
                let content = body["content"].as_str().unwrap();
                assert!(content.chars().count() <= 2000);
                assert!(content.contains(&format!("scaled out `{}`", case.asg)));
                assert_eq!(body["allowed_mentions"], json!({ "parse": [] }));
            }
            "json" => {
                assert!(body["text"].as_str().unwrap().contains("scaled out"));
                assert_eq!(body["action"], summary.action);
                assert_eq!(body["lag"], json!(summary.lag));
                assert_eq!(body["capacity_before"], summary.capacity_before);
                assert_eq!(body["capacity_after"], summary.capacity_after);
                assert_eq!(body["reason"], summary.reason);
                assert_eq!(body["dry_run"], summary.dry_run);
                assert_eq!(body["group"], case.asg);
                assert_eq!(body["driver"], driver);
            }
            _ => {
                let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
                assert_eq!(keys, ["text"]);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn any_2xx_answer_is_a_delivery_in_every_format() {
    let notification = Notification {
        kind: Kind::ScaleIn,
        group: "kafka-fallback".into(),
        lag: Some(40_000),
        thresholds: Thresholds {
            high: HIGH,
            low: LOW,
            scale_out_capacity: 4,
            scale_in_capacity: 0,
        },
        capacity_before: Some(4),
        capacity_after: Some(0),
        driver: Some("{consumergroup=\"cg-a\"}".into()),
        reason: "lag 40000 < 100000 with 4 instance(s)".into(),
        dry_run: false,
    };
    let formats = [
        WebhookFormat::Slack,
        WebhookFormat::Teams,
        WebhookFormat::Discord,
        WebhookFormat::Json,
        WebhookFormat::Text,
    ];
    let answers = [
        ResponseTemplate::new(200).set_body_string("ok"),
        ResponseTemplate::new(202),
        ResponseTemplate::new(204),
    ];
    for answer in answers {
        for format in formats {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(answer.clone())
                .expect(1)
                .mount(&server)
                .await;
            let url = format!("{}/hook", server.uri()).into();
            let notifier = WebhookNotifier::new(http_client(), url).with_format(format);

            let sent = notifier
                .send(&notification, Instant::now() + Duration::from_secs(5))
                .await;

            assert!(sent.is_ok(), "{format:?}: {sent:?}");
            server.verify().await;
        }
    }
}
