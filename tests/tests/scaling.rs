//! The handler with its real clients against the real local services: the lag comes from
//! Prometheus scraping the exporter simulator, the group lives in moto_server, messages land
//! in the webhook receiver. Each test owns its topic, group and webhook path, so the tests run
//! in parallel on one stack. Thresholds are the defaults: HIGH 10000000, LOW 100000, OUT 4,
//! IN 0.

use kafka_lag_scaler::handler::{RunError, Summary, RUN_BUDGET};
use kafka_lag_scaler_e2e::{
    create_group, free_port, group_sizes, lag_query, received_texts, recommended_query, set_lag,
    unique, values, wait_for_query, Sizes, Stack,
};
use serde_json::json;
use tokio::time::Instant;

/// The consumer group the exporter reports lag for; the topic is what keeps tests apart.
const CONSUMERS: &str = "orders-consumer";

/// A group with MaxSize 10.
const fn sizes(min: i32, desired: i32) -> Sizes {
    Sizes {
        min,
        max: 10,
        desired,
    }
}

/// One test's own topic, Auto Scaling group and webhook path on the shared stack.
struct Case {
    stack: Stack,
    topic: String,
    asg: String,
    hook: String,
}

impl Case {
    /// A fresh case whose group exists in moto with `before`.
    async fn with_group(before: Sizes) -> Case {
        let case = Case::without_group();
        create_group(&case.stack.autoscaling(), &case.asg, before).await;
        case
    }

    /// A fresh case whose group name exists nowhere.
    fn without_group() -> Case {
        Case {
            stack: Stack::get(),
            topic: unique("topic"),
            asg: unique("asg"),
            hook: format!("/hook/{}", unique("messages")),
        }
    }

    /// Publishes `(consumer group, partition, lag)` series on the case's topic and waits until
    /// Prometheus returns `expected` (sorted values) for `query`.
    async fn publish(&self, series: &[(&str, u32, i64)], query: &str, expected: &[&str]) {
        for &(consumers, partition, lag) in series {
            set_lag(&self.stack, consumers, &self.topic, partition, json!(lag)).await;
        }
        wait_for_query(&self.stack, query, |result| {
            let mut seen = values(result);
            seen.sort();
            seen == expected
        })
        .await;
    }

    /// One series of `lag` on the case's topic, as the original query shape sees it.
    async fn set_lag(&self, lag: i64) {
        let query = lag_query(&self.topic);
        self.publish(&[(CONSUMERS, 0, lag)], &query, &[&lag.to_string()])
            .await;
    }

    /// One run of the handler with the original query shape and `extra` configuration.
    async fn run(&self, extra: &[(&str, &str)]) -> Result<Summary, RunError> {
        self.run_query(&lag_query(&self.topic), extra).await
    }

    async fn run_query(&self, query: &str, extra: &[(&str, &str)]) -> Result<Summary, RunError> {
        let webhook = format!("{}{}", self.stack.receiver_url, self.hook);
        let mut env = vec![("WEBHOOK_URL", webhook.as_str())];
        env.extend_from_slice(extra);
        let scaler = self.stack.scaler(&self.asg, query, &env);
        scaler.run(Instant::now() + RUN_BUDGET).await
    }

    async fn sizes(&self) -> Sizes {
        group_sizes(&self.stack.autoscaling(), &self.asg).await
    }

    async fn messages(&self) -> Vec<String> {
        received_texts(&self.stack, &self.hook).await
    }
}

/// One cell of the decision table end to end: `lag` in Prometheus and the group at `before`
/// in moto; one run must answer `action`, leave the group at `after` and send `messages`.
async fn check_cell(lag: i64, before: Sizes, action: &str, after: Sizes, messages: usize) {
    let case = Case::with_group(before).await;
    case.set_lag(lag).await;

    let summary = case.run(&[]).await.expect("the run succeeds");

    let what = format!("lag {lag}, group {before:?}: {summary:?}");
    assert_eq!(summary.action, action, "{what}");
    assert_eq!(summary.lag, Some(lag as u64), "{what}");
    assert_eq!(summary.capacity_before, before.desired, "{what}");
    assert_eq!(summary.capacity_after, after.desired, "{what}");
    assert!(!summary.dry_run, "{what}");
    assert_eq!(
        case.sizes().await,
        after,
        "group read back from moto; {what}"
    );
    assert_eq!(case.messages().await.len(), messages, "messages; {what}");
}

#[tokio::test]
async fn row_1_starts_a_standing_by_group_when_lag_is_above_high() {
    check_cell(12_000_000, sizes(0, 0), "scale_out", sizes(4, 4), 1).await;
}

