//! Several WhatsApp numbers in one engine: each event is routed to its channel, each call goes
//! out with its channel's token, and per-chat state, pacing and breakers are per channel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use riposte::channels::{Channels, Tokens};
use riposte::config::SourceFile;
use riposte::serve::Settings;
use serde_json::{Value, json};

use crate::support::{Riposte, fixture};

const CHANNELS: &str = "channels:
  sales:   {id: SALES-1, token_env: WHAPI_TOKEN_SALES}
  support: {id: HELP-2, token_env: WHAPI_TOKEN_SUPPORT}
";

fn channels() -> Channels {
    Channels::parse(&SourceFile {
        path: "channels.yaml".into(),
        text: CHANNELS.into(),
        root: None,
    })
    .unwrap()
}

fn two_numbers(settings: &mut Settings) {
    settings.channels = Arc::new(channels());
    settings.tokens = Tokens(vec![
        ("sales".into(), Some("tok-sales".into())),
        ("support".into(), Some("tok-support".into())),
    ]);
}

/// A text message from Anna on a channel, with its own message id.
fn message(channel_id: &str, id: &str, text: &str) -> Value {
    let mut body = fixture("message-text-private.json");
    body["channel_id"] = json!(channel_id);
    body["messages"][0]["id"] = json!(id);
    body["messages"][0]["text"]["body"] = json!(text);
    body
}

fn token(received: &crate::support::Received) -> &str {
    received
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

const ECHO: &str = r#"
rules:
  - name: hello
    when: {text: "(?i)hallo"}
    then:
      - reply: "Hi from {{ channel.name }} ({{ channel.id }})"
"#;

#[tokio::test]
async fn a_reply_goes_out_with_the_token_of_the_channel_the_event_came_in_on() {
    let riposte = Riposte::start_with(ECHO, two_numbers).await;
    riposte.webhook(&message("SALES-1", "m-1", "Hallo")).await;
    let first = riposte.whapi.wait_for(1).await;
    riposte.webhook(&message("HELP-2", "m-2", "Hallo")).await;
    let both = riposte.whapi.wait_for(2).await;
    assert_eq!(token(&first[0]), "Bearer tok-sales");
    assert_eq!(first[0].body["body"], "Hi from sales (SALES-1)");
    assert_eq!(token(&both[1]), "Bearer tok-support");
    assert_eq!(both[1].body["body"], "Hi from support (HELP-2)");
}

#[tokio::test]
async fn the_same_message_id_on_two_channels_is_two_events() {
    let riposte = Riposte::start_with(ECHO, two_numbers).await;
    riposte
        .webhook(&message("SALES-1", "same-1", "Hallo"))
        .await;
    riposte.webhook(&message("HELP-2", "same-1", "Hallo")).await;
    // A retry of the first is still a duplicate.
    riposte
        .webhook(&message("SALES-1", "same-1", "Hallo"))
        .await;
    let events = riposte.wait_events(3).await;
    let results: Vec<&Value> = events.iter().map(|e| &e["result"]).collect();
    assert_eq!(results, ["processed", "processed", "duplicate"]);
    let received = riposte.whapi.wait_for(2).await;
    let mut tokens: Vec<&str> = received.iter().map(token).collect();
    tokens.sort_unstable();
    assert_eq!(tokens, ["Bearer tok-sales", "Bearer tok-support"]);
}

#[tokio::test]
async fn an_event_from_an_unknown_channel_is_recorded_counted_and_fires_nothing() {
    let riposte = Riposte::start_with(ECHO, two_numbers).await;
    let unknown = "riposte_webhooks_unknown_channel_total";
    let before = riposte.metric(unknown).await;
    riposte
        .webhook(&message("STRANGER-9", "m-9", "Hallo"))
        .await;
    riposte.webhook(&message("HELP-2", "m-10", "Hallo")).await;
    let events = riposte.wait_events(2).await;
    assert_eq!(events[0]["result"], "unknown channel", "{events:?}");
    assert_eq!(events[0]["channel"], "STRANGER-9");
    let received = riposte.whapi.wait_for(1).await;
    assert_eq!(received.len(), 1);
    assert_eq!(token(&received[0]), "Bearer tok-support");
    // Counters are the process's, shared with the other tests running beside this one.
    assert!(riposte.metric(unknown).await > before);
}

#[tokio::test]
async fn a_webhook_url_may_name_the_channel() {
    let riposte = Riposte::start_with(ECHO, two_numbers).await;
    let mut body = message("", "m-1", "Hallo");
    body.as_object_mut().unwrap().remove("channel_id");
    let (status, answer) = riposte
        .post("/webhook/support/messages/post", body.to_string())
        .await;
    assert_eq!(status, 200, "{answer}");
    let received = riposte.whapi.wait_for(1).await;
    assert_eq!(token(&received[0]), "Bearer tok-support");
    // A URL that names one channel and a body of another is not taken on trust.
    let (status, _) = riposte
        .post(
            "/webhook/support",
            message("SALES-1", "m-2", "Hallo").to_string(),
        )
        .await;
    assert_eq!(status, 200);
    let events = riposte.wait_events(2).await;
    assert_eq!(events[1]["result"], "unknown channel", "{events:?}");
}

const ONCE: &str = r#"
rules:
  - name: welcome
    when: {text: "(?i)hallo"}
    once_per: 24h
    then:
      - reply: "Welcome to {{ channel.name }}"
  - name: only-support
    when: {text: "(?i)help", channel: support}
    then:
      - reply: "Support here"
"#;

#[tokio::test]
async fn what_is_kept_per_chat_is_kept_per_channel_and_chat() {
    let riposte = Riposte::start_with(ONCE, two_numbers).await;
    for (channel, id) in [("SALES-1", "a"), ("SALES-1", "b"), ("HELP-2", "c")] {
        riposte.webhook(&message(channel, id, "Hallo")).await;
    }
    riposte.webhook(&message("SALES-1", "d", "help")).await;
    riposte.webhook(&message("HELP-2", "e", "help")).await;
    riposte.wait_events(5).await;
    let received = riposte.whapi.wait_for(3).await;
    let mut seen: Vec<(String, &str)> = received
        .iter()
        .map(|r| (r.body["body"].as_str().unwrap().to_owned(), token(r)))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("Support here".to_owned(), "Bearer tok-support"),
            ("Welcome to sales".to_owned(), "Bearer tok-sales"),
            ("Welcome to support".to_owned(), "Bearer tok-support"),
        ]
    );
    let jobs = riposte.wait_jobs_settled().await;
    let lanes: Vec<&str> = jobs
        .iter()
        .filter_map(|j| j["work"]["call"]["lane"].as_str())
        .collect();
    assert!(lanes.contains(&"sales/chat:4915112345678"), "{lanes:?}");
    assert!(lanes.contains(&"support/chat:4915112345678"), "{lanes:?}");
}

