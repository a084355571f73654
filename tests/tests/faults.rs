//! Bad input and faults (issue 4): each case runs one whole run through the handler.
//!
//! Shapes that real services will not produce on demand come from fake servers (wiremock for
//! Prometheus, the webhook and, for recorded AWS errors, the Auto Scaling API). Wherever a
//! case says "no write", the group is a real one in moto and its sizes are read back.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::Region;
use aws_sdk_autoscaling::config::Credentials;
use aws_sdk_autoscaling::Client;
use kafka_lag_scaler::config::Config;
use kafka_lag_scaler::handler::{run_deadline, AnyEvent, RunError, Summary};
use kafka_lag_scaler::prometheus::MAX_BODY_BYTES;
use kafka_lag_scaler::{build_scaler, http_client, sdk_config_loader, LambdaScaler};
use kafka_lag_scaler_e2e::{
    create_group, group_sizes, received_texts, repo_root, reset_to_standby, unique, Sizes, Stack,
};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tracing_subscriber::fmt::MakeWriter;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const QUERY: &str = "sum(kafka_consumergroup_lag) by (consumergroup, topic)";
const HIGH_LAG: &str = "12000000";

// ---------------------------------------------------------------------------------------------
// Fakes and helpers

/// A Prometheus `/api/v1/query` that always gives `answer`.
async fn prometheus(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/query"))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

fn json_answer(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_owned(), "application/json")
}

/// A successful instant vector with one series per value, evaluated now.
fn vector(values: &[&str]) -> ResponseTemplate {
    vector_stamped(values, unix_now())
}

/// A successful instant vector with one series per value, each stamped `at` (Unix seconds).
fn vector_stamped(values: &[&str], at: f64) -> ResponseTemplate {
    let samples: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            json!({"metric": {"consumergroup": format!("cg-{i}"), "topic": "orders"},
                   "value": [at, value]})
        })
        .collect();
    let body = json!({"status": "success", "data": {"resultType": "vector", "result": samples}});
    json_answer(200, &body.to_string())
}

fn unix_now() -> f64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH);
    now.expect("the clock is past 1970").as_secs_f64()
}

/// A webhook that answers every POST with `answer`.
async fn webhook(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

/// The `text` of each message a fake webhook received.
async fn texts(server: &MockServer) -> Vec<String> {
    let requests = server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .map(|request| request.body_json::<Value>().unwrap()["text"].to_string())
        .collect()
}

/// An address where nothing listens: connections are refused.
async fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

/// A server that accepts connections and never answers.
async fn silent_server_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{address}")
}

/// A server that answers every connection with `head` and the start of a body it announced
/// longer, then closes the connection.
async fn cut_short_server_url() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0; 4096];
            let _ = socket.read(&mut request).await;
            let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                          Content-Length: 1000\r\n\r\n{\"status\":\"success\",";
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    format!("http://{address}")
}

/// A fresh group in moto.
async fn group(stack: &Stack, prefix: &str, sizes: Sizes) -> (String, Client) {
    let client = stack.autoscaling();
    let name = unique(prefix);
    create_group(&client, &name, sizes).await;
    (name, client)
}

const AT_FOUR: Sizes = Sizes {
    min: 0,
    max: 10,
    desired: 4,
};
const AT_ZERO: Sizes = Sizes {
    min: 0,
    max: 10,
    desired: 0,
};

/// The scaler against the local stack's moto, with Prometheus at `prometheus`.
fn scaler(stack: &Stack, asg: &str, prometheus: &str, extra: &[(&str, &str)]) -> LambdaScaler {
    let mut env = vec![("PROMETHEUS_ENDPOINT", prometheus)];
    env.extend_from_slice(extra);
    stack.scaler(asg, QUERY, &env)
}

/// A run that must end within 15 s, the way the Lambda runtime would set it up.
fn deadline_in(seconds: u64) -> (u64, Instant) {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let deadline_ms = now_ms + seconds * 1000;
    (deadline_ms, run_deadline(deadline_ms))
}

