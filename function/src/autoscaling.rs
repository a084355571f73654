//! The Auto Scaling Group: a small port the handler talks to, and its adapter over the SDK.

use std::future::Future;
use std::sync::{Arc, Mutex};

use aws_sdk_autoscaling::config::http::HttpResponse;
use aws_sdk_autoscaling::config::interceptors::{
    AfterDeserializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_autoscaling::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_autoscaling::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_autoscaling::Client;
use aws_smithy_xml::decode::{try_data, Document};
use thiserror::Error;

use crate::prometheus::error_chain;

/// What a run reads of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    pub name: String,
    pub min_size: i32,
    pub max_size: i32,
    pub desired_capacity: i32,
    /// Lifecycle state of each instance, e.g. `InService`, `Pending`.
    pub instance_states: Vec<String>,
    pub suspended_processes: Vec<String>,
    pub desired_capacity_type: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// A call to the Auto Scaling API that did not succeed.
#[derive(Debug, Error)]
pub enum AutoScalingError {
    #[error("Auto Scaling group `{0}` was not found; check ASG_NAME and the region")]
    GroupNotFound(String),
    /// The answer left out a size, or gave sizes that cannot be: the group's state is
    /// unknown, and unknown is never zero.
    #[error(
        "DescribeAutoScalingGroups described group `{group}` {detail}; its state is unknown, \
         so nothing was changed"
    )]
    UnknownState { group: String, detail: String },
    #[error("{operation} failed: {code}: {message}")]
    Api {
        operation: &'static str,
        code: String,
        message: String,
    },
    /// A write refused on the SDK's retry after an attempt whose answer was lost.
    #[error(
        "{operation} failed: an attempt got no answer, and the SDK's retry of it was refused \
         with {code}: {message}; the group may or may not have been changed"
    )]
    RetryRefused {
        operation: &'static str,
        code: String,
        message: String,
    },
    /// An answer that is not from the Auto Scaling API: no AWS error in its body.
    #[error(
        "{operation} failed: {endpoint} answered HTTP {status} with a body that is not a readable \
         Auto Scaling answer (a proxy's page, or AWS_ENDPOINT_URL naming something else){}",
        if *.maybe_applied { "; the group may or may not have been changed" } else { "" }
    )]
    Foreign {
        operation: &'static str,
        endpoint: String,
        status: u16,
        /// As for a lost answer: a proxy may have passed the write on.
        maybe_applied: bool,
    },
    /// No answer at all: no route, DNS, TLS, a timeout. In a VPC without a NAT gateway or an
    /// `autoscaling` endpoint this is what a run shows, so it names where it tried to go.
    #[error(
        "{operation} failed: could not reach the Auto Scaling API at {endpoint}: {reason}{}",
        if *.maybe_applied { "; the group may or may not have been changed" } else { "" }
    )]
    Transport {
        operation: &'static str,
        endpoint: String,
        reason: String,
        /// A write whose request may have reached AWS before the answer was lost (a timeout,
        /// a dropped connection): the error must not read as "nothing happened".
        maybe_applied: bool,
    },
}

impl AutoScalingError {
    /// True for refusals that only mean "not now": the next tick can try again.
    pub fn is_busy(&self) -> bool {
        matches!(self, AutoScalingError::Api { code, .. }
            if code == "ScalingActivityInProgress" || code == "ResourceContention")
    }
}

/// The Auto Scaling operations the scaler needs.
pub trait GroupApi {
    fn describe(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<GroupState, AutoScalingError>> + Send;

    /// Sets MinSize and DesiredCapacity together, in one call, so that a scale-in is never
    /// refused for a MinSize above the new DesiredCapacity.
    fn set_capacity(
        &self,
        name: &str,
        capacity: i32,
    ) -> impl Future<Output = Result<(), AutoScalingError>> + Send;
}

/// [`GroupApi`] over the AWS SDK. Retries, timeouts and credentials come from the SDK
/// configuration the client was built with.
#[derive(Debug, Clone)]
pub struct SdkGroupApi {
    client: Client,
    /// Where the client sends its calls, as errors name it.
    endpoint: String,
}

impl SdkGroupApi {
    /// The adapter over a client of the Region's own endpoint.
    pub fn new(client: Client) -> Self {
        let endpoint = match client.config().region() {
            Some(region) => format!("the {region} endpoint"),
            None => "no endpoint (no Region is configured: set AWS_REGION)".to_owned(),
        };
        Self { client, endpoint }
    }