const CAMPAIGN: &str = r#"
rules:
  - name: noop
    when: {text: "never-matches-anything"}
    stop: true
campaigns:
  - name: tips
    schedule: "0 9 * * MON"
    channel: support
    rate: 600/min
    audience: {numbers: ["4915111111111", "4915122222222"]}
    send: "Tip of the week"
"#;

#[tokio::test]
async fn a_campaign_on_support_sends_with_support_s_token_only() {
    let riposte = Riposte::start_with(CAMPAIGN, two_numbers).await;
    let sends = "riposte_channel_sends_total{channel=\"support\"}";
    let before = riposte.metric(sends).await;
    let (status, answer) = riposte.post("/admin/campaigns/tips/run", "").await;
    assert_eq!(status, 202, "{answer}");
    let received = riposte.whapi.wait_for(2).await;
    riposte.wait_jobs_settled().await;
    let received_after = riposte.whapi.received();
    assert_eq!(received_after.len(), 2, "{received:?}");
    assert!(
        received_after
            .iter()
            .all(|r| token(r) == "Bearer tok-support"),
        "{received_after:?}"
    );
    let support = riposte.get("/admin/jobs?channel=support").await;
    assert_eq!(support["jobs"].as_array().unwrap().len(), 2, "{support}");
    let sales = riposte.get("/admin/jobs?channel=sales").await;
    assert_eq!(sales["jobs"].as_array().unwrap().len(), 0, "{sales}");
    let (status, _) = riposte
        .send("GET", "/admin/jobs?channel=sails", &[], "")
        .await;
    assert_eq!(status, 400);
    assert!(riposte.metric(sends).await >= before + 2);
}

