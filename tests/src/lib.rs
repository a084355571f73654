//! Shared harness for the end-to-end tests: the real local services that
//! `scripts/local-stack.sh` starts (Prometheus scraping the exporter simulator, moto's Auto
//! Scaling server, the webhook receiver) and helpers to drive them.
//!
//! The services are found through `KLS_*` variables, or through the env file that
//! `scripts/local-stack.sh start` writes. `scripts/test.sh` starts and stops them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_autoscaling::config::{
    BehaviorVersion, Credentials, Region, SharedCredentialsProvider,
};
use aws_sdk_autoscaling::Client;
use kafka_lag_scaler::config::Config;
use kafka_lag_scaler::{build_scaler, http_client, LambdaScaler};
use serde_json::{json, Value};

/// Where the local services listen.
#[derive(Debug, Clone)]
pub struct Stack {
    pub prometheus_url: String,
    pub exporter_url: String,
    pub moto_url: String,
    pub receiver_url: String,
}

impl Stack {
    /// Finds the running local stack, or stops the test with the command that starts it.
    pub fn get() -> Stack {
        let mut vars: HashMap<String, String> = std::env::vars().collect();
        if !vars.contains_key("KLS_PROMETHEUS_URL") {
            let env_file = repo_root().join("target/local-stack/env");
            if let Ok(text) = std::fs::read_to_string(&env_file) {
                for line in text.lines() {
                    if let Some((key, value)) = line.trim_start_matches("export ").split_once('=') {
                        vars.insert(key.to_owned(), value.trim_matches('"').to_owned());
                    }
                }
            }
        }
        let get = |name: &str| {
            vars.get(name).cloned().unwrap_or_else(|| {
                panic!(
                    "{name} is not set and target/local-stack/env is missing: start the local \
                     services with `scripts/local-stack.sh start`, or run `scripts/test.sh`"
                )
            })
        };
        Stack {
            prometheus_url: get("KLS_PROMETHEUS_URL"),
            exporter_url: get("KLS_EXPORTER_URL"),
            moto_url: get("KLS_MOTO_URL"),
            receiver_url: get("KLS_RECEIVER_URL"),
        }
    }

    /// SDK configuration that reaches moto with test credentials.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.moto_url)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "tests",
            )))
            .build()
    }

    pub fn autoscaling(&self) -> Client {
        Client::new(&self.sdk_config())
    }

    /// The scaler with real clients against the local stack, configured with the base
    /// variables (`PROMETHEUS_ENDPOINT`, `ASG_NAME`, `PROMETHEUS_QUERY`) plus `extra`.
    pub fn scaler(&self, asg_name: &str, query: &str, extra: &[(&str, &str)]) -> LambdaScaler {
        let mut env: HashMap<String, String> = HashMap::from([
            (
                "PROMETHEUS_ENDPOINT".to_owned(),
                self.prometheus_url.clone(),
            ),
            ("PROMETHEUS_QUERY".to_owned(), query.to_owned()),
            ("ASG_NAME".to_owned(), asg_name.to_owned()),
        ]);
        for (key, value) in extra {
            env.insert((*key).to_owned(), (*value).to_owned());
        }
        let config = Config::parse(|name| env.get(name).cloned()).expect("valid test config");
        build_scaler(config, http_client(), &self.sdk_config())
    }
}