    /// The adapter over a client built from `sdk`, which may name its own endpoint
    /// (`AWS_ENDPOINT_URL`).
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        let api = Self::new(Client::new(sdk));
        match sdk.endpoint_url() {
            Some(url) => Self {
                endpoint: url.to_owned(),
                ..api
            },
            None => api,
        }
    }

    fn error<E>(
        &self,
        operation: &'static str,
        error: SdkError<E, HttpResponse>,
    ) -> AutoScalingError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match &error {
            SdkError::ServiceError(service) => match service.err().code() {
                Some(code) => AutoScalingError::Api {
                    operation,
                    code: code.to_owned(),
                    message: service.err().message().unwrap_or("no message").to_owned(),
                },
                // No AWS error in the body: a proxy's page, or an endpoint that is not AWS.
                None => AutoScalingError::Foreign {
                    operation,
                    endpoint: self.endpoint.clone(),
                    status: service.raw().status().as_u16(),
                    maybe_applied: operation == UPDATE,
                },
            },
            _ => AutoScalingError::Transport {
                operation,
                endpoint: self.endpoint.clone(),
                reason: error_chain(&error),
                // Only a request that could not even be built certainly never left; past that,
                // the error cannot tell a refused connection from an answer lost on the way.
                maybe_applied: operation == UPDATE
                    && !matches!(error, SdkError::ConstructionFailure(_)),
            },
        }
    }
}

const UPDATE: &str = "UpdateAutoScalingGroup";

/// The sizes a group's description must carry.
const SIZES: [&str; 3] = ["MinSize", "MaxSize", "DesiredCapacity"];

/// Notes which sizes a DescribeAutoScalingGroups answer left out. The SDK fills a required
/// member missing from an answer with 0, so the parsed group cannot tell a group at 0 from a
/// size that was never sent; the answer's XML can.
#[derive(Debug, Clone)]
struct SentSizes {
    name: String,
    missing: Arc<Mutex<Vec<&'static str>>>,
}

impl SentSizes {
    fn of(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            missing: Arc::default(),
        }
    }

    fn missing(&self) -> Vec<&'static str> {
        self.missing.lock().expect("never poisoned").clone()
    }
}

impl Intercept for SentSizes {
    fn name(&self) -> &'static str {
        "SentSizes"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(body) = context.response().body().bytes() {
            *self.missing.lock().expect("never poisoned") = missing_sizes(body, &self.name);
        }
        Ok(())
    }
}

/// Notes, attempt by attempt, whether a call got an answer. A write the SDK retries after a
/// timeout may have been applied by the attempt whose answer was lost, whatever the retry is
/// told.
#[derive(Debug, Clone, Default)]
struct Attempts(Arc<Mutex<Vec<bool>>>);

impl Attempts {
    /// True when an attempt before the last got no answer.
    fn lost_an_answer(&self) -> bool {
        let answered = self.0.lock().expect("never poisoned");
        answered
            .split_last()
            .is_some_and(|(_, earlier)| earlier.contains(&false))
    }
}

impl Intercept for Attempts {
    fn name(&self) -> &'static str {
        "Attempts"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // An answer is one the SDK could read, as a result or as an AWS error: a timeout or a
        // body cut short may hide a write that AWS applied.
        let answered = match context.output_or_error() {
            Some(Ok(_)) => true,
            Some(Err(error)) => error.is_operation_error(),
            None => false,
        };
        self.0.lock().expect("never poisoned").push(answered);
        Ok(())
    }
}