#[tokio::test]
async fn row_1_message_names_the_group_the_lag_the_threshold_the_capacities_and_the_series() {
    let case = Case::with_group(sizes(0, 0)).await;
    case.set_lag(12_000_000).await;

    case.run(&[]).await.expect("the run succeeds");

    let messages = case.messages().await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let text = &messages[0];
    for part in [
        case.asg.as_str(),
        "12000000",
        "above the high threshold 10000000",
        "0 → 4",
        case.topic.as_str(),
        CONSUMERS,
    ] {
        assert!(text.contains(part), "the message lacks `{part}`: {text}");
    }
}

#[tokio::test]
async fn row_2_tops_up_a_partly_started_group_when_lag_is_between_the_thresholds() {
    check_cell(5_000_000, sizes(2, 2), "scale_out", sizes(4, 4), 1).await;
}

#[tokio::test]
async fn row_3_holds_an_active_group_when_lag_is_above_high() {
    check_cell(12_000_000, sizes(4, 4), "hold", sizes(4, 4), 0).await;
}

#[tokio::test]
async fn row_3_holds_a_group_above_the_active_capacity_when_lag_is_above_high() {
    check_cell(12_000_000, sizes(6, 6), "hold", sizes(6, 6), 0).await;
}

#[tokio::test]
async fn row_4_returns_an_active_group_to_standby_when_lag_is_below_low() {
    check_cell(40_000, sizes(4, 4), "scale_in", sizes(0, 0), 1).await;
}

#[tokio::test]
async fn row_4_returns_a_group_above_the_active_capacity_to_standby_when_lag_is_below_low() {
    check_cell(40_000, sizes(6, 6), "scale_in", sizes(0, 0), 1).await;
}

#[tokio::test]
async fn row_5_holds_a_standing_by_group_when_lag_is_below_low() {
    check_cell(40_000, sizes(0, 0), "hold", sizes(0, 0), 0).await;
}

#[tokio::test]
async fn row_6_holds_a_standing_by_group_when_lag_is_between_the_thresholds() {
    check_cell(5_000_000, sizes(0, 0), "hold", sizes(0, 0), 0).await;
}

#[tokio::test]
async fn row_6_keeps_an_active_group_until_lag_falls_below_low() {
    check_cell(5_000_000, sizes(4, 4), "hold", sizes(4, 4), 0).await;
}

#[tokio::test]
async fn explicit_cell_tops_up_a_partly_started_group_when_lag_is_above_high() {
    check_cell(12_000_000, sizes(2, 2), "scale_out", sizes(4, 4), 1).await;
}

#[tokio::test]
async fn explicit_cell_returns_a_partly_started_group_to_standby_when_lag_is_below_low() {
    check_cell(40_000, sizes(2, 2), "scale_in", sizes(0, 0), 1).await;
}

#[tokio::test]
async fn lag_equal_to_high_does_not_start_the_group() {
    check_cell(10_000_000, sizes(0, 0), "hold", sizes(0, 0), 0).await;
}

#[tokio::test]
async fn lag_equal_to_low_does_not_return_the_group() {
    check_cell(100_000, sizes(4, 4), "hold", sizes(4, 4), 0).await;
}

#[tokio::test]
async fn scale_out_is_clamped_to_max_size_and_the_message_says_so() {
    let small = Sizes {
        min: 0,
        max: 2,
        desired: 0,
    };
    let case = Case::with_group(small).await;
    case.set_lag(12_000_000).await;

    let summary = case.run(&[]).await.expect("the run succeeds");

    assert_eq!(summary.action, "scale_out", "{summary:?}");
    assert_eq!(summary.capacity_after, 2, "{summary:?}");
    let expected = Sizes {
        min: 2,
        max: 2,
        desired: 2,
    };
    assert_eq!(case.sizes().await, expected, "MaxSize is never changed");
    let messages = case.messages().await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].contains("clamped to the group's MaxSize 2"),
        "{messages:?}"
    );
}

#[tokio::test]
async fn dry_run_decides_and_announces_but_never_writes_to_the_group() {
    let case = Case::with_group(sizes(0, 0)).await;
    case.set_lag(12_000_000).await;

    let summary = case
        .run(&[("DRY_RUN", "true")])
        .await
        .expect("the run succeeds");

    assert_eq!(summary.action, "scale_out", "{summary:?}");
    assert!(summary.dry_run, "{summary:?}");
    assert_eq!(summary.capacity_after, 0, "{summary:?}");
    assert_eq!(case.sizes().await, sizes(0, 0), "a dry run writes nothing");
    let messages = case.messages().await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].contains("[dry run] would have scaled out"),
        "{messages:?}"
    );
}

