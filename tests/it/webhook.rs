//! From a Whapi.Cloud webhook to the exact Whapi.Cloud call, one behaviour per test.

use serde_json::{Value, json};

use crate::support::{Riposte, fixture};

const RULES: &str = r#"
rules:
  - name: order-status
    when:
      text: '(?i)\bangebot\b.*(?P<question>gültig)'
      chat: private
    then:
      - reply: "Hallo {{ sender.name }}, das Angebot ist noch {{ match.question }}."
    stop: true

  - name: group-hello
    when:
      chat: group
      text: "(?i)what's up"
    then:
      - reply: {text: "Hi {{ sender.name }}, all good here!", quote: true}

  - name: confirm-appointment
    when:
      event: button_reply
      reply_id: btn_confirm
    then:
      - reply: "Confirmed: {{ text }}"

  - name: pick-size
    when:
      event: list_reply
      reply_id: size_m
    then:
      - reply: "Size {{ text }} it is."

  - name: thumbs-up
    when:
      event: reaction
      emoji: "👍"
    then:
      - react: "🙏"

  - name: invoice
    when:
      type: document
      text: '(?i)invoice (?P<number>\d{4}-\d{4})'
    then:
      - reply: "Thanks, we received invoice {{ match.number }}."

  - name: failed-delivery
    when:
      event: status
      status: failed
    then:
      - webhook:
          url: "{{ data_url }}"
          body:
            message: "{{ item.id }}"
            recipient: "{{ chat.id }}"
            errors: "{{ item.errors }}"
            note: "delivery {{ item.status }}"

  - name: welcome-member
    when:
      event: group_join
    then:
      - send:
          to: "{{ chat.id }}"
          text: "Welcome @{{ sender.phone }}!"

  - name: cart
    when:
      event: custom:cart_abandoned
    then:
      - send:
          to: "{{ data.phone }}"
          text: "You left {{ data.items | length }} items in your cart, {{ data.name }}."

  - name: echo-own
    when:
      from_me: true
      text: "never matched by incoming"
    then:
      - reply: "own"
"#;

fn rules_with_hook(url: &str) -> String {
    RULES.replace("{{ data_url }}", &format!("{url}/hooks/failed"))
}

async fn server() -> Riposte {
    // The webhook target is the stand-in too, so one recorder sees every outbound call.
    let mut riposte = Riposte::start("rules: []").await;
    std::fs::write(
        riposte.dir.path().join("rules/rules.yaml"),
        rules_with_hook(&riposte.whapi.url),
    )
    .unwrap();
    riposte.restart().await;
    riposte
}

fn assert_auth(received: &crate::support::Received) {
    assert_eq!(received.headers["authorization"], "Bearer test-token");
}

#[tokio::test]
async fn text_reply_with_capture_and_sender_name() {
    let riposte = server().await;
    riposte.webhook(&fixture("message-text-private.json")).await;
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/messages/text");
    assert_auth(&got[0]);
    assert_eq!(
        got[0].body,
        json!({"to": "4915112345678@s.whatsapp.net", "body": "Hallo Anna, das Angebot ist noch gültig."})
    );
}

#[tokio::test]
async fn group_message_is_answered_in_the_group() {
    let riposte = server().await;
    riposte.webhook(&fixture("message-text-group.json")).await;
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(got[0].path, "/messages/text");
    assert_eq!(
        got[0].body,
        json!({"to": "120363041234567890@g.us", "body": "Hi Jonas Weber, all good here!", "quoted": ".k2LmQ8vT0pZx7Rt-hU3nB5wKq1-E8JdK1c"})
    );
}

#[tokio::test]
async fn button_and_list_replies_match_ids_without_prefix() {
    let riposte = server().await;
    riposte.webhook(&fixture("message-button-reply.json")).await;
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(
        got[0].body,
        json!({"to": "4915112345678@s.whatsapp.net", "body": "Confirmed: Bestätigen"})
    );
    riposte.webhook(&fixture("message-list-reply.json")).await;
    let got = riposte.whapi.wait_for(2).await;
    assert_eq!(
        got[1].body,
        json!({"to": "4915112345678@s.whatsapp.net", "body": "Size Medium it is."})
    );
}

#[tokio::test]
async fn reaction_is_answered_with_a_reaction() {
    let riposte = server().await;
    let mut body = fixture("message-reaction.json");
    body["messages"][0]["action"]["emoji"] = json!("👍");
    riposte.webhook(&body).await;
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(got[0].method, "PUT");
    assert_eq!(got[0].path, "/messages/yqJRpp7Zk4BI-wNoTa1rVw/reaction");
    assert_eq!(got[0].body, json!({"emoji": "🙏"}));
}

#[tokio::test]
async fn document_caption_is_matched_by_text() {
    let riposte = server().await;
    riposte
        .webhook(&fixture("message-document-caption.json"))
        .await;
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(
        got[0].body,
        json!({"to": "4915112345678@s.whatsapp.net", "body": "Thanks, we received invoice 2026-0042."})
    );
}