/// The sizes that the group `name` is described without in a DescribeAutoScalingGroups
/// answer, read as XML: by element, whatever the prefixes, comments or spacing, and only from
/// that group's own element, so neither another group's sizes nor a warm pool's `MinSize`
/// stand in for its own. An answer that does not parse or does not list the group has
/// nothing to say here; the SDK's reading of it decides.
fn missing_sizes(body: &[u8], name: &str) -> Vec<&'static str> {
    let Ok(mut document) = Document::try_from(body) else {
        return Vec::new();
    };
    let Ok(mut response) = document.root_element() else {
        return Vec::new();
    };
    while let Some(mut result) = response.next_tag() {
        if !result.start_el().matches("DescribeAutoScalingGroupsResult") {
            continue;
        }
        while let Some(mut groups) = result.next_tag() {
            if !groups.start_el().matches("AutoScalingGroups") {
                continue;
            }
            while let Some(mut group) = groups.next_tag() {
                let (mut named, mut seen) = (false, [false; SIZES.len()]);
                while let Some(mut field) = group.next_tag() {
                    let size = SIZES.iter().position(|size| field.start_el().matches(size));
                    if let Some(i) = size {
                        seen[i] = true;
                    } else if field.start_el().matches("AutoScalingGroupName") {
                        named = try_data(&mut field).is_ok_and(|text| text.trim() == name);
                    }
                }
                if named {
                    return SIZES
                        .into_iter()
                        .zip(seen)
                        .filter_map(|(size, seen)| (!seen).then_some(size))
                        .collect();
                }
            }
        }
    }
    Vec::new()
}

impl GroupApi for SdkGroupApi {
    async fn describe(&self, name: &str) -> Result<GroupState, AutoScalingError> {
        let sent = SentSizes::of(name);
        let output = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .customize()
            .interceptor(sent.clone())
            .send()
            .await
            .map_err(|e| self.error("DescribeAutoScalingGroups", e))?;
        tracing::debug!(?output, "DescribeAutoScalingGroups answered");

        let group = output
            .auto_scaling_groups()
            .iter()
            .find(|group| group.auto_scaling_group_name() == Some(name))
            .ok_or_else(|| AutoScalingError::GroupNotFound(name.to_owned()))?;
        let unknown = |detail: String| AutoScalingError::UnknownState {
            group: name.to_owned(),
            detail,
        };
        let missing = sent.missing();
        if !missing.is_empty() {
            return Err(unknown(format!("without {}", missing.join(" or "))));
        }
        let size =
            |value: Option<i32>, field| value.ok_or_else(|| unknown(format!("without {field}")));
        let (min_size, max_size, desired_capacity) = (
            size(group.min_size(), "MinSize")?,
            size(group.max_size(), "MaxSize")?,
            size(group.desired_capacity(), "DesiredCapacity")?,
        );
        if !(min_size <= desired_capacity && desired_capacity <= max_size) {
            return Err(unknown(format!(
                "with MinSize {min_size}, DesiredCapacity {desired_capacity} and MaxSize \
                 {max_size}, which cannot be (a size may be missing from the answer)"
            )));
        }
        Ok(GroupState {
            name: name.to_owned(),
            min_size,
            max_size,
            desired_capacity,
            instance_states: group
                .instances()
                .iter()
                .map(|instance| {
                    instance
                        .lifecycle_state()
                        .map_or_else(|| "Unknown".to_owned(), |state| state.as_str().to_owned())
                })
                .collect(),
            suspended_processes: group
                .suspended_processes()
                .iter()
                .filter_map(|process| process.process_name().map(str::to_owned))
                .collect(),
            desired_capacity_type: group.desired_capacity_type().map(str::to_owned),
            tags: group
                .tags()
                .iter()
                .filter_map(|tag| Some((tag.key()?.to_owned(), tag.value()?.to_owned())))
                .collect(),
        })
    }