#[tokio::test]
async fn two_runs_on_the_same_state_make_one_change_and_send_one_message() {
    let case = Case::with_group(sizes(0, 0)).await;
    case.set_lag(12_000_000).await;

    let first = case.run(&[]).await.expect("the first run succeeds");
    let second = case.run(&[]).await.expect("the second run succeeds");

    assert_eq!(first.action, "scale_out", "{first:?}");
    assert_eq!(second.action, "hold", "{second:?}");
    assert_eq!(second.capacity_before, 4, "{second:?}");
    assert_eq!(case.sizes().await, sizes(4, 4));
    assert_eq!(case.messages().await.len(), 1);
}

#[tokio::test]
async fn an_unknown_group_is_a_group_not_found_error_and_one_message() {
    let case = Case::without_group();
    case.set_lag(12_000_000).await;

    let error = case.run(&[]).await.expect_err("the run fails");

    assert_eq!(error.error_type(), "GroupNotFound", "{error}");
    assert!(error.to_string().contains(&case.asg), "{error}");
    let messages = case.messages().await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("run failed"), "{messages:?}");
}

#[tokio::test]
async fn an_unreachable_prometheus_fails_the_run_and_leaves_the_group_unchanged() {
    let case = Case::with_group(sizes(4, 4)).await;
    let down = format!("http://127.0.0.1:{}", free_port());

    let error = case
        .run(&[("PROMETHEUS_ENDPOINT", down.as_str())])
        .await
        .expect_err("the run fails");

    assert_eq!(error.error_type(), "PrometheusQueryFailed", "{error}");
    assert_eq!(case.sizes().await, sizes(4, 4));
    let messages = case.messages().await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("run failed"), "{messages:?}");
}

#[tokio::test]
async fn an_endpoint_that_is_not_prometheus_fails_the_run_and_leaves_the_group_unchanged() {
    let case = Case::with_group(sizes(4, 4)).await;

    // The exporter simulator answers /api/v1/query with HTTP 404 and a JSON body that is not
    // the Prometheus envelope.
    let exporter = case.stack.exporter_url.clone();
    let error = case
        .run(&[("PROMETHEUS_ENDPOINT", exporter.as_str())])
        .await
        .expect_err("the run fails");

    assert_eq!(error.error_type(), "PrometheusQueryFailed", "{error}");
    assert_eq!(case.sizes().await, sizes(4, 4));
}

#[tokio::test]
async fn a_topic_without_series_skips_instead_of_reading_zero_lag() {
    let case = Case::with_group(sizes(4, 4)).await;

    // Nothing was ever published for the case's topic: Prometheus answers an empty vector.
    let summary = case.run(&[]).await.expect("the run succeeds");

    assert_eq!(summary.action, "skip", "{summary:?}");
    assert_eq!(summary.lag, None, "{summary:?}");
    assert_eq!(case.sizes().await, sizes(4, 4), "unknown lag is never zero");
    assert_eq!(case.messages().await.len(), 1);
}

