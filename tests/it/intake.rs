//! Durable intake: what was answered 200 is processed, even after a crash.

use chrono::Utc;
use riposte::store::{IntakeStore, Source, SqliteStore};
use serde_json::json;

use crate::support::{HELLO_RULES as RULES, Riposte, fixture};

#[tokio::test]
async fn a_body_stored_before_a_crash_is_processed_at_the_next_start() {
    let mut riposte = Riposte::start(RULES).await;
    riposte.stop().await;
    // What a crash right after the 200 leaves behind: the body stored, nothing processed.
    {
        let store = SqliteStore::open(&riposte.db_path()).await.unwrap();
        let body = fixture("message-text-private.json").to_string();
        store
            .accept(
                Source::Webhook {
                    path: String::new(),
                    method: "POST".into(),
                },
                &body,
                Utc::now(),
            )
            .await
            .unwrap();
    }
    riposte.restart().await;
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(
        got[0].body,
        json!({"to": "4915112345678@s.whatsapp.net", "body": "Hi Anna"})
    );
}

#[tokio::test]
async fn a_job_written_before_a_crash_is_sent_at_the_next_start() {
    let mut riposte = Riposte::start(RULES).await;
    riposte.whapi.fail_next(&[(503, None); 2]);
    riposte.webhook(&fixture("message-text-private.json")).await;
    riposte.whapi.wait_for(1).await;
    riposte.restart().await;
    let got = riposte.whapi.wait_for(3).await;
    assert_eq!(
        got[2].body,
        json!({"to": "4915112345678@s.whatsapp.net", "body": "Hi Anna"})
    );
    let jobs = riposte.wait_jobs_settled().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["status"], "done");
}

#[tokio::test]
async fn tags_and_attributes_persist_across_restarts() {
    let rules = r#"
rules:
  - name: remember
    when: {keywords: [vip]}
    then:
      - tag: vip
      - set: {tier: "gold", name: "{{ sender.name }}"}
  - name: vip-hello
    when:
      keywords: [hallo]
      tags: {all: [vip]}
    then:
      - reply: "Welcome back, {{ contact.attrs.name }} ({{ contact.attrs.tier }})"
"#;
    let mut riposte = Riposte::start(rules).await;
    let mut body = fixture("message-text-private.json");
    body["messages"][0]["text"]["body"] = json!("I am VIP");
    body["messages"][0]["id"] = json!("vip-1");
    riposte.webhook(&body).await;
    riposte.wait_events(1).await;
    riposte.restart().await;
    riposte.webhook(&fixture("message-text-private.json")).await;
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(got[0].body["body"], "Welcome back, Anna (gold)");
}

#[tokio::test]
async fn events_older_than_max_event_age_are_recorded_but_fire_nothing() {
    let riposte = Riposte::start_with(RULES, |s| {
        s.max_event_age = Some(std::time::Duration::from_secs(6 * 3600))
    })
    .await;
    // The fixture's timestamp is in January 2026: a replay of old history.
    riposte.webhook(&fixture("message-text-private.json")).await;
    let mut fresh = fixture("message-text-private.json");
    fresh["messages"][0]["id"] = json!("fresh-1");
    fresh["messages"][0]["timestamp"] = json!(Utc::now().timestamp());
    riposte.webhook(&fresh).await;
    let events = riposte.wait_events(2).await;
    assert_eq!(events[0]["result"], "older than max-event-age");
    assert_eq!(events[1]["result"], "processed");
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(got.len(), 1);
}