fn fragile_sales(settings: &mut Settings) {
    two_numbers(settings);
    settings.breaker.threshold = 2;
    settings.breaker.cooldown = Duration::from_secs(30);
}

#[tokio::test]
async fn a_breaker_opened_on_one_channel_does_not_delay_the_other() {
    let riposte = Riposte::start_with(ECHO, fragile_sales).await;
    riposte.whapi.respond_with(|r| {
        if token(r) == "Bearer tok-sales" {
            (503, r#"{"error":"down"}"#.into())
        } else {
            (200, r#"{"sent":true}"#.into())
        }
    });
    let opened = "riposte_channel_breaker_opened_total{channel=\"sales\"}";
    let before = riposte.metric(opened).await;
    riposte.webhook(&message("SALES-1", "s-1", "Hallo")).await;
    riposte.webhook(&message("SALES-1", "s-2", "Hallo")).await;
    let deadline = Instant::now() + crate::support::DEADLINE;
    while riposte.metric(opened).await == before {
        assert!(Instant::now() < deadline, "the sales breaker never opened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = riposte.whapi.received().len();
    let opened = Instant::now();
    riposte.webhook(&message("HELP-2", "h-1", "Hallo")).await;
    let received = riposte.whapi.wait_for(before + 1).await;
    let answered = received
        .iter()
        .skip(before)
        .find(|r| token(r) == "Bearer tok-support")
        .expect("the support reply went out");
    // Long before the sales breaker's 30 s would let anything through.
    assert!(answered.at.duration_since(opened) < Duration::from_secs(10));
    // The sales replies wait for the breaker, without spending their attempts.
    let jobs = riposte
        .wait_jobs("the sales replies to wait", |jobs| {
            jobs.iter()
                .filter(|j| j["work"]["call"]["channel"] == "sales")
                .all(|j| j["status"] == "pending")
        })
        .await;
    assert!(jobs.iter().all(|j| j["status"] != "dead"), "{jobs:?}");
}

const STATUS: &str = r#"
rules:
  - name: alert
    when: {event: channel_status, channel: support, status: QR}
    then:
      - send: {to: "4930111", text: "Support's phone needs a QR scan", channel: sales}
"#;

#[tokio::test]
async fn channel_health_is_recorded_shown_and_can_alert_on_another_channel() {
    let riposte = Riposte::start_with(STATUS, two_numbers).await;
    let mut health = fixture("channel-health-qr.json");
    health["channel_id"] = json!("HELP-2");
    riposte.webhook(&health).await;
    let received = riposte.whapi.wait_for(1).await;
    assert_eq!(token(&received[0]), "Bearer tok-sales");
    assert_eq!(received[0].body["body"], "Support's phone needs a QR scan");
    let ready = riposte.get("/readyz").await;
    let support = ready["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "support")
        .cloned()
        .unwrap();
    assert_eq!(support["status"], "qr", "{ready}");
    assert_eq!(support["id"], "HELP-2");
    let admin = riposte.get("/admin/channels").await;
    assert_eq!(admin["channels"][0]["name"], "sales");
    assert_eq!(admin["channels"][0]["status"], "unknown");
    assert_eq!(admin["channels"][1]["status"], "qr");
    assert!(!admin.to_string().contains("tok-"), "{admin}");
}

#[tokio::test]
async fn one_number_without_a_channels_file_keeps_today_s_keys() {
    let riposte = Riposte::start(ECHO).await;
    riposte.webhook(&message("ANY-ID", "m-1", "Hallo")).await;
    let received = riposte.whapi.wait_for(1).await;
    assert_eq!(token(&received[0]), "Bearer test-token");
    assert_eq!(received[0].body["body"], "Hi from default (ANY-ID)");
    let jobs = riposte.wait_jobs_settled().await;
    assert_eq!(jobs[0]["work"]["call"]["lane"], "chat:4915112345678");
    assert!(jobs[0]["work"]["call"].get("channel").is_none(), "{jobs:?}");
}