    async fn set_capacity(&self, name: &str, capacity: i32) -> Result<(), AutoScalingError> {
        let attempts = Attempts::default();
        let result = self
            .client
            .update_auto_scaling_group()
            .auto_scaling_group_name(name)
            .min_size(capacity)
            .desired_capacity(capacity)
            .customize()
            .interceptor(attempts.clone())
            .send()
            .await;
        match result.map_err(|e| self.error(UPDATE, e)) {
            // A refusal is the retry's answer; the attempt before it may have gone through, and
            // "busy" may even be the activity it started.
            Err(AutoScalingError::Api { code, message, .. }) if attempts.lost_an_answer() => {
                Err(AutoScalingError::RetryRefused {
                    operation: UPDATE,
                    code,
                    message,
                })
            }
            result => result.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sdk_autoscaling::config::http::HttpResponse;
    use aws_sdk_autoscaling::operation::describe_auto_scaling_groups as describe;
    use aws_sdk_autoscaling::operation::update_auto_scaling_group::{
        UpdateAutoScalingGroupError, UpdateAutoScalingGroupOutput,
    };
    use aws_sdk_autoscaling::types::error::ScalingActivityInProgressFault;
    use aws_sdk_autoscaling::types::{
        AutoScalingGroup, Instance, LifecycleState, SuspendedProcess,
    };
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::body::SdkBody;

    use super::*;

    const XMLNS: &str = "http://autoscaling.amazonaws.com/doc/2011-01-01/";

    fn group(name: &str) -> AutoScalingGroup {
        AutoScalingGroup::builder()
            .auto_scaling_group_name(name)
            .min_size(0)
            .max_size(10)
            .desired_capacity(2)
            .instances(
                Instance::builder()
                    .instance_id("i-1")
                    .lifecycle_state(LifecycleState::Pending)
                    .availability_zone("us-east-1a")
                    .health_status("Healthy")
                    .protected_from_scale_in(false)
                    .build(),
            )
            .suspended_processes(SuspendedProcess::builder().process_name("Launch").build())
            .build()
    }

    #[tokio::test]
    async fn describe_reads_sizes_instances_and_suspended_processes() {
        let rule = mock!(Client::describe_auto_scaling_groups).then_output(|| {
            describe::DescribeAutoScalingGroupsOutput::builder()
                .auto_scaling_groups(group("asg"))
                .build()
        });
        let api = SdkGroupApi::new(mock_client!(aws_sdk_autoscaling, [&rule]));

        let state = api.describe("asg").await.unwrap();

        assert_eq!(
            (state.min_size, state.max_size, state.desired_capacity),
            (0, 10, 2)
        );
        assert_eq!(state.instance_states, vec!["Pending"]);
        assert_eq!(state.suspended_processes, vec!["Launch"]);
    }

    #[tokio::test]
    async fn a_group_described_without_a_size_is_an_error_not_zero() {
        let sizes = |min, max, desired| {
            AutoScalingGroup::builder()
                .auto_scaling_group_name("asg")
                .set_min_size(min)
                .set_max_size(max)
                .set_desired_capacity(desired)
                .build()
        };
        for (field, described) in [
            ("DesiredCapacity", sizes(Some(0), Some(10), None)),
            ("MaxSize", sizes(Some(0), None, Some(10))),
            ("MinSize", sizes(None, Some(10), Some(10))),
        ] {
            let rule = mock!(Client::describe_auto_scaling_groups).then_output(move || {
                describe::DescribeAutoScalingGroupsOutput::builder()
                    .auto_scaling_groups(described.clone())
                    .build()
            });
            let api = SdkGroupApi::new(mock_client!(aws_sdk_autoscaling, [&rule]));

            let error = api.describe("asg").await.unwrap_err();

            assert_eq!(
                error.to_string(),
                format!(
                    "DescribeAutoScalingGroups described group `asg` without {field}; its \
                     state is unknown, so nothing was changed"
                )
            );
        }
    }

    #[tokio::test]
    async fn sizes_aws_never_reports_together_are_an_error() {
        for (min, max, desired) in [(10, 10, 0), (0, 0, 10), (3, 10, 2)] {
            let rule = mock!(Client::describe_auto_scaling_groups).then_output(move || {
                let described = AutoScalingGroup::builder()
                    .auto_scaling_group_name("asg")
                    .min_size(min)
                    .max_size(max)
                    .desired_capacity(desired)
                    .build();
                describe::DescribeAutoScalingGroupsOutput::builder()
                    .auto_scaling_groups(described)
                    .build()
            });
            let api = SdkGroupApi::new(mock_client!(aws_sdk_autoscaling, [&rule]));

            let error = api.describe("asg").await.unwrap_err();

            assert!(
                error.to_string().contains(&format!(
                    "with MinSize {min}, DesiredCapacity {desired} and MaxSize {max}, which \
                     cannot be"
                )),
                "{error}"
            );
        }
    }

    #[tokio::test]
    async fn an_empty_group_list_is_group_not_found() {
        let rule = mock!(Client::describe_auto_scaling_groups)
            .then_output(|| describe::DescribeAutoScalingGroupsOutput::builder().build());
        let api = SdkGroupApi::new(mock_client!(aws_sdk_autoscaling, [&rule]));

        let error = api.describe("missing-asg").await.unwrap_err();

        assert!(
            matches!(error, AutoScalingError::GroupNotFound(ref name) if name == "missing-asg")
        );
        assert!(error.to_string().contains("`missing-asg` was not found"));
    }

    #[tokio::test]
    async fn set_capacity_writes_min_size_and_desired_capacity_in_one_call() {
        let rule = mock!(Client::update_auto_scaling_group)
            .match_requests(|request| {
                request.auto_scaling_group_name() == Some("asg")
                    && request.min_size() == Some(4)
                    && request.desired_capacity() == Some(4)
                    && request.max_size().is_none()
            })
            .then_output(|| UpdateAutoScalingGroupOutput::builder().build());
        let api = SdkGroupApi::new(mock_client!(
            aws_sdk_autoscaling,
            RuleMode::Sequential,
            [&rule]
        ));

        api.set_capacity("asg", 4).await.unwrap();

        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_scaling_activity_in_progress_is_busy_not_fatal() {
        let rule = mock!(Client::update_auto_scaling_group).then_error(|| {
            UpdateAutoScalingGroupError::ScalingActivityInProgressFault(
                ScalingActivityInProgressFault::builder()
                    .message("Scaling activity is in progress")
                    .meta(
                        aws_sdk_autoscaling::error::ErrorMetadata::builder()
                            .code("ScalingActivityInProgress")
                            .message("Scaling activity is in progress")
                            .build(),
                    )
                    .build(),
            )
        });
        let api = SdkGroupApi::new(mock_client!(aws_sdk_autoscaling, [&rule]));

        let error = api.set_capacity("asg", 4).await.unwrap_err();

        assert!(error.is_busy(), "{error}");
        assert_eq!(
            error.to_string(),
            "UpdateAutoScalingGroup failed: ScalingActivityInProgress: Scaling activity is in \
             progress"
        );
    }

    /// A recorded Auto Scaling error answer: the Query protocol's XML, HTTP 400.
    fn recorded_error(code: &str, message: &str) -> HttpResponse {
        let body = format!(
            "<ErrorResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\">\
             <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>5f6a0d7e-0000-4000-8000-000000000000</RequestId></ErrorResponse>"
        );
        HttpResponse::new(400.try_into().unwrap(), SdkBody::from(body))
    }

    /// An adapter whose client retries exactly as the Lambda's does; only the first backoff is
    /// shortened, which changes how long a retry waits, not whether it happens.
    fn api_with_lambda_retries(rules: &[&aws_smithy_mocks::Rule]) -> SdkGroupApi {
        let retries = crate::sdk_retry_config().with_initial_backoff(Duration::from_millis(5));
        SdkGroupApi::new(mock_client!(
            aws_sdk_autoscaling,
            RuleMode::Sequential,
            rules,
            |config| config.retry_config(retries.clone())
        ))
    }

    #[tokio::test]
    async fn a_validation_error_quotes_code_and_message_and_is_not_retried() {
        let refusal = "Desired capacity:4 must be between the specified min size:0 and max size:3";
        let rule = mock!(Client::update_auto_scaling_group)
            .sequence()
            .http_response(move || recorded_error("ValidationError", refusal))
            .times(3)
            .build();
        let api = api_with_lambda_retries(&[&rule]);

        let error = api.set_capacity("asg", 4).await.unwrap_err();

        assert_eq!(
            error.to_string(),
            format!("UpdateAutoScalingGroup failed: ValidationError: {refusal}")
        );
        assert!(!error.is_busy());
        assert_eq!(rule.num_calls(), 1, "a validation error is never retried");
    }

    #[tokio::test]
    async fn throttling_once_is_absorbed_by_the_lambdas_retries() {
        let rule = mock!(Client::update_auto_scaling_group)
            .sequence()
            .http_response(|| recorded_error("Throttling", "Rate exceeded"))
            .output(|| UpdateAutoScalingGroupOutput::builder().build())
            .build();
        let api = api_with_lambda_retries(&[&rule]);

        api.set_capacity("asg", 4).await.unwrap();

        assert_eq!(rule.num_calls(), 2);
    }

    #[test]
    fn only_the_named_groups_own_size_elements_count() {
        let answer = |groups: &str| {
            format!(
                "<DescribeAutoScalingGroupsResponse xmlns=\"{XMLNS}\">\n\
                 <DescribeAutoScalingGroupsResult><AutoScalingGroups>{groups}\
                 </AutoScalingGroups></DescribeAutoScalingGroupsResult>\n\
                 </DescribeAutoScalingGroupsResponse>"
            )
        };
        let group = |name: &str, inside: &str| {
            format!("<member><AutoScalingGroupName>{name}</AutoScalingGroupName>{inside}</member>")
        };
        let sizes = "<MinSize>0</MinSize><MaxSize>10</MaxSize>";
        let all = format!("{sizes}<DesiredCapacity>6</DesiredCapacity>");
        let missing = |body: String| missing_sizes(body.as_bytes(), "g");

        assert!(missing(answer(&group("g", &all))).is_empty());
        assert!(missing(answer(&group(
            "g",
            &format!("{all}<WarmPoolConfiguration><MinSize>1</MinSize></WarmPoolConfiguration>")
        )))
        .is_empty());
        let prefixed = "<a:member xmlns:a=\"x\"><a:AutoScalingGroupName>g</a:AutoScalingGroupName>\
                        <a:MinSize>0</a:MinSize><a:MaxSize >10</a:MaxSize ><a:DesiredCapacity>6\
                        </a:DesiredCapacity></a:member>";
        assert!(missing(answer(prefixed)).is_empty(), "prefixes and spacing");

        // Whatever looks like the size without being the group's own element does not count.
        let lookalikes = [
            group(
                "g",
                &format!("{sizes}<!-- <DesiredCapacity>6</DesiredCapacity> -->"),
            ),
            group(
                "g",
                &format!("{sizes}<Note><![CDATA[<DesiredCapacity>6</DesiredCapacity>]]></Note>"),
            ),
            group(
                "g",
                &format!("{sizes}<Wrapper><DesiredCapacity>6</DesiredCapacity></Wrapper>"),
            ),
            group("other", &all) + &group("g", sizes),
            group("g", sizes) + &group("other", &all),
        ];
        for groups in lookalikes {
            assert_eq!(missing(answer(&groups)), ["DesiredCapacity"], "{groups}");
        }
        let warm_pool_only = group(
            "g",
            "<MaxSize>10</MaxSize><DesiredCapacity>6</DesiredCapacity>\
             <WarmPoolConfiguration><MinSize>1</MinSize></WarmPoolConfiguration>",
        );
        assert_eq!(missing(answer(&warm_pool_only)), ["MinSize"]);

        // Nothing to say about an answer that is not XML, or does not list the group.
        assert!(missing_sizes(b"", "g").is_empty());
        assert!(missing_sizes(b"Mock HTTP client dummy response", "g").is_empty());
        assert!(missing(answer("")).is_empty());
        assert!(missing(answer(&group("other", sizes))).is_empty());
    }
}