fn deadline() -> Instant {
    deadline_in(15).1
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Asserts a run failed with `error_type` and a message containing each of `parts`.
fn assert_error(result: Result<Summary, RunError>, error_type: &str, parts: &[&str]) -> String {
    let error = result.expect_err("the run should fail");
    let diagnostic = Diagnostic::from(error);
    assert_eq!(
        diagnostic.error_type, error_type,
        "{}",
        diagnostic.error_message
    );
    for part in parts {
        assert!(
            diagnostic.error_message.contains(part),
            "`{part}` missing from: {}",
            diagnostic.error_message
        );
    }
    diagnostic.error_message
}

/// The log lines (JSON) written while a guard from [`capture_logs`] is alive.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

/// Records every event of every crate up to `debug` on this thread, as JSON lines. The tests
/// that use it run on a current-thread runtime, so everything the run does is recorded.
fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(logs.clone())
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

// ---------------------------------------------------------------------------------------------
// Prometheus answers (cases 1 to 8)

/// A Prometheus answer with no usable lag: skip, one message that says so, no write.
async fn assert_skips_without_writing(answer: ResponseTemplate, why: &str) {
    let stack = Stack::get();
    let (asg, client) = group(&stack, "faults-nolag", AT_FOUR).await;
    let prometheus = prometheus(answer).await;
    let hook = webhook(ResponseTemplate::new(200)).await;
    let scaler = scaler(
        &stack,
        &asg,
        &prometheus.uri(),
        &[("WEBHOOK_URL", &hook.uri())],
    );

    let summary = scaler.run(deadline()).await.expect(why);

    assert_eq!(summary.action, "skip", "{why}: {summary:?}");
    assert_eq!(summary.lag, None, "{why}");
    assert_eq!(
        (summary.capacity_before, summary.capacity_after),
        (4, 4),
        "{why}"
    );
    assert_eq!(group_sizes(&client, &asg).await, AT_FOUR, "{why}: no write");
    let texts = texts(&hook).await;
    assert_eq!(texts.len(), 1, "{why}: {texts:?}");
    assert!(texts[0].contains("no usable lag"), "{why}: {texts:?}");
}

#[tokio::test]
async fn case_01_nan_lag_skips_without_writing() {
    assert_skips_without_writing(vector(&["NaN"]), "a NaN sample").await;
}

#[tokio::test]
async fn case_02_an_empty_vector_skips_without_writing() {
    assert_skips_without_writing(vector(&[]), "an empty vector").await;
}

#[tokio::test]
async fn case_03_only_negative_lag_skips_without_writing() {
    assert_skips_without_writing(vector(&["-1", "-37"]), "negative samples").await;
}

#[tokio::test]
async fn infinite_lag_of_either_sign_skips_without_writing() {
    assert_skips_without_writing(vector(&["+Inf", "-Inf"]), "infinite samples").await;
}

#[tokio::test]
async fn low_lag_beside_an_unusable_series_never_scales_in() {
    // The usable series says "back to standby", but the NaN one may be the busy consumer.
    let stack = Stack::get();
    let (asg, client) = group(&stack, "faults-partial", AT_FOUR).await;
    let prometheus = prometheus(vector(&["NaN", "0"])).await;
    let scaler = scaler(&stack, &asg, &prometheus.uri(), &[]);

    let summary = scaler.run(deadline()).await.unwrap();

    assert_eq!(summary.action, "skip", "{summary:?}");
    assert!(
        summary
            .reason
            .contains("no usable value (NaN, infinite, negative"),
        "{summary:?}"
    );
    assert_eq!(group_sizes(&client, &asg).await, AT_FOUR);
}

/// A Prometheus that fails in some way: a Lambda error with `parts` in it, and no write.
async fn assert_fails_without_writing(prometheus_url: &str, parts: &[&str]) -> String {
    let stack = Stack::get();
    let (asg, client) = group(&stack, "faults-promfail", AT_FOUR).await;
    let scaler = scaler(&stack, &asg, prometheus_url, &[]);
    let deadline = deadline();

    let result = scaler.run(deadline).await;

    assert!(Instant::now() < deadline, "the run outlived its deadline");
    let message = assert_error(result, "PrometheusQueryFailed", parts);
    assert_eq!(group_sizes(&client, &asg).await, AT_FOUR, "no write");
    message
}

#[tokio::test]
async fn case_04_a_refused_query_quotes_error_type_and_parse_error() {
    let body = json!({
        "status": "error",
        "errorType": "bad_data",
        "error": r#"invalid parameter "query": 1:38: parse error: unexpected "}""#,
    })
    .to_string();
    let server = prometheus(json_answer(400, &body)).await;

    assert_fails_without_writing(
        &server.uri(),
        &[
            "HTTP 400",
            "bad_data",
            r#"1:38: parse error: unexpected "}""#,
        ],
    )
    .await;
}

#[tokio::test]
async fn case_05_an_html_gateway_error_names_status_and_content_type() {
    let page = "<html><body>Bad Gateway</body></html>";
    let server = prometheus(ResponseTemplate::new(502).set_body_raw(page, "text/html")).await;

    let message = assert_fails_without_writing(&server.uri(), &["HTTP 502", "`text/html`"]).await;

    assert!(
        !message.contains("line 1 column"),
        "a JSON parse message: {message}"
    );
}

#[tokio::test]
async fn an_html_page_with_status_200_is_not_a_lag_reading() {
    let page = "<html><body>Sign in</body></html>";
    let server = prometheus(ResponseTemplate::new(200).set_body_raw(page, "text/html")).await;

    assert_fails_without_writing(&server.uri(), &["HTTP 200", "`text/html`", "not the JSON"]).await;
}

#[tokio::test]
async fn case_06_a_refused_connection_names_the_endpoint() {
    let url = closed_port_url().await;

    assert_fails_without_writing(
        &url,
        &[&format!("could not reach Prometheus at {url}/api/v1/query")],
    )
    .await;
}

#[tokio::test]
async fn case_06_a_prometheus_slower_than_its_timeout_names_the_endpoint() {
    // Answers after 30 s; the invocation has 15 s left; PROMETHEUS_TIMEOUT_SECONDS is 10.
    let server = prometheus(vector(&[HIGH_LAG]).set_delay(Duration::from_secs(30))).await;
    let endpoint = format!("Prometheus at {}/api/v1/query", server.uri());

    assert_fails_without_writing(&server.uri(), &[&endpoint, "did not answer within 10 s"]).await;
}

#[tokio::test]
async fn a_prometheus_slower_than_the_time_left_is_named_and_announced_before_the_deadline() {
    // The Prometheus timeout (20 s) is longer than the invocation has left (5 s). The run
    // gives up with time kept to announce it.
    let stack = Stack::get();
    let (asg, client) = group(&stack, "faults-slow", AT_FOUR).await;
    let server = prometheus(vector(&[HIGH_LAG]).set_delay(Duration::from_secs(30))).await;
    let hook = format!("/hook/{}", unique("faults-slow"));
    let webhook = format!("{}{hook}", stack.receiver_url);
    let scaler = scaler(
        &stack,
        &asg,
        &server.uri(),
        &[
            ("PROMETHEUS_TIMEOUT_SECONDS", "20"),
            ("WEBHOOK_URL", &webhook),
        ],
    );
    let (deadline_ms, _) = deadline_in(5);
    let mut context = Context::default();
    context.deadline = deadline_ms;

    let result = scaler.handle(LambdaEvent::new(AnyEvent, context)).await;

    assert!(now_ms() < deadline_ms, "the run outlived the invocation");
    let stage = format!(
        "reading the lag from Prometheus at {}/api/v1/query",
        server.uri()
    );
    assert_error(result, "RunBudgetExceeded", &[&stage]);
    assert_eq!(group_sizes(&client, &asg).await, AT_FOUR, "no write");
    let messages = received_texts(&stack, &hook).await;
    assert_eq!(messages.len(), 1, "the failure is announced: {messages:?}");
}

#[tokio::test]
async fn a_redirect_to_another_host_is_never_followed_nor_its_answer_trusted() {
    // The other host would answer a lag that starts the group, and would see the credentials.
    let elsewhere = prometheus(vector(&[HIGH_LAG])).await;
    let target = format!("{}/api/v1/query?token=s3cr3t", elsewhere.uri());
    for status in [301, 302, 307, 308] {
        let redirecting =
            prometheus(ResponseTemplate::new(status).insert_header("Location", target.as_str()))
                .await;

        let message = assert_fails_without_writing(
            &redirecting.uri(),
            &[
                &format!("answered HTTP {status}"),
                &format!("a redirect to `{}`", elsewhere.uri()),
                "redirects are not followed",
            ],
        )
        .await;

        assert!(!message.contains("s3cr3t"), "{message}");
    }
    let followed = elsewhere.received_requests().await.unwrap_or_default();
    assert!(followed.is_empty(), "a redirect was followed: {followed:?}");
}

#[tokio::test]
async fn case_07_a_range_vector_names_the_result_type() {
    let body = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
    let server = prometheus(json_answer(200, body)).await;

    assert_fails_without_writing(&server.uri(), &["`matrix`"]).await;
}

#[tokio::test]
async fn an_answer_stamped_a_day_ago_or_in_the_future_is_refused_not_acted_on() {
    // Low lag against a group at four: acted on, it would return the group to standby.
    for (at, parts) in [
        (
            unix_now() - 86_400.0,
            ["86400 s behind this function's clock", "a cache, a replay"],
        ),
        (
            unix_now() + 3_600.0,
            ["3600 s ahead of this function's clock", "a clock is wrong"],
        ),
    ] {
        let server = prometheus(vector_stamped(&["5"], at)).await;

        assert_fails_without_writing(&server.uri(), &parts).await;
    }
}

#[tokio::test]
async fn a_body_cut_short_is_named_as_such_not_as_an_unreachable_prometheus() {
    let url = cut_short_server_url().await;

    let message =
        assert_fails_without_writing(&url, &["answered HTTP 200 OK, but the body was cut short"])
            .await;

    assert!(!message.contains("could not reach"), "{message}");
}

#[tokio::test]
async fn not_modified_is_not_taken_for_a_redirect() {
    let server = prometheus(ResponseTemplate::new(304)).await;

    let message = assert_fails_without_writing(&server.uri(), &["answered HTTP 304"]).await;

    assert!(!message.contains("redirect"), "{message}");
}

#[tokio::test]
async fn a_body_too_large_for_the_function_is_refused_by_its_size() {
    // A query without its `by` clause: one series per partition of every group, well past what
    // a 128 MB function can hold while it reads them.
    let sample = r#"{"metric":{"consumergroup":"cg","partition":"0"},"value":[1,"5"]},"#;
    let samples = sample.repeat(MAX_BODY_BYTES / sample.len() + 1);
    let body = format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        samples.trim_end_matches(',')
    );
    let server = prometheus(json_answer(200, &body)).await;

    assert_fails_without_writing(&server.uri(), &["larger than 32 MiB"]).await;
}