#[tokio::test]
async fn a_negative_sample_withholds_the_scale_in_because_the_data_may_be_partial() {
    let case = Case::with_group(sizes(4, 4)).await;
    // kafka_exporter reports -1 for a partition whose group never committed.
    let query = format!(r#"kafka_consumergroup_lag{{topic="{}"}}"#, case.topic);
    let series = [(CONSUMERS, 0, -1), (CONSUMERS, 1, 40_000)];
    case.publish(&series, &query, &["-1", "40000"]).await;

    let summary = case.run_query(&query, &[]).await.expect("the run succeeds");

    assert_eq!(summary.action, "skip", "{summary:?}");
    assert_eq!(summary.lag, Some(40_000), "{summary:?}");
    assert!(summary.reason.contains("partial"), "{summary:?}");
    assert_eq!(case.sizes().await, sizes(4, 4));
    assert_eq!(case.messages().await.len(), 1);
}

#[tokio::test]
async fn a_negative_sample_does_not_hold_back_a_scale_out() {
    let case = Case::with_group(sizes(0, 0)).await;
    let query = format!(r#"kafka_consumergroup_lag{{topic="{}"}}"#, case.topic);
    let series = [(CONSUMERS, 0, -1), (CONSUMERS, 1, 12_000_000)];
    case.publish(&series, &query, &["-1", "12000000"]).await;

    let summary = case.run_query(&query, &[]).await.expect("the run succeeds");

    assert_eq!(summary.action, "scale_out", "{summary:?}");
    assert_eq!(case.sizes().await, sizes(4, 4));
}

#[tokio::test]
async fn the_recommended_query_keeps_a_partition_at_minus_one_unknown_through_the_sum() {
    let case = Case::with_group(sizes(4, 4)).await;
    let query = recommended_query(&case.topic);
    // Summed as the original query shape sums it, this group would read 39999: low lag.
    let series = [(CONSUMERS, 0, 40_000), (CONSUMERS, 1, -1)];
    case.publish(&series, &query, &["NaN"]).await;

    let summary = case.run_query(&query, &[]).await.expect("the run succeeds");

    assert_eq!(summary.action, "skip", "{summary:?}");
    assert_eq!(summary.lag, None, "{summary:?}");
    assert_eq!(case.sizes().await, sizes(4, 4), "unknown lag is never low");
    assert_eq!(case.messages().await.len(), 1);
}

#[tokio::test]
async fn the_recommended_query_still_starts_the_group_on_another_groups_high_lag() {
    let case = Case::with_group(sizes(0, 0)).await;
    let query = recommended_query(&case.topic);
    let series = [
        ("consumers-a", 0, 40_000),
        ("consumers-a", 1, -1),
        ("consumers-b", 0, 12_000_000),
    ];
    case.publish(&series, &query, &["12000000", "NaN"]).await;

    let summary = case.run_query(&query, &[]).await.expect("the run succeeds");

    assert_eq!(summary.action, "scale_out", "{summary:?}");
    assert_eq!(summary.lag, Some(12_000_000), "{summary:?}");
    assert_eq!(case.sizes().await, sizes(4, 4));
}

/// Two consumer groups on one topic: `a` with two partitions of 3000000 each, `b` with one
/// partition of 6000000. By (consumergroup, topic) that is two series of 6000000: the largest
/// is between the thresholds, their sum is above HIGH.
async fn two_groups_of_six_million(case: &Case) {
    let series = [
        ("consumers-a", 0, 3_000_000),
        ("consumers-a", 1, 3_000_000),
        ("consumers-b", 0, 6_000_000),
    ];
    let query = lag_query(&case.topic);
    case.publish(&series, &query, &["6000000", "6000000"]).await;
}

#[tokio::test]
async fn max_aggregation_takes_the_largest_series_and_holds() {
    let case = Case::with_group(sizes(0, 0)).await;
    two_groups_of_six_million(&case).await;

    let summary = case
        .run(&[("LAG_AGGREGATION", "max")])
        .await
        .expect("the run succeeds");

    assert_eq!(summary.lag, Some(6_000_000), "{summary:?}");
    assert_eq!(summary.action, "hold", "{summary:?}");
    assert_eq!(case.sizes().await, sizes(0, 0));
    assert_eq!(case.messages().await.len(), 0);
}

#[tokio::test]
async fn max_is_the_default_aggregation() {
    let case = Case::with_group(sizes(0, 0)).await;
    two_groups_of_six_million(&case).await;

    let summary = case.run(&[]).await.expect("the run succeeds");

    assert_eq!(summary.lag, Some(6_000_000), "{summary:?}");
    assert_eq!(summary.action, "hold", "{summary:?}");
}

#[tokio::test]
async fn sum_aggregation_adds_the_series_and_starts_the_group() {
    let case = Case::with_group(sizes(0, 0)).await;
    two_groups_of_six_million(&case).await;

    let summary = case
        .run(&[("LAG_AGGREGATION", "sum")])
        .await
        .expect("the run succeeds");

    assert_eq!(summary.lag, Some(12_000_000), "{summary:?}");
    assert_eq!(summary.action, "scale_out", "{summary:?}");
    assert_eq!(case.sizes().await, sizes(4, 4));
    assert_eq!(case.messages().await.len(), 1);
}

#[tokio::test]
async fn sum_aggregation_over_raw_partition_series_adds_every_partition() {
    let case = Case::with_group(sizes(0, 0)).await;
    let query = format!(r#"kafka_consumergroup_lag{{topic="{}"}}"#, case.topic);
    let series = [
        (CONSUMERS, 0, 4_000_000),
        (CONSUMERS, 1, 4_000_000),
        (CONSUMERS, 2, 4_000_000),
    ];
    let expected = ["4000000", "4000000", "4000000"];
    case.publish(&series, &query, &expected).await;

    let max = case.run_query(&query, &[]).await.expect("the run succeeds");
    let sum = case
        .run_query(&query, &[("LAG_AGGREGATION", "sum")])
        .await
        .expect("the run succeeds");

    assert_eq!((max.lag, max.action), (Some(4_000_000), "hold"), "{max:?}");
    assert_eq!(
        (sum.lag, sum.action),
        (Some(12_000_000), "scale_out"),
        "{sum:?}"
    );
    assert_eq!(case.sizes().await, sizes(4, 4));
}