#[tokio::test]
async fn failed_status_fires_a_templated_json_webhook() {
    let riposte = server().await;
    riposte.webhook(&fixture("status-failed.json")).await;
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/hooks/failed");
    assert!(
        got[0].headers.get("authorization").is_none(),
        "the Whapi token must not leak to other systems"
    );
    assert!(
        got[0].headers["idempotency-key"]
            .to_str()
            .unwrap()
            .starts_with("riposte-job-")
    );
    assert_eq!(
        got[0].body,
        json!({
            "message": "yqJRppZk7BI-wNoTa2rVw",
            "recipient": "4915112345678@s.whatsapp.net",
            "errors": [{"code": 131026, "message": "Message undeliverable"}],
            "note": "delivery failed"
        })
    );
}

#[tokio::test]
async fn group_join_greets_the_participant() {
    let riposte = server().await;
    riposte
        .webhook(&fixture("group-participant-add.json"))
        .await;
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(
        got[0].body,
        json!({"to": "120363041234567890@g.us", "body": "Welcome @4915223344556!"})
    );
}

#[tokio::test]
async fn custom_event_is_accepted_and_fires() {
    let riposte = server().await;
    let data = json!({"phone": "4915112345678", "name": "Anna", "items": [1, 2, 3]});
    let (status, answer) = riposte
        .post("/events/cart_abandoned", data.to_string())
        .await;
    assert_eq!(status, 202);
    assert!(
        answer["id"].as_str().is_some_and(|id| id.starts_with('e')),
        "{answer}"
    );
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(
        got[0].body,
        json!({"to": "4915112345678", "body": "You left 3 items in your cart, Anna."})
    );
}

#[tokio::test]
async fn own_messages_are_ignored() {
    let riposte = server().await;
    riposte.webhook(&fixture("message-from-me.json")).await;
    riposte.webhook(&fixture("message-from-me-api.json")).await;
    // A message after them proves the worker got past both.
    riposte.webhook(&fixture("message-text-private.json")).await;
    let events = riposte.wait_events(3).await;
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].body["body"],
        "Hallo Anna, das Angebot ist noch gültig."
    );
    for own in &events[..2] {
        let matched: Vec<&Value> = own["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["result"] == "matched")
            .collect();
        assert!(matched.is_empty(), "own message matched: {own}");
    }
}

#[tokio::test]
async fn the_same_webhook_twice_fires_once_also_across_a_restart() {
    let mut riposte = server().await;
    let body = fixture("message-text-private.json");
    riposte.webhook(&body).await;
    riposte.webhook(&body).await;
    let events = riposte.wait_events(2).await;
    assert_eq!(events[1]["result"], "duplicate");
    riposte.wait_jobs_settled().await;
    riposte.restart().await;
    riposte.webhook(&body).await;
    let events = riposte.wait_events(3).await;
    assert_eq!(events[2]["result"], "duplicate");
    assert_eq!(riposte.whapi.received().len(), 1);
}

#[tokio::test]
async fn a_batch_body_gives_one_event_per_item() {
    let riposte = server().await;
    riposte
        .webhook(&fixture("batch-multiple-messages.json"))
        .await;
    let events = riposte.wait_events(3).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["message", "message", "reaction"]);
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "Bt1aX5cV.fG7hJk2-gUdWq7Jj9k",
            "Bt2bY6dW.gH8jKl3-hVdXr8Kk0l-E8JdK1c",
            "Bt3cZ7eX.hJ9kLm4-gWdYs9Ll1z"
        ]
    );
}

#[tokio::test]
async fn malformed_bodies_are_refused_and_nothing_is_stored() {
    let riposte = server().await;
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("not json", b"hello there".to_vec(), 400),
        ("json array", b"[{\"messages\": []}]".to_vec(), 400),
        (
            "truncated",
            br#"{"messages": [{"id": "x", "type": "te"#.to_vec(),
            400,
        ),
        ("5 MB of garbage", vec![b'#'; 5 * 1024 * 1024], 413),
        ("empty", Vec::new(), 400),
        ("not utf-8", vec![0xff, 0xfe, b'{', b'}'], 400),
    ];
    for (name, body, expected) in cases {
        let (status, answer) = riposte.post("/webhook", body).await;
        assert_eq!(status, expected, "{name}: {answer}");
        if expected == 400 {
            let reason = answer["error"].as_str().unwrap();
            assert!(
                !reason.contains('\n'),
                "{name}: reason is one line: {reason}"
            );
        }
    }
    // Still serving, and the refused bodies left no trace.
    riposte.webhook(&fixture("message-text-private.json")).await;
    let events = riposte.wait_events(1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(riposte.whapi.wait_for(1).await.len(), 1);
}

#[tokio::test]
async fn unknown_families_are_accepted_and_recorded() {
    let riposte = server().await;
    riposte.webhook(&json!({"service": [{"what": "new"}], "event": {"type": "service", "event": "post"}, "channel_id": "HERON-X4K9P"})).await;
    let events = riposte.wait_events(1).await;
    assert_eq!(events[0]["kind"], "unknown");
    assert_eq!(events[0]["result"], "unknown family");
}

#[tokio::test]
async fn path_mode_webhooks_are_accepted() {
    let riposte = server().await;
    let mut body = fixture("message-text-private.json");
    body.as_object_mut().unwrap().remove("event");
    let (status, _) = riposte
        .post("/webhook/messages/post", body.to_string())
        .await;
    assert_eq!(status, 200);
    assert_eq!(riposte.whapi.wait_for(1).await[0].path, "/messages/text");
}