#[tokio::test]
async fn case_08_the_query_reaches_prometheus_exactly_with_plus_encoded() {
    let stack = Stack::get();
    let (asg, _client) = group(&stack, "faults-plus", AT_ZERO).await;
    let server = prometheus(vector(&["5"])).await;
    let query = r#"sum(kafka_consumergroup_lag{topic=~"orders.+"}) by (consumergroup, topic)"#;
    let scaler = stack.scaler(&asg, query, &[("PROMETHEUS_ENDPOINT", &server.uri())]);

    scaler.run(deadline()).await.unwrap();

    let requests: Vec<Request> = server.received_requests().await.unwrap();
    let body = String::from_utf8(requests[0].body.clone()).unwrap();
    assert!(body.contains("orders.%2B"), "{body}");
    let form = reqwest::Url::parse(&format!("http://form/?{body}")).unwrap();
    let sent: Vec<(String, String)> = form.query_pairs().into_owned().collect();
    assert_eq!(sent, vec![("query".to_owned(), query.to_owned())]);
}

// ---------------------------------------------------------------------------------------------
// Auto Scaling (cases 9 to 12)

#[tokio::test]
async fn case_09_scale_out_is_clamped_to_max_size_and_says_so() {
    let stack = Stack::get();
    let small = Sizes {
        min: 0,
        max: 3,
        desired: 0,
    };
    let (asg, client) = group(&stack, "faults-clamp", small).await;
    let prometheus = prometheus(vector(&[HIGH_LAG])).await;
    let hook = webhook(ResponseTemplate::new(200)).await;
    let scaler = scaler(
        &stack,
        &asg,
        &prometheus.uri(),
        &[("WEBHOOK_URL", &hook.uri())],
    );

    let summary = scaler.run(deadline()).await.unwrap();

    assert_eq!((summary.action, summary.capacity_after), ("scale_out", 3));
    let expected = Sizes {
        min: 3,
        max: 3,
        desired: 3,
    };
    assert_eq!(group_sizes(&client, &asg).await, expected);
    let texts = texts(&hook).await;
    assert!(
        texts[0].contains("clamped to the group's MaxSize 3"),
        "{texts:?}"
    );
}

