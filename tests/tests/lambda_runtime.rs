//! The built binary through the real Lambda runtime path: `cargo lambda watch` serves the
//! Lambda Runtime API and runs the function, `cargo lambda invoke` sends it real event
//! payloads. The function reaches the local stack through its environment, as it would reach
//! Prometheus and AWS once deployed.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kafka_lag_scaler_e2e::{
    create_group, free_port, group_sizes, lag_query, received_texts, repo_root, reset_to_standby,
    set_lag, unique, values, wait_for_query, Sizes, Stack,
};
use serde_json::{json, Value};

const FUNCTION: &str = "kafka-lag-scaler";

/// How long `cargo lambda watch` may take to answer; it may be compiling the function.
const WATCH_READY_TIMEOUT: Duration = Duration::from_secs(600);

/// A `cargo lambda watch` serving the function with a given environment. Dropping it stops
/// the process group it leads (watch, cargo and the function), also when a test panics.
struct Watch {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Watch {
    /// Builds the function, starts `cargo lambda watch` with `env` as the function's
    /// environment, and waits until its Runtime API answers.
    fn start(name: &str, env: &[(&str, &str)]) -> Watch {
        // Build first, exactly as watch's `cargo run --bin` will (the whole workspace's
        // features, hence no `-p`): a compile error shows here, and the function starts at
        // once instead of compiling while the first invocation's deadline runs out.
        let build = cargo()
            .args(["build", "--quiet", "--bin", FUNCTION])
            .status()
            .expect("run cargo build");
        assert!(build.success(), "cargo build of {FUNCTION} failed");

        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique(name));
        std::fs::create_dir_all(&dir).expect("create the test's directory");
        // The query holds commas, which `--env-var` would split on: use an env file, with
        // single quotes to keep each value verbatim.
        let env_file = dir.join("function.env");
        let lines: Vec<String> = env.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
        std::fs::write(&env_file, lines.concat()).expect("write the function's env file");