/// The repository's top folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A name no other test in this run uses, so tests can share the services in parallel.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// The query shape the original scaler used, limited to one test's topic.
pub fn lag_query(topic: &str) -> String {
    format!(r#"sum(kafka_consumergroup_lag{{topic=~"{topic}"}}) by (consumergroup, topic)"#)
}

/// The query the README recommends, limited to one test's topic: partitions summed by
/// consumer group, a negative (unknown) partition turned into `NaN` so that the sum stays
/// unknown.
pub fn recommended_query(topic: &str) -> String {
    let lag = format!(r#"kafka_consumergroup_lag{{topic=~"{topic}"}}"#);
    format!("sum by (consumergroup, topic) ({lag} >= 0 or {lag} * NaN)")
}

/// What a test reads back of a group in moto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub min: i32,
    pub max: i32,
    pub desired: i32,
}

/// Creates a group in moto (through a launch configuration, so no EC2 client is needed).
pub async fn create_group(client: &Client, name: &str, sizes: Sizes) {
    client
        .create_launch_configuration()
        .launch_configuration_name(format!("{name}-lc"))
        .image_id("ami-12c6146b")
        .instance_type("t3.micro")
        .send()
        .await
        .expect("create launch configuration in moto");
    client
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_configuration_name(format!("{name}-lc"))
        .min_size(sizes.min)
        .max_size(sizes.max)
        .desired_capacity(sizes.desired)
        .availability_zones("us-east-1a")
        .send()
        .await
        .expect("create group in moto");
}

/// Reads a group's sizes back from moto.
/// Puts the group back at standby (MinSize and DesiredCapacity 0), so the next run meets the
/// same state.
pub async fn reset_to_standby(client: &Client, name: &str) {
    client
        .update_auto_scaling_group()
        .auto_scaling_group_name(name)
        .min_size(0)
        .desired_capacity(0)
        .send()
        .await
        .expect("reset the group in moto");
}

pub async fn group_sizes(client: &Client, name: &str) -> Sizes {
    let output = client
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .expect("describe group in moto");
    let group = output
        .auto_scaling_groups()
        .first()
        .expect("group exists in moto");
    Sizes {
        min: group.min_size().unwrap(),
        max: group.max_size().unwrap(),
        desired: group.desired_capacity().unwrap(),
    }
}

/// Sets one `kafka_consumergroup_lag` series in the exporter simulator. `value` is a JSON
/// number or one of the strings `"NaN"`, `"+Inf"`, `"-Inf"`.
pub async fn set_lag(stack: &Stack, group: &str, topic: &str, partition: u32, value: Value) {
    let response = reqwest::Client::new()
        .put(format!("{}/lag", stack.exporter_url))
        .json(&json!({
            "consumergroup": group, "topic": topic, "partition": partition, "value": value
        }))
        .send()
        .await
        .expect("reach the exporter simulator");
    assert!(
        response.status().is_success(),
        "exporter refused the series: {response:?}"
    );
}

/// Waits until Prometheus has scraped what the exporter now serves: `check` is given the
/// instant-vector result of `query` and says whether it is what the test set.
pub async fn wait_for_query(stack: &Stack, query: &str, check: impl Fn(&[Value]) -> bool) {
    let started = Instant::now();
    let client = reqwest::Client::new();
    loop {
        let body: Value = client
            .post(format!("{}/api/v1/query", stack.prometheus_url))
            .form(&[("query", query)])
            .send()
            .await
            .expect("reach Prometheus")
            .json()
            .await
            .expect("Prometheus answers JSON");
        let result = body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if check(&result) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "Prometheus never returned the expected result for {query}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The value of each series in an instant-vector result, as Prometheus wrote it.
pub fn values(result: &[Value]) -> Vec<String> {
    result
        .iter()
        .filter_map(|sample| sample["value"][1].as_str().map(str::to_owned))
        .collect()
}

/// The messages the webhook receiver recorded for `path`.
pub async fn received(stack: &Stack, path: &str) -> Vec<Value> {
    reqwest::Client::new()
        .get(format!("{}/messages", stack.receiver_url))
        .query(&[("path", path)])
        .send()
        .await
        .expect("reach the webhook receiver")
        .json()
        .await
        .expect("the receiver answers JSON")
}

/// A port on 127.0.0.1 that nothing listened on a moment ago: for a service that must be
/// down, or for a server the test starts itself.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port on 127.0.0.1")
        .port()
}

/// The `text` of each message the webhook receiver recorded for `path`, in arrival order.
pub async fn received_texts(stack: &Stack, path: &str) -> Vec<String> {
    received(stack, path)
        .await
        .iter()
        .map(|message| {
            message["body"]["text"]
                .as_str()
                .unwrap_or_else(|| panic!("a message without a `text` field: {message}"))
                .to_owned()
        })
        .collect()
}