#[tokio::test]
async fn case_10_an_unknown_group_is_an_error_naming_it() {
    let stack = Stack::get();
    let prometheus = prometheus(vector(&[HIGH_LAG])).await;
    let missing = unique("faults-missing");
    let scaler = scaler(&stack, &missing, &prometheus.uri(), &[]);

    let result = scaler.run(deadline()).await;

    assert_error(
        result,
        "GroupNotFound",
        &[&format!("`{missing}` was not found")],
    );
}

#[tokio::test]
async fn an_unreachable_auto_scaling_api_is_an_error_naming_its_endpoint() {
    // What a function in a VPC without a route to Auto Scaling meets, as a refused connection.
    let prometheus = prometheus(vector(&[HIGH_LAG])).await;
    let unreachable = closed_port_url().await;
    let scaler = lambda_scaler("faults-no-route", &prometheus.uri(), &unreachable).await;

    let result = scaler.run(deadline()).await;

    assert_error(
        result,
        "AutoScalingFailed",
        &[&format!(
            "DescribeAutoScalingGroups failed: could not reach the Auto Scaling API at \
             {unreachable}"
        )],
    );
}

const XMLNS: &str = "http://autoscaling.amazonaws.com/doc/2011-01-01/";

/// A recorded DescribeAutoScalingGroups answer: the group at 0 of at most 10.
fn describe_answer(name: &str) -> ResponseTemplate {
    describe_answer_with(
        name,
        "<MinSize>0</MinSize><MaxSize>10</MaxSize><DesiredCapacity>0</DesiredCapacity>",
        "<Instances/>",
    )
}

/// A recorded DescribeAutoScalingGroups answer with the size and `Instances` elements given.
fn describe_answer_with(name: &str, sizes: &str, instances: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(describe_xml(name, sizes, instances), "text/xml")
}

/// The body of a recorded DescribeAutoScalingGroups answer.
fn describe_xml(name: &str, sizes: &str, instances: &str) -> String {
    format!(
        r#"<DescribeAutoScalingGroupsResponse xmlns="{XMLNS}">
  <DescribeAutoScalingGroupsResult><AutoScalingGroups><member>
    <AutoScalingGroupName>{name}</AutoScalingGroupName>
    {sizes}
    <DefaultCooldown>300</DefaultCooldown>
    <AvailabilityZones><member>us-east-1a</member></AvailabilityZones>
    <HealthCheckType>EC2</HealthCheckType><CreatedTime>2026-03-12T09:00:00Z</CreatedTime>
    {instances}<SuspendedProcesses/>
  </member></AutoScalingGroups></DescribeAutoScalingGroupsResult>
  <ResponseMetadata><RequestId>5f6a0d7e-describe</RequestId></ResponseMetadata>
</DescribeAutoScalingGroupsResponse>"#
    )
}

/// A recorded Auto Scaling error answer (Query protocol, HTTP 400).
fn aws_error(code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_raw(aws_error_xml(code, message), "text/xml")
}

/// The body of a recorded Auto Scaling error answer.
fn aws_error_xml(code: &str, message: &str) -> String {
    format!(
        r#"<ErrorResponse xmlns="{XMLNS}">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>
  <RequestId>5f6a0d7e-error</RequestId>
</ErrorResponse>"#
    )
}

fn update_answer() -> ResponseTemplate {
    let body = format!(
        r#"<UpdateAutoScalingGroupResponse xmlns="{XMLNS}">
  <ResponseMetadata><RequestId>5f6a0d7e-update</RequestId></ResponseMetadata>
</UpdateAutoScalingGroupResponse>"#
    );
    ResponseTemplate::new(200).set_body_raw(body, "text/xml")
}

const UPDATE: &str = "Action=UpdateAutoScalingGroup";

/// The scaler as the Lambda builds it (`sdk_config_loader()`: its retries and timeouts),
/// with the Auto Scaling API at `autoscaling`.
async fn lambda_scaler(asg: &str, prometheus: &str, autoscaling: &str) -> LambdaScaler {
    let sdk = sdk_config_loader()
        .endpoint_url(autoscaling)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await;
    let env = [
        ("PROMETHEUS_ENDPOINT", prometheus),
        ("PROMETHEUS_QUERY", QUERY),
        ("ASG_NAME", asg),
    ];
    let config = Config::parse(|name| {
        env.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    })
    .unwrap();
    build_scaler(config, http_client(), &sdk)
}

/// A recorded Auto Scaling API that describes `name` at 0 of at most 10; each test mounts its
/// own UpdateAutoScalingGroup answers.
async fn autoscaling_api(name: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(body_string_contains("Action=DescribeAutoScalingGroups"))
        .respond_with(describe_answer(name))
        .mount(&server)
        .await;
    server
}

async fn update_calls(autoscaling: &MockServer) -> usize {
    let requests = autoscaling.received_requests().await.unwrap();
    requests
        .iter()
        .filter(|request| String::from_utf8_lossy(&request.body).contains(UPDATE))
        .count()
}