        let log = dir.join("watch.log");
        let port = free_port();
        let output = File::create(&log).expect("create the watch log");
        let child = cargo()
            .args(["lambda", "watch", "--ignore-changes", "--quiet"])
            .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(port.to_string())
            .arg("--env-file")
            .arg(&env_file)
            .args(["--bin", FUNCTION])
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("clone the log handle"))
            .stderr(output)
            // Its own process group, so that Drop can stop cargo and the function with it.
            .process_group(0)
            .spawn()
            .expect("start cargo lambda watch");
        let mut watch = Watch { child, port, log };
        watch.wait_until_ready();
        watch
    }

    fn wait_until_ready(&mut self) {
        let started = Instant::now();
        let address = format!("127.0.0.1:{}", self.port);
        while std::net::TcpStream::connect(&address).is_err() {
            if let Some(status) = self.child.try_wait().expect("poll cargo lambda watch") {
                panic!(
                    "cargo lambda watch exited with {status}:\n{}",
                    self.log_text()
                );
            }
            assert!(
                started.elapsed() < WATCH_READY_TIMEOUT,
                "cargo lambda watch is not listening on {address}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Invokes the function with `payload` through `cargo lambda invoke`.
    async fn invoke(&self, payload: Payload<'_>) -> Result<Value, Failure> {
        let mut command = tokio::process::Command::new(cargo_path());
        command
            .current_dir(repo_root())
            .args(["lambda", "invoke", "--color", "never", FUNCTION])
            .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(self.port.to_string())
            .args(["--output-format", "json"]);
        match payload {
            Payload::File(path) => command.arg("--data-file").arg(path),
            Payload::Ascii(text) => command.args(["--data-ascii", text]),
        };
        let output = command.output().await.expect("run cargo lambda invoke");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            return Ok(serde_json::from_str(&stdout).unwrap_or_else(|error| {
                panic!("the invoke printed no JSON ({error}): {stdout}\n{stderr}")
            }));
        }
        Err(Failure::parse(&stderr).unwrap_or_else(|| {
            panic!(
                "cargo lambda invoke failed without a function error:\n{stderr}\nwatch log:\n{}",
                self.log_text()
            )
        }))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // watch starts each function instance in a session of its own, outside the group:
        // note them while watch is still their ancestor.
        let instances = descendants(self.child.id());
        signal("-TERM", &[format!("-{}", self.child.id())]);
        wait_for_exit(&mut self.child, Duration::from_secs(10));
        // Whatever of the group is still there (a cargo build, say) goes now.
        signal("-KILL", &[format!("-{}", self.child.id())]);
        let _ = self.child.wait();

        let left: Vec<String> = instances
            .iter()
            .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
            .map(u32::to_string)
            .collect();
        if !left.is_empty() {
            signal("-KILL", &left);
        }
    }
}

/// Sends `signal` to each PID (or `-PGID`) with kill(1). One that has already exited is fine:
/// there is nothing left to stop.
fn signal(signal: &str, targets: &[String]) {
    let _ = Command::new("kill")
        .arg(signal)
        .arg("--")
        .args(targets)
        .stderr(Stdio::null())
        .status();
}

fn wait_for_exit(child: &mut Child, patience: Duration) {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every descendant of `pid`, found through the parent PIDs in /proc (never by name).
fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let child = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid ...`; the command name may hold spaces and parentheses.
            let after_comm = stat.rsplit_once(')')?.1;
            let parent = after_comm.split_whitespace().nth(1)?.parse().ok()?;
            Some((child, parent))
        })
        .collect();
    let mut found = vec![pid];
    let mut next = 0;
    while let Some(&ancestor) = found.get(next) {
        let children = parents.iter().filter(|(_, parent)| *parent == ancestor);
        found.extend(children.map(|(child, _)| *child));
        next += 1;
    }
    found.split_off(1)
}

enum Payload<'a> {
    File(&'a Path),
    Ascii(&'a str),
}

/// A function error as `cargo lambda invoke` reports it on stderr:
/// `Error: <errorType>`, then the message, wrapped and framed by `×` and `│`.
#[derive(Debug)]
struct Failure {
    error_type: String,
    message: String,
}

impl Failure {
    fn parse(stderr: &str) -> Option<Failure> {
        let mut lines = stderr.lines();
        let error_type = lines.next()?.strip_prefix("Error: ")?.trim().to_owned();
        let words: Vec<&str> = lines
            .take_while(|line| !line.contains("Was this behavior unexpected?"))
            .flat_map(str::split_whitespace)
            .filter(|word| *word != "×" && *word != "│")
            .collect();
        Some(Failure {
            error_type,
            message: words.join(" "),
        })
    }
}

fn cargo_path() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn cargo() -> Command {
    let mut command = Command::new(cargo_path());
    command.current_dir(repo_root());
    command
}

fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(name)
}

const STANDBY: Sizes = Sizes {
    min: 0,
    max: 10,
    desired: 0,
};

/// A fresh group at standby and a fresh topic whose lag, 12000000, starts it; returns the
/// group's name and the query that reads the topic.
async fn standing_by_at_high_lag(stack: &Stack) -> (String, String) {
    let (asg, topic) = (unique("lambda-asg"), unique("lambda-topic"));
    let query = lag_query(&topic);
    create_group(&stack.autoscaling(), &asg, STANDBY).await;
    set_lag(stack, "orders-consumer", &topic, 0, json!(12_000_000)).await;
    wait_for_query(stack, &query, |result| values(result) == ["12000000"]).await;
    (asg, query)
}

/// Invokes the function with the EventBridge fixture; it must fail with
/// `InvalidConfiguration`.
async fn invalid_configuration(watch: &Watch) -> Failure {
    let event = fixture("eventbridge-scheduled.json");
    let failure = watch
        .invoke(Payload::File(&event))
        .await
        .expect_err("the invoke fails");
    assert_eq!(failure.error_type, "InvalidConfiguration", "{failure:?}");
    failure
}

/// The function's environment: `asg` driven by `query`, on the local stack.
fn function_env<'a>(stack: &'a Stack, asg: &'a str, query: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("PROMETHEUS_ENDPOINT", stack.prometheus_url.as_str()),
        ("PROMETHEUS_QUERY", query),
        ("ASG_NAME", asg),
        ("AWS_ENDPOINT_URL", stack.moto_url.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_built_binary_scales_out_the_same_way_for_every_kind_of_scheduled_event() {
    let stack = Stack::get();
    let client = stack.autoscaling();
    let (asg, query) = standing_by_at_high_lag(&stack).await;
    let hook = format!("/hook/{}", unique("lambda"));
    let webhook = format!("{}{hook}", stack.receiver_url);

    let mut env = function_env(&stack, &asg, &query);
    env.push(("WEBHOOK_URL", &webhook));
    let watch = Watch::start("scale-out", &env);

    let eventbridge = fixture("eventbridge-scheduled.json");
    let scheduler = fixture("scheduler-event.json");
    let payloads = [
        ("EventBridge scheduled event", Payload::File(&eventbridge)),
        ("EventBridge Scheduler event", Payload::File(&scheduler)),
        ("empty custom input", Payload::Ascii("{}")),
    ];
    for (runs, (what, payload)) in payloads.into_iter().enumerate() {
        // Every event starts from the same state: the group standing by.
        reset_to_standby(&client, &asg).await;

        let summary = watch.invoke(payload).await.expect(what);

        let reason = summary["reason"].as_str().unwrap_or_default().to_owned();
        assert!(reason.contains("12000000 > 10000000"), "{what}: {summary}");
        let expected = json!({
            "action": "scale_out",
            "lag": 12_000_000,
            "capacity_before": 0,
            "capacity_after": 4,
            "reason": reason,
            "dry_run": false,
        });
        assert_eq!(summary, expected, "{what}");
        let active = Sizes {
            min: 4,
            max: 10,
            desired: 4,
        };
        assert_eq!(group_sizes(&client, &asg).await, active, "{what}");
        let messages = received_texts(&stack, &hook).await;
        assert_eq!(messages.len(), runs + 1, "{what}: {messages:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_configuration_answers_an_error_naming_the_variable_and_the_value() {
    let stack = Stack::get();
    let asg = unique("lambda-asg");
    let query = lag_query(&unique("lambda-topic"));
    let mut env = function_env(&stack, &asg, &query);
    env.push(("HIGH_LAG_THRESHOLD", "ten"));
    let watch = Watch::start("invalid-config", &env);

    let failure = invalid_configuration(&watch).await;

    assert!(
        failure.message.contains("HIGH_LAG_THRESHOLD is `ten`"),
        "{failure:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_unreadable_at_the_cold_start_is_read_again_by_the_next_invocation() {
    let stack = Stack::get();
    let client = stack.autoscaling();
    let (asg, query) = standing_by_at_high_lag(&stack).await;
    let hook = format!("/hook/{}", unique("lambda-secret"));
    // The webhook URL in a secret that is scheduled for deletion, so unreadable, until it is
    // restored: a Secrets Manager that fails one cold start and answers later.
    let secrets = aws_sdk_secretsmanager::Client::new(&stack.sdk_config());
    let arn = secrets
        .create_secret()
        .name(unique("kls-webhook"))
        .secret_string(format!("{}{hook}", stack.receiver_url))
        .send()
        .await
        .expect("create the secret in moto")
        .arn()
        .expect("moto returns the ARN")
        .to_owned();
    let deleting = secrets.delete_secret().secret_id(&arn).send().await;
    deleting.expect("schedule the secret's deletion");

    let mut env = function_env(&stack, &asg, &query);
    env.push(("WEBHOOK_URL_SECRET_ARN", &arn));
    let watch = Watch::start("secret-retry", &env);

    let failure = invalid_configuration(&watch).await;
    // cargo lambda wraps long messages, at hyphens too, so the ARN is not looked for whole.
    assert!(
        failure.message.contains("WEBHOOK_URL_SECRET_ARN"),
        "{failure:?}"
    );
    assert!(failure.message.contains("tries again"), "{failure:?}");
    assert_eq!(group_sizes(&client, &asg).await, STANDBY);

    let restored = secrets.restore_secret().secret_id(&arn).send().await;
    restored.expect("restore the secret");
    let event = fixture("eventbridge-scheduled.json");
    let summary = watch
        .invoke(Payload::File(&event))
        .await
        .expect("the same instance reads the secret again and runs");

    assert_eq!(summary["action"], "scale_out", "{summary}");
    let active = Sizes {
        min: 4,
        max: 10,
        desired: 4,
    };
    assert_eq!(group_sizes(&client, &asg).await, active);
    assert_eq!(received_texts(&stack, &hook).await.len(), 1);
}
