//! Per-chat memory: `once_per` and a human handoff that mutes the bot until resumed.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::support::{Riposte, fixture};

const RULES: &str = r##"
calendars:
  - name: office
    timezone: Europe/Berlin
    open:
      - {days: Mon-Fri, between: "09:00-18:00"}

rules:
  - name: opt-out
    when: {keywords: [stop]}
    then:
      - tag: opted-out
      - reply: "Unsubscribed."
    during_handoff: true
    stop: true
  - name: human
    when: {keywords: [agent, human]}
    then:
      - handoff:
          for: 24h
          resume_on: "#bot"
          notify: {to: "120363041234567890@g.us", text: "{{ sender.name }} wants a human in {{ chat.id }}"}
      - reply: "A colleague will answer you here."
    stop: true
  - name: closed
    when:
      outside_hours: {calendar: office}
    then:
      - reply: "We're closed; we open again {{ next_open('office') }}."
    once_per: 12h
    stop: true
  - name: bot-answer
    then:
      - reply: "Bot answer to: {{ text }}"
"##;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn message(n: u32, text: &str, from_me: bool) -> Value {
    let mut body = fixture("message-text-private.json");
    body["messages"][0]["id"] = json!(format!("msg-{n}"));
    body["messages"][0]["text"]["body"] = json!(text);
    body["messages"][0]["from_me"] = json!(from_me);
    body
}

fn texts(riposte: &Riposte) -> Vec<String> {
    riposte
        .whapi
        .received()
        .iter()
        .map(|r| r.body["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn the_closed_notice_goes_out_once_per_twelve_hours() {
    // Saturday night in Berlin: outside the office hours.
    let riposte = Riposte::start_at(RULES, at("2026-03-07T22:00:00+01:00"), &[]).await;
    riposte.webhook(&message(1, "hello?", false)).await;
    riposte.webhook(&message(2, "anyone there?", false)).await;
    let events = riposte.wait_events(2).await;
    let held = events[1]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "closed")
        .unwrap();
    assert_eq!(held["result"], "held");
    assert!(
        held["reason"]
            .as_str()
            .unwrap()
            .starts_with("once_per: fired in this chat at 2026-03-07T21:00:00Z"),
        "{held}"
    );
    riposte.advance(Duration::hours(12));
    riposte.webhook(&message(3, "still closed?", false)).await;
    riposte.whapi.wait_for(2).await;
    assert_eq!(
        texts(&riposte),
        [
            "We're closed; we open again Monday 09:00.",
            "We're closed; we open again Monday 09:00."
        ]
    );
}

#[tokio::test]
async fn a_handoff_mutes_the_bot_until_resumed() {
    // Tuesday 10:00 in Berlin: open, so the bot answers.
    let riposte = Riposte::start_at(RULES, at("2026-03-03T10:00:00+01:00"), &[]).await;
    riposte.webhook(&message(1, "I want a human", false)).await;
    let got = riposte.whapi.wait_for(2).await;
    assert_eq!(
        got[0].body,
        json!({"to": "120363041234567890@g.us", "body": "Anna wants a human in 4915112345678@s.whatsapp.net"})
    );
    assert_eq!(got[1].body["body"], "A colleague will answer you here.");
    let chats = riposte.get("/admin/chats").await;
    assert_eq!(chats["handoffs"][0]["chat"], "4915112345678@s.whatsapp.net");
    assert_eq!(chats["handoffs"][0]["until"], "2026-03-04T09:00:00Z");

    riposte.webhook(&message(2, "hello?", false)).await;
    riposte.webhook(&message(3, "stop", false)).await; // opt-out still works during a handoff
    let events = riposte.wait_events(3).await;
    let muted = events[1]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "bot-answer")
        .unwrap();
    assert_eq!(muted["result"], "held", "{muted}");
    assert_eq!(
        riposte.whapi.wait_for(3).await[2].body["body"],
        "Unsubscribed."
    );

    let (status, _) = riposte
        .post("/admin/chats/4915112345678@s.whatsapp.net/resume", "")
        .await;
    assert_eq!(status, 200);
    riposte.webhook(&message(4, "and now?", false)).await;
    assert_eq!(
        riposte.whapi.wait_for(4).await[3].body["body"],
        "Bot answer to: and now?"
    );
    assert_eq!(riposte.get("/admin/chats").await["handoffs"], json!([]));
}

#[tokio::test]
async fn the_agent_hands_the_chat_back_with_the_resume_word() {
    let riposte = Riposte::start_at(RULES, at("2026-03-03T10:00:00+01:00"), &[]).await;
    riposte.webhook(&message(1, "agent please", false)).await;
    riposte.whapi.wait_for(2).await;
    riposte
        .webhook(&message(2, "Thanks, all sorted. #BOT", true))
        .await;
    riposte
        .webhook(&message(3, "one more question", false))
        .await;
    assert_eq!(
        riposte.whapi.wait_for(3).await[2].body["body"],
        "Bot answer to: one more question"
    );
}