#[tokio::test]
async fn case_11_a_validation_error_is_quoted_and_not_retried() {
    let prometheus = prometheus(vector(&[HIGH_LAG])).await;
    let autoscaling = autoscaling_api("asg-validation").await;
    let refusal = "Desired capacity:4 must be between the specified min size:0 and max size:3";
    Mock::given(body_string_contains(UPDATE))
        .respond_with(aws_error("ValidationError", refusal))
        .mount(&autoscaling)
        .await;
    let scaler = lambda_scaler("asg-validation", &prometheus.uri(), &autoscaling.uri()).await;

    let result = scaler.run(deadline()).await;

    assert_error(
        result,
        "AutoScalingFailed",
        &[&format!(
            "UpdateAutoScalingGroup failed: ValidationError: {refusal}"
        )],
    );
    assert_eq!(
        update_calls(&autoscaling).await,
        1,
        "a validation error is never retried"
    );
}

#[tokio::test]
async fn a_group_described_without_its_desired_capacity_is_never_written() {
    // No DesiredCapacity in the answer, which the SDK fills with 0. With MinSize 10 that reads
    // as sizes AWS never reports together; with MinSize 0 and six instances at work it passes
    // every check of the sizes, and read as is a "scale-out to 4" would take the group from
    // 6 down to 4 at peak. Both are refused from the answer's XML.
    let six_at_work: String = (0..6)
        .map(|i| {
            format!(
                "<member><InstanceId>i-{i:017}</InstanceId><LifecycleState>InService\
                 </LifecycleState><HealthStatus>Healthy</HealthStatus></member>"
            )
        })
        .collect();
    let cases = [
        (
            "<MinSize>10</MinSize><MaxSize>10</MaxSize>",
            "<Instances/>".to_owned(),
        ),
        (
            "<MinSize>0</MinSize><MaxSize>10</MaxSize>",
            format!("<Instances>{six_at_work}</Instances>"),
        ),
    ];
    for (sizes, instances) in cases {
        let prometheus = prometheus(vector(&[HIGH_LAG])).await;
        let autoscaling = MockServer::start().await;
        Mock::given(body_string_contains("Action=DescribeAutoScalingGroups"))
            .respond_with(describe_answer_with("asg-no-desired", sizes, &instances))
            .mount(&autoscaling)
            .await;
        Mock::given(body_string_contains(UPDATE))
            .respond_with(update_answer())
            .mount(&autoscaling)
            .await;
        let scaler = lambda_scaler("asg-no-desired", &prometheus.uri(), &autoscaling.uri()).await;

        let result = scaler.run(deadline()).await;

        assert_error(
            result,
            "AutoScalingFailed",
            &["described group `asg-no-desired` without DesiredCapacity; its state is unknown"],
        );
        assert_eq!(update_calls(&autoscaling).await, 0, "{sizes}: no write");
    }
}

#[tokio::test]
async fn an_update_whose_answer_never_comes_says_the_group_may_have_changed() {
    // AWS may have applied a write whose answer was lost: the error must not read as if
    // nothing happened.
    let prometheus = prometheus(vector(&[HIGH_LAG])).await;
    let autoscaling = autoscaling_api("asg-hanging").await;
    Mock::given(body_string_contains(UPDATE))
        .respond_with(update_answer().set_delay(Duration::from_secs(60)))
        .mount(&autoscaling)
        .await;
    let scaler = lambda_scaler("asg-hanging", &prometheus.uri(), &autoscaling.uri()).await;
    // As in Lambda, the SDK's own 12-second operation timeout comes before the run's.
    let (_, deadline) = deadline_in(30);

    let result = scaler.run(deadline).await;

    assert!(Instant::now() < deadline, "the run outlived its deadline");
    assert_error(
        result,
        "AutoScalingFailed",
        &[
            "UpdateAutoScalingGroup failed",
            "the group may or may not have been changed",
        ],
    );
}

#[tokio::test]
async fn a_lost_answer_then_a_refused_retry_says_the_group_may_have_changed() {
    // The first attempt's answer comes after the SDK's 5-second attempt timeout (AWS may have
    // applied it); the retry finds the scaling activity that write started, or is throttled
    // until the SDK gives up.
    for (code, calls) in [("ScalingActivityInProgress", 2), ("Throttling", 3)] {
        let prometheus = prometheus(vector(&[HIGH_LAG])).await;
        let autoscaling = autoscaling_api("asg-lost-then-refused").await;
        Mock::given(body_string_contains(UPDATE))
            .respond_with(update_answer().set_delay(Duration::from_secs(7)))
            .up_to_n_times(1)
            .mount(&autoscaling)
            .await;
        Mock::given(body_string_contains(UPDATE))
            .respond_with(aws_error(code, "refused"))
            .mount(&autoscaling)
            .await;
        let scaler = lambda_scaler(
            "asg-lost-then-refused",
            &prometheus.uri(),
            &autoscaling.uri(),
        )
        .await;

        let result = scaler.run(deadline_in(30).1).await;

        assert_error(
            result,
            "AutoScalingFailed",
            &[
                &format!(
                    "an attempt got no answer, and the SDK's retry of it was refused with \
                     {code}: refused"
                ),
                "the group may or may not have been changed",
            ],
        );
        assert_eq!(update_calls(&autoscaling).await, calls, "{code}");
    }
}

