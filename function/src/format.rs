//! Message formats: one notification, shaped the way each chat tool shows it.
//!
//! `WEBHOOK_FORMAT=auto` (the default) picks the format from the webhook URL's host:
//!
//! | host                                                            | format    |
//! |-----------------------------------------------------------------|-----------|
//! | `hooks.slack.com`, `hooks.slack-gov.com`, path `/services/...`   | `slack`   |
//! | `*.logic.azure.com`, `*.powerplatform.com` (Teams Workflows)    | `teams`   |
//! | `discord.com`, `discordapp.com` and their subdomains            | `discord` |
//! | `chat.googleapis.com` (Google Chat refuses unknown fields)      | `text`    |
//! | anything else                                                   | `json`    |
//!
//! Every format carries the same facts: the group, the lag and the threshold it crossed, the
//! capacity before and after, the series that drove the figure, and the reason.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use url::Url;

use crate::config::ConfigError;
use crate::notify::{Kind, Notification};

/// Discord refuses a `content` longer than this many characters.
pub const DISCORD_CONTENT_LIMIT: usize = 2000;
/// Slack's limits on a header's text and on one section field.
const SLACK_HEADER_LIMIT: usize = 150;
const SLACK_FIELD_LIMIT: usize = 2000;
const SLACK_SECTION_LIMIT: usize = 3000;

/// The body a webhook is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// Block Kit blocks with a plain `text` fallback (Slack incoming webhooks).
    Slack,
    /// A `message` with one Adaptive Card attachment (Teams Workflows, Power Automate).
    Teams,
    /// `content` within Discord's 2,000 characters, mentions disabled.
    Discord,
    /// `{"text": ...}` plus the run summary's fields, for custom receivers.
    Json,
    /// `{"text": ...}` alone (Google Chat, Mattermost, Rocket.Chat).
    Text,
}

impl WebhookFormat {
    /// The name used in `WEBHOOK_FORMAT`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Slack => "slack",
            WebhookFormat::Teams => "teams",
            WebhookFormat::Discord => "discord",
            WebhookFormat::Json => "json",
            WebhookFormat::Text => "text",
        }
    }

    /// Reads `WEBHOOK_FORMAT`; `auto` or unset picks the format from the webhook URL.
    pub fn parse(
        get: &impl Fn(&str) -> Option<String>,
        webhook_url: Option<&SecretString>,
    ) -> Result<WebhookFormat, ConfigError> {
        let Some(raw) = get("WEBHOOK_FORMAT") else {
            return Ok(Self::detect_url(webhook_url));
        };
        let all = [
            WebhookFormat::Slack,
            WebhookFormat::Teams,
            WebhookFormat::Discord,
            WebhookFormat::Json,
            WebhookFormat::Text,
        ];
        let name = raw.trim().to_ascii_lowercase();
        if name == "auto" {
            return Ok(Self::detect_url(webhook_url));
        }
        all.into_iter()
            .find(|format| format.as_str() == name)
            .ok_or_else(|| ConfigError::Invalid {
                variable: "WEBHOOK_FORMAT",
                value: raw,
                expected: "expected `auto`, `slack`, `teams`, `discord`, `json` or `text`".into(),
            })
    }

    fn detect_url(webhook_url: Option<&SecretString>) -> WebhookFormat {
        webhook_url.map_or(WebhookFormat::Json, |url| Self::detect(url.expose_secret()))
    }

    /// The format the webhook at `url` expects, from its host.
    pub fn detect(url: &str) -> WebhookFormat {
        let Ok(url) = Url::parse(url) else {
            return WebhookFormat::Json;
        };
        let host = url.host_str().unwrap_or_default();
        let under = |domain: &str| {
            host == domain
                || host
                    .strip_suffix(domain)
                    .is_some_and(|rest| rest.ends_with('.'))
        };
        if (host == "hooks.slack.com" || host == "hooks.slack-gov.com")
            && url.path().starts_with("/services/")
        {
            WebhookFormat::Slack
        } else if under("logic.azure.com") || under("powerplatform.com") {
            WebhookFormat::Teams
        } else if under("discord.com") || under("discordapp.com") {
            WebhookFormat::Discord
        } else if host == "chat.googleapis.com" {
            WebhookFormat::Text
        } else {
            WebhookFormat::Json
        }
    }

    /// The JSON body that announces `notification` in this format.
    pub fn body(self, notification: &Notification) -> Value {
        match self {
            WebhookFormat::Slack => slack(notification),
            WebhookFormat::Teams => teams(notification),
            WebhookFormat::Discord => json!({
                "content": clip(&notification.text(), DISCORD_CONTENT_LIMIT),
                "allowed_mentions": { "parse": [] },
            }),
            WebhookFormat::Json => summary(notification),
            WebhookFormat::Text => json!({ "text": notification.text() }),
        }
    }
}