/// An Auto Scaling API that describes `name` at 0 of at most 10, answers the first
/// UpdateAutoScalingGroup with its head and part of its body and then nothing more, and every
/// later one with `ScalingActivityInProgress`.
async fn autoscaling_cut_short_then_busy(name: &str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let describe = describe_xml(
        name,
        "<MinSize>0</MinSize><MaxSize>10</MaxSize><DesiredCapacity>0</DesiredCapacity>",
        "<Instances/>",
    );
    let busy = aws_error_xml("ScalingActivityInProgress", "in progress");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let updates = Arc::new(Mutex::new(0));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (describe, busy, updates) = (describe.clone(), busy.clone(), updates.clone());
            tokio::spawn(async move {
                let mut socket = BufReader::new(socket);
                loop {
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(value) =
                            line.to_ascii_lowercase().strip_prefix("content-length:")
                        {
                            length = value.trim().parse().unwrap();
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    socket.read_exact(&mut body).await.unwrap();
                    let (status, answer) = if String::from_utf8_lossy(&body).contains(UPDATE) {
                        let first = {
                            let mut updates = updates.lock().unwrap();
                            *updates += 1;
                            *updates == 1
                        };
                        if first {
                            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\
                                        Content-Length: 500\r\n\r\n<UpdateAuto";
                            let _ = socket.get_mut().write_all(head.as_bytes()).await;
                            tokio::time::sleep(Duration::from_secs(8)).await;
                            return;
                        }
                        ("400 Bad Request", busy.clone())
                    } else {
                        ("200 OK", describe.clone())
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
                        answer.len()
                    );
                    let written = socket
                        .get_mut()
                        .write_all((head + &answer).as_bytes())
                        .await;
                    if written.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{address}")
}

#[tokio::test]
async fn an_answer_cut_short_then_a_busy_retry_says_the_group_may_have_changed() {
    // The head of the first answer came, its body never did: AWS may have applied the write.
    let prometheus = prometheus(vector(&[HIGH_LAG])).await;
    let autoscaling = autoscaling_cut_short_then_busy("asg-cut-then-busy").await;
    let scaler = lambda_scaler("asg-cut-then-busy", &prometheus.uri(), &autoscaling).await;

    let result = scaler.run(deadline_in(30).1).await;

    assert_error(
        result,
        "AutoScalingFailed",
        &[
            "an attempt got no answer, and the SDK's retry of it was refused with \
             ScalingActivityInProgress",
            "the group may or may not have been changed",
        ],
    );
}

#[tokio::test]
async fn a_busy_group_without_a_lost_answer_is_still_a_skip() {
    let prometheus = prometheus(vector(&[HIGH_LAG])).await;
    let autoscaling = autoscaling_api("asg-busy").await;
    Mock::given(body_string_contains(UPDATE))
        .respond_with(aws_error("ScalingActivityInProgress", "in progress"))
        .mount(&autoscaling)
        .await;
    let scaler = lambda_scaler("asg-busy", &prometheus.uri(), &autoscaling.uri()).await;

    let summary = scaler
        .run(deadline())
        .await
        .expect("a busy group is a skip");

    assert_eq!(summary.action, "skip", "{summary:?}");
    assert!(summary.reason.contains("the group is busy"), "{summary:?}");
}

#[tokio::test]
async fn an_auto_scaling_answer_without_an_aws_body_names_the_status_and_the_endpoint() {
    let page = || ResponseTemplate::new(502).set_body_raw("<html>Bad Gateway</html>", "text/html");
    // A proxy's page in place of DescribeAutoScalingGroups: nothing is known, nothing written.
    let prometheus = prometheus(vector(&[HIGH_LAG])).await;
    let autoscaling = MockServer::start().await;
    Mock::given(body_string_contains("Action=DescribeAutoScalingGroups"))
        .respond_with(page())
        .mount(&autoscaling)
        .await;
    let scaler = lambda_scaler("asg-proxied", &prometheus.uri(), &autoscaling.uri()).await;

    let message = assert_error(
        scaler.run(deadline()).await,
        "AutoScalingFailed",
        &[&format!(
            "DescribeAutoScalingGroups failed: {} answered HTTP 502 with a body that is not a \
             readable Auto Scaling answer",
            autoscaling.uri()
        )],
    );
    assert!(!message.contains("may or may not"), "{message}");
    assert_eq!(update_calls(&autoscaling).await, 0);

    // The same page in place of the write's answer: the proxy may have passed the write on.
    let autoscaling = autoscaling_api("asg-proxied").await;
    Mock::given(body_string_contains(UPDATE))
        .respond_with(page())
        .mount(&autoscaling)
        .await;
    let scaler = lambda_scaler("asg-proxied", &prometheus.uri(), &autoscaling.uri()).await;

    assert_error(
        scaler.run(deadline()).await,
        "AutoScalingFailed",
        &[
            "UpdateAutoScalingGroup failed",
            "answered HTTP 502 with a body that is not a readable Auto Scaling answer",
            "the group may or may not have been changed",
        ],
    );
}

#[tokio::test]
async fn case_12_throttling_once_is_absorbed_by_the_standard_retry() {
    let prometheus = prometheus(vector(&[HIGH_LAG])).await;
    let autoscaling = autoscaling_api("asg-throttled").await;
    Mock::given(body_string_contains(UPDATE))
        .respond_with(aws_error("Throttling", "Rate exceeded"))
        .up_to_n_times(1)
        .mount(&autoscaling)
        .await;
    Mock::given(body_string_contains(UPDATE))
        .respond_with(update_answer())
        .mount(&autoscaling)
        .await;
    let scaler = lambda_scaler("asg-throttled", &prometheus.uri(), &autoscaling.uri()).await;

    let summary = scaler.run(deadline()).await.unwrap();

    assert_eq!((summary.action, summary.capacity_after), ("scale_out", 4));
    assert_eq!(update_calls(&autoscaling).await, 2);
}

// ---------------------------------------------------------------------------------------------
// Webhook (cases 13 to 15)

/// A scale-out from 0 to 4 in moto with the webhook at `webhook_url`; checks the scale-out
/// stood and the run ended before its deadline.
async fn scale_out_with_webhook(webhook_url: &str) -> Summary {
    let stack = Stack::get();
    let (asg, client) = group(&stack, "faults-hook", AT_ZERO).await;
    let prometheus = prometheus(vector(&[HIGH_LAG])).await;
    let scaler = scaler(
        &stack,
        &asg,
        &prometheus.uri(),
        &[("WEBHOOK_URL", webhook_url)],
    );
    let deadline = deadline();

    let summary = scaler.run(deadline).await.unwrap();

    assert!(Instant::now() < deadline, "the run outlived its deadline");
    assert_eq!(summary.action, "scale_out", "{summary:?}");
    assert_eq!(group_sizes(&client, &asg).await.desired, 4);
    summary
}

#[tokio::test]
async fn case_13_a_failing_webhook_leaves_the_scale_out_and_logs_one_error() {
    let hook = webhook(ResponseTemplate::new(500)).await;
    let (logs, _guard) = capture_logs();

    scale_out_with_webhook(&hook.uri()).await;

    let errors: Vec<Value> = logs
        .lines()
        .into_iter()
        .filter(|line| line["level"] == "ERROR")
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].to_string().contains("HTTP 500"), "{errors:?}");
}

#[tokio::test]
async fn a_webhook_redirect_is_not_followed_and_the_token_never_leaves() {
    let elsewhere = webhook(ResponseTemplate::new(200)).await;
    let hook = webhook(ResponseTemplate::new(307).insert_header("Location", elsewhere.uri())).await;
    let (logs, _guard) = capture_logs();

    scale_out_with_webhook(&format!("{}/services/T0/B0/s3cr3t-t0ken", hook.uri())).await;

    let followed = elsewhere.received_requests().await.unwrap_or_default();
    assert!(
        followed.is_empty(),
        "the redirect was followed: {followed:?}"
    );
    assert!(logs.text().contains("HTTP 307"), "{}", logs.text());
    assert!(!logs.text().contains("s3cr3t"), "{}", logs.text());
}

#[tokio::test]
async fn case_14_a_rate_limit_longer_than_the_budget_is_not_waited_for() {
    let hook = webhook(ResponseTemplate::new(429).insert_header("Retry-After", "30")).await;

    scale_out_with_webhook(&hook.uri()).await;

    assert_eq!(
        texts(&hook).await.len(),
        1,
        "no retry that would outlive the budget"
    );
}

#[tokio::test]
async fn a_rate_limit_that_fits_the_budget_is_retried_once_only() {
    let hook = webhook(ResponseTemplate::new(429).insert_header("Retry-After", "1")).await;

    scale_out_with_webhook(&hook.uri()).await;

    assert_eq!(texts(&hook).await.len(), 2, "one retry, then give up");
}

#[tokio::test]
async fn an_absurd_retry_after_is_not_waited_for_and_does_not_crash() {
    let forever = u64::MAX.to_string();
    let hook = webhook(ResponseTemplate::new(429).insert_header("Retry-After", forever)).await;

    scale_out_with_webhook(&hook.uri()).await;

    assert_eq!(texts(&hook).await.len(), 1);
}

#[tokio::test]
async fn case_15_a_webhook_that_never_answers_ends_inside_the_budget() {
    let url = silent_server_url().await;
    let (logs, _guard) = capture_logs();

    scale_out_with_webhook(&url).await;

    assert!(
        logs.text().contains("did not answer within"),
        "{}",
        logs.text()
    );
}

// ---------------------------------------------------------------------------------------------
// Configuration and events (cases 16 to 18)

#[test]
fn case_16_invalid_configuration_names_the_variable_and_the_value() {
    type Overrides = &'static [(&'static str, &'static str)];
    let cases: &[(Overrides, &str, &str)] = &[
        (&[("ASG_NAME", "")], "ASG_NAME is not set", "ASG_NAME unset"),
        (
            &[("HIGH_LAG_THRESHOLD", "ten")],
            "HIGH_LAG_THRESHOLD is `ten`; expected a whole number",
            "a threshold in words",
        ),
        (
            &[
                ("HIGH_LAG_THRESHOLD", "1000"),
                ("LOW_LAG_THRESHOLD", "2000"),
            ],
            "LOW_LAG_THRESHOLD is `2000`; it must not exceed HIGH_LAG_THRESHOLD (1000)",
            "thresholds the wrong way round",
        ),
        (
            &[("SCALE_OUT_CAPACITY", "-1")],
            "SCALE_OUT_CAPACITY is `-1`; expected a whole number of instances",
            "a negative capacity",
        ),
    ];
    for (overrides, expected, why) in cases {
        let lookup = |name: &str| {
            let base = match name {
                "PROMETHEUS_ENDPOINT" => Some("http://prometheus:9090"),
                "PROMETHEUS_QUERY" => Some(QUERY),
                "ASG_NAME" => Some("kafka-fallback"),
                _ => None,
            };
            overrides
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| *value)
                .or(base)
                .map(str::to_owned)
        };

        let error = Config::parse(lookup).expect_err(why);
        let diagnostic = Diagnostic::from(RunError::Config(error));

        assert_eq!(diagnostic.error_type, "InvalidConfiguration", "{why}");
        assert!(
            diagnostic.error_message.contains(expected),
            "{why}: {}",
            diagnostic.error_message
        );
    }
}

#[tokio::test]
async fn case_17_any_event_starts_the_same_run() {
    let stack = Stack::get();
    let (asg, client) = group(&stack, "faults-events", AT_ZERO).await;
    let prometheus = prometheus(vector(&[HIGH_LAG])).await;
    let scaler = scaler(&stack, &asg, &prometheus.uri(), &[]);
    let fixture = |name: &str| {
        let text = std::fs::read_to_string(repo_root().join("tests/fixtures").join(name));
        text.unwrap()
    };
    let events = [
        (
            "the EventBridge scheduled event",
            fixture("eventbridge-scheduled.json"),
        ),
        (
            "an EventBridge Scheduler event",
            fixture("scheduler-event.json"),
        ),
        ("an empty object", "{}".to_owned()),
        ("an unrelated object", r#"{"anything": 1}"#.to_owned()),
        (
            "an event nested deeper than a JSON value may be",
            format!("{}0{}", r#"{"a":"#.repeat(200), "}".repeat(200)),
        ),
    ];

    let mut summaries = Vec::new();
    for (why, event) in events {
        let mut context = Context::default();
        context.deadline = deadline_in(15).0;
        // As the runtime does: the event's JSON is read into the handler's event type.
        let event: AnyEvent = serde_json::from_str(&event).unwrap_or_else(|e| panic!("{why}: {e}"));
        summaries.push((why, scaler.handle(LambdaEvent::new(event, context)).await));
        // Back to standby, so that every event meets the same state.
        reset_to_standby(&client, &asg).await;
    }

    for (why, summary) in summaries {
        let summary = summary.unwrap_or_else(|e| panic!("{why}: {e}"));
        assert_eq!(
            (
                summary.action,
                summary.capacity_before,
                summary.capacity_after
            ),
            ("scale_out", 0, 4),
            "{why}"
        );
    }
}

#[tokio::test]
async fn case_18_webhook_token_and_prometheus_password_never_reach_logs_or_errors() {
    const TOKEN: &str = "T0AAAA/B0BBBB/s3cr3t-t0ken";
    const PASSWORD: &str = "hunter2-pass";
    let stack = Stack::get();
    let (logs, _guard) = capture_logs();
    let mut errors = Vec::new();

    // A scale-out announced to the webhook, with basic auth to Prometheus.
    let (asg, _client) = group(&stack, "faults-secret", AT_ZERO).await;
    let prometheus = prometheus(vector(&[HIGH_LAG])).await;
    let hook = webhook(ResponseTemplate::new(200)).await;
    let with_password = |url: &str| url.replace("http://", &format!("http://scaler:{PASSWORD}@"));
    let hook_url = format!("{}/services/{TOKEN}", hook.uri());
    let secret_env = [("WEBHOOK_URL", hook_url.as_str())];
    let run = scaler(&stack, &asg, &with_password(&prometheus.uri()), &secret_env);
    run.run(deadline()).await.unwrap();
    let requests = prometheus.received_requests().await.unwrap();
    assert!(
        requests[0].headers.contains_key("authorization"),
        "basic auth was sent"
    );
    assert_eq!(
        hook.received_requests().await.unwrap()[0].url.path(),
        format!("/services/{TOKEN}")
    );

    // Prometheus and the webhook both unreachable; then both answering errors.
    let closed = closed_port_url().await;
    let closed_hook = format!("{closed}/services/{TOKEN}");
    let run = scaler(
        &stack,
        &asg,
        &with_password(&closed),
        &[("WEBHOOK_URL", &closed_hook)],
    );
    errors.push(run.run(deadline()).await.unwrap_err().to_string());
    let failing = prometheus_failing_with_401().await;
    let failing_hook = webhook(ResponseTemplate::new(500)).await;
    let failing_hook_url = format!("{}/services/{TOKEN}", failing_hook.uri());
    let run = scaler(
        &stack,
        &asg,
        &with_password(&failing.uri()),
        &[
            ("WEBHOOK_URL", &failing_hook_url),
            ("PROMETHEUS_TIMEOUT_SECONDS", "1"),
        ],
    );
    errors.push(run.run(deadline()).await.unwrap_err().to_string());

    // Configuration refused for another reason while both secrets are set.
    let env = [
        (
            "PROMETHEUS_ENDPOINT",
            with_password("http://prometheus:9090"),
        ),
        (
            "WEBHOOK_URL",
            format!("http://hooks.example/services/{TOKEN}"),
        ),
        ("PROMETHEUS_QUERY", QUERY.to_owned()),
        ("ASG_NAME", asg.clone()),
        ("DRY_RUN", "maybe".to_owned()),
    ];
    let config = Config::parse(|name| {
        env.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    });
    errors.push(config.unwrap_err().to_string());

    let text = format!("{}\n{}", logs.text(), errors.join("\n"));
    assert!(
        text.contains("\"level\":\"DEBUG\""),
        "debug lines were recorded"
    );
    for secret in [
        PASSWORD,
        "s3cr3t-t0ken",
        "B0BBBB",
        "c2NhbGVyOmh1bnRlcjItcGFzcw",
    ] {
        assert!(!text.contains(secret), "`{secret}` leaked:\n{text}");
    }
}

/// A Prometheus that refuses the credentials.
async fn prometheus_failing_with_401() -> MockServer {
    prometheus(
        ResponseTemplate::new(401)
            .insert_header("WWW-Authenticate", "Basic realm=\"prometheus\"")
            .set_body_raw("Unauthorized\n", "text/plain"),
    )
    .await
}