/// The headline, e.g. `Scaled out kafka-fallback`.
fn title(n: &Notification) -> String {
    let group = &n.group;
    match (n.kind, n.dry_run) {
        (Kind::ScaleOut, false) => format!("Scaled out {group}"),
        (Kind::ScaleOut, true) => format!("[dry run] Would scale out {group}"),
        (Kind::ScaleIn, false) => format!("Scaled in {group}: back to standby"),
        (Kind::ScaleIn, true) => format!("[dry run] Would scale in {group} to standby"),
        (Kind::Skip, _) => format!("Left {group} unchanged (skip)"),
        (Kind::Failure, _) => format!("Run failed for {group}"),
    }
}

/// The labelled facts every card shows.
fn facts(n: &Notification) -> Vec<(&'static str, String)> {
    let mut facts = vec![("Group", n.group.clone())];
    if n.kind == Kind::Failure {
        return facts;
    }
    facts.push((
        "Lag",
        n.lag.map_or_else(|| "unknown".into(), |l| l.to_string()),
    ));
    if let Some(phrase) = n.threshold_phrase() {
        facts.push(("Threshold", phrase));
    }
    let capacity = match (n.capacity_before, n.capacity_after) {
        (Some(before), Some(after)) => format!("{before} → {after}"),
        (Some(before), None) => before.to_string(),
        _ => "unknown".into(),
    };
    facts.push(("Capacity", capacity));
    if let Some(driver) = &n.driver {
        facts.push(("Series", driver.clone()));
    }
    facts
}

/// The sentences under the facts: what a return means, and why the run did what it did.
fn detail(n: &Notification) -> String {
    let reason = n.reason.trim_end_matches('.');
    let reason = match n.kind {
        Kind::Failure => format!("Error: {reason}."),
        _ => format!("Reason: {reason}."),
    };
    if n.kind == Kind::ScaleIn && !n.dry_run {
        format!("The group is back to standby and Karpenter carries the load again.\n{reason}")
    } else {
        reason
    }
}

fn slack(n: &Notification) -> Value {
    let fields: Vec<Value> = facts(n)
        .into_iter()
        .map(|(label, value)| {
            let text = format!("*{label}*\n{}", slack_escape(&value));
            json!({ "type": "mrkdwn", "text": clip(&text, SLACK_FIELD_LIMIT) })
        })
        .collect();
    json!({
        "text": n.text(),
        "blocks": [
            {
                "type": "header",
                "text": { "type": "plain_text", "text": clip(&title(n), SLACK_HEADER_LIMIT) },
            },
            { "type": "section", "fields": fields },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": clip(&slack_escape(&detail(n)), SLACK_SECTION_LIMIT),
                },
            },
        ],
    })
}

/// Slack reads `&`, `<` and `>` as markup in mrkdwn text.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn teams(n: &Notification) -> Value {
    let facts: Vec<Value> = facts(n)
        .into_iter()
        .map(|(label, value)| json!({ "title": label, "value": value }))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {
                        "type": "TextBlock",
                        "text": title(n),
                        "size": "Medium",
                        "weight": "Bolder",
                        "wrap": true,
                    },
                    { "type": "FactSet", "facts": facts },
                    { "type": "TextBlock", "text": detail(n), "wrap": true },
                ],
            },
        }],
    })
}

/// The text plus the fields of the run summary, as the handler returns them: in a dry run
/// `capacity_after` is the capacity the group kept, and `target` what it would have got.
fn summary(n: &Notification) -> Value {
    let action = match n.kind {
        Kind::ScaleOut => "scale_out",
        Kind::ScaleIn => "scale_in",
        Kind::Skip => "skip",
        Kind::Failure => "error",
    };
    let capacity_after = if n.dry_run {
        n.capacity_before
    } else {
        n.capacity_after
    };
    json!({
        "text": n.text(),
        "action": action,
        "group": n.group,
        "lag": n.lag,
        "capacity_before": n.capacity_before,
        "capacity_after": capacity_after,
        "target": n.capacity_after,
        "reason": n.reason,
        "dry_run": n.dry_run,
        "driver": n.driver,
        "high_lag_threshold": n.thresholds.high,
        "low_lag_threshold": n.thresholds.low,
    })
}

/// At most `limit` characters, the last one an ellipsis when the text was cut.
fn clip(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(limit - 1).collect();
    clipped.push('…');
    clipped
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::Thresholds;

    fn notification(kind: Kind) -> Notification {
        Notification {
            kind,
            group: "kafka-fallback".into(),
            lag: Some(12_000_000),
            thresholds: Thresholds {
                high: 10_000_000,
                low: 100_000,
                scale_out_capacity: 4,
                scale_in_capacity: 0,
            },
            capacity_before: Some(0),
            capacity_after: Some(4),
            driver: Some(r#"{consumergroup="cg-a", topic="orders"}"#.into()),
            reason: "lag 12000000 > 10000000 with 0 instance(s)".into(),
            dry_run: false,
        }
    }

    fn parse_with(pairs: &[(&str, &str)]) -> Result<WebhookFormat, ConfigError> {
        let env: HashMap<&str, &str> = pairs.iter().copied().collect();
        let url = env.get("WEBHOOK_URL").map(|url| SecretString::from(*url));
        WebhookFormat::parse(&|name| env.get(name).map(|v| (*v).to_owned()), url.as_ref())
    }

    #[test]
    fn auto_detection_follows_the_host_table() {
        let rows: &[(&str, WebhookFormat, &str)] = &[
            (
                "https://hooks.slack.com/services/T0/B0/abc",
                WebhookFormat::Slack,
                "Slack incoming webhook",
            ),
            (
                "https://hooks.slack-gov.com/services/T0/B0/abc",
                WebhookFormat::Slack,
                "GovSlack incoming webhook",
            ),
            (
                "https://hooks.slack.com/triggers/T0/123/abc",
                WebhookFormat::Json,
                "a Slack workflow trigger takes its own variables, not Block Kit",
            ),
            (
                "https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/\
                 paths/invoke?api-version=2016-06-01&sig=x",
                WebhookFormat::Teams,
                "Teams Workflows on Logic Apps",
            ),
            (
                "https://default0a1b.2c.environment.api.powerplatform.com:443/powerautomate/\
                 automations/direct/workflows/abc/triggers/manual/paths/invoke",
                WebhookFormat::Teams,
                "Power Automate environment URL",
            ),
            (
                "https://make.powerplatform.com/hooks/abc",
                WebhookFormat::Teams,
                "any powerplatform.com host",
            ),
            (
                "https://discord.com/api/webhooks/123/abc",
                WebhookFormat::Discord,
                "Discord",
            ),
            (
                "https://discordapp.com/api/webhooks/123/abc",
                WebhookFormat::Discord,
                "Discord's old domain",
            ),
            (
                "https://ptb.discord.com/api/webhooks/123/abc",
                WebhookFormat::Discord,
                "Discord's public test build",
            ),
            (
                "https://chat.googleapis.com/v1/spaces/AAA/messages?key=k&token=t",
                WebhookFormat::Text,
                "Google Chat refuses fields it does not know",
            ),
            (
                "https://mattermost.example.com/hooks/abc",
                WebhookFormat::Json,
                "anything else",
            ),
            (
                "https://notdiscord.com/api/webhooks/1/a",
                WebhookFormat::Json,
                "a host that only ends like a known one",
            ),
            (
                "https://discord.com.evil.example/api/webhooks/1/a",
                WebhookFormat::Json,
                "a known host used as a subdomain",
            ),
            (
                "https://HOOKS.SLACK.COM/services/T0/B0/abc",
                WebhookFormat::Slack,
                "hosts compare without case",
            ),
        ];
        for (url, expected, why) in rows {
            assert_eq!(WebhookFormat::detect(url), *expected, "{why}: {url}");
        }
    }

    #[test]
    fn webhook_format_defaults_to_auto_and_an_explicit_one_wins() {
        let slack = "https://hooks.slack.com/services/T0/B0/abc";
        assert_eq!(
            parse_with(&[("WEBHOOK_URL", slack)]).unwrap(),
            WebhookFormat::Slack
        );
        assert_eq!(
            parse_with(&[("WEBHOOK_URL", slack), ("WEBHOOK_FORMAT", "Auto")]).unwrap(),
            WebhookFormat::Slack
        );
        for name in ["slack", "teams", "discord", "json", "text"] {
            let format = parse_with(&[("WEBHOOK_URL", slack), ("WEBHOOK_FORMAT", name)]);
            assert_eq!(format.unwrap().as_str(), name);
        }
        assert_eq!(parse_with(&[]).unwrap(), WebhookFormat::Json);
    }

    #[test]
    fn an_unknown_webhook_format_names_the_valid_ones() {
        let text = parse_with(&[("WEBHOOK_FORMAT", "msteams")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            text,
            "WEBHOOK_FORMAT is `msteams`; expected `auto`, `slack`, `teams`, `discord`, `json` \
             or `text`"
        );
    }

    #[test]
    fn slack_gets_block_kit_with_a_plain_text_fallback() {
        let n = notification(Kind::ScaleOut);

        let body = WebhookFormat::Slack.body(&n);

        assert_eq!(
            body,
            json!({
                "text": n.text(),
                "blocks": [
                    {
                        "type": "header",
                        "text": { "type": "plain_text", "text": "Scaled out kafka-fallback" },
                    },
                    {
                        "type": "section",
                        "fields": [
                            { "type": "mrkdwn", "text": "*Group*\nkafka-fallback" },
                            { "type": "mrkdwn", "text": "*Lag*\n12000000" },
                            {
                                "type": "mrkdwn",
                                "text": "*Threshold*\nabove the high threshold 10000000",
                            },
                            { "type": "mrkdwn", "text": "*Capacity*\n0 → 4" },
                            {
                                "type": "mrkdwn",
                                "text": "*Series*\n{consumergroup=\"cg-a\", topic=\"orders\"}",
                            },
                        ],
                    },
                    {
                        "type": "section",
                        "text": {
                            "type": "mrkdwn",
                            "text": "Reason: lag 12000000 &gt; 10000000 with 0 instance(s).",
                        },
                    },
                ],
            })
        );
    }

    #[test]
    fn teams_gets_one_adaptive_card_attachment() {
        let mut n = notification(Kind::ScaleIn);
        n.lag = Some(40_000);
        n.capacity_before = Some(4);
        n.capacity_after = Some(0);
        n.reason = "lag 40000 < 100000 with 4 instance(s)".into();

        let body = WebhookFormat::Teams.body(&n);

        assert_eq!(
            body,
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            {
                                "type": "TextBlock",
                                "text": "Scaled in kafka-fallback: back to standby",
                                "size": "Medium",
                                "weight": "Bolder",
                                "wrap": true,
                            },
                            {
                                "type": "FactSet",
                                "facts": [
                                    { "title": "Group", "value": "kafka-fallback" },
                                    { "title": "Lag", "value": "40000" },
                                    {
                                        "title": "Threshold",
                                        "value": "below the low threshold 100000",
                                    },
                                    { "title": "Capacity", "value": "4 → 0" },
                                    {
                                        "title": "Series",
                                        "value": "{consumergroup=\"cg-a\", topic=\"orders\"}",
                                    },
                                ],
                            },
                            {
                                "type": "TextBlock",
                                "text": "The group is back to standby and Karpenter carries the \
                                         load again.\nReason: lag 40000 < 100000 with 4 \
                                         instance(s).",
                                "wrap": true,
                            },
                        ],
                    },
                }],
            })
        );
    }

    #[test]
    fn discord_gets_the_text_as_content_with_mentions_disabled() {
        let n = notification(Kind::ScaleOut);
        assert_eq!(
            WebhookFormat::Discord.body(&n),
            json!({ "content": n.text(), "allowed_mentions": { "parse": [] } })
        );
    }

    #[test]
    fn discord_content_never_exceeds_two_thousand_characters() {
        let mut n = notification(Kind::Skip);
        n.reason = "é".repeat(5000);

        let body = WebhookFormat::Discord.body(&n);

        let content = body["content"].as_str().unwrap();
        assert_eq!(content.chars().count(), DISCORD_CONTENT_LIMIT);
        assert!(content.ends_with('…'));
        assert!(content.starts_with("kafka-lag-scaler left `kafka-fallback` unchanged"));
    }

    #[test]
    fn json_gets_the_text_and_the_summary_fields() {
        let n = notification(Kind::ScaleOut);
        assert_eq!(
            WebhookFormat::Json.body(&n),
            json!({
                "text": n.text(),
                "action": "scale_out",
                "group": "kafka-fallback",
                "lag": 12_000_000,
                "capacity_before": 0,
                "capacity_after": 4,
                "target": 4,
                "reason": "lag 12000000 > 10000000 with 0 instance(s)",
                "dry_run": false,
                "driver": "{consumergroup=\"cg-a\", topic=\"orders\"}",
                "high_lag_threshold": 10_000_000,
                "low_lag_threshold": 100_000,
            })
        );
    }

    #[test]
    fn json_reports_a_dry_run_like_the_summary_does() {
        let mut n = notification(Kind::ScaleOut);
        n.dry_run = true;

        let body = WebhookFormat::Json.body(&n);

        assert_eq!(
            (&body["capacity_after"], &body["target"], &body["dry_run"]),
            (&json!(0), &json!(4), &json!(true))
        );
    }

    #[test]
    fn text_is_the_original_body() {
        let n = notification(Kind::ScaleOut);
        assert_eq!(WebhookFormat::Text.body(&n), json!({ "text": n.text() }));
    }

    #[test]
    fn a_failure_card_shows_the_group_and_the_error() {
        let failure = Notification {
            lag: None,
            capacity_before: None,
            capacity_after: None,
            driver: None,
            reason: "could not reach Prometheus at http://prom/api/v1/query".into(),
            ..notification(Kind::Failure)
        };

        let slack = WebhookFormat::Slack.body(&failure);
        let json = WebhookFormat::Json.body(&failure);

        assert_eq!(
            slack["blocks"][0]["text"]["text"],
            "Run failed for kafka-fallback"
        );
        assert_eq!(
            slack["blocks"][1]["fields"],
            json!([{ "type": "mrkdwn", "text": "*Group*\nkafka-fallback" }])
        );
        assert_eq!(
            slack["blocks"][2]["text"]["text"],
            "Error: could not reach Prometheus at http://prom/api/v1/query."
        );
        assert_eq!(json["action"], "error");
        assert_eq!(json["lag"], Value::Null);
    }

    #[test]
    fn slack_text_is_escaped_and_clipped_to_its_limits() {
        let mut n = notification(Kind::Skip);
        n.group = "g".repeat(200);
        n.driver = Some(format!("{{topic=\"<{}>\"}}", "x".repeat(3000)));

        let body = WebhookFormat::Slack.body(&n);

        let header = body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(header.chars().count(), 150);
        let series = body["blocks"][1]["fields"][4]["text"].as_str().unwrap();
        assert!(series.starts_with("*Series*\n{topic=\"&lt;xxx"), "{series}");
        assert_eq!(series.chars().count(), 2000);
    }
}
