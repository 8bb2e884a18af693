//! Follow-ups on a virtual clock: sent when due, cancelled, replaced, held back by `unless`
//! and by opt-out, and kept across a crash.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::support::{Riposte, fixture};

const CART: &str = r#"
rules:
  - name: cart-reminder
    when:
      event: custom:cart_abandoned
    then:
      - set: {cart: "{{ data.cart_id }}"}
      - send:
          to: "{{ data.phone }}"
          text: "Your cart {{ data.cart_id }} is waiting for you, {{ data.name }}!"
        after: 1h
        key: "cart-{{ data.phone }}"
        unless:
          tags: {any: [ordered]}
  - name: order-placed
    when:
      event: custom:order_placed
    then:
      - cancel: "cart-{{ data.phone }}"
  - name: paid-elsewhere
    when:
      event: custom:paid_in_shop
    then:
      - tag: ordered
  - name: opt-out
    when: {keywords: [stop]}
    then:
      - tag: opted-out
  - name: bad-time
    when:
      event: custom:bad_time
    then:
      - send: {to: "{{ data.phone }}", text: "never"}
        at: "{{ data.when }}"
"#;

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

async fn event(riposte: &Riposte, name: &str, data: Value) {
    let (status, answer) = riposte
        .post(&format!("/events/{name}"), data.to_string())
        .await;
    assert_eq!(status, 202, "{answer}");
}

fn cart(id: &str) -> Value {
    json!({"phone": "4915112345678", "name": "Anna", "cart_id": id})
}

fn pending(jobs: &[Value]) -> usize {
    jobs.iter().filter(|j| j["status"] == "pending").count()
}

#[tokio::test]
async fn a_follow_up_is_sent_when_it_is_due() {
    let riposte = Riposte::start_at(CART, start(), &[]).await;
    event(&riposte, "cart_abandoned", cart("c-9")).await;
    riposte
        .wait_jobs("one pending follow-up", |jobs| pending(jobs) == 1)
        .await;
    riposte.advance(Duration::minutes(59));
    riposte.wait_events(1).await;
    assert!(riposte.whapi.received().is_empty(), "not before it is due");
    riposte.advance(Duration::minutes(1));
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(
        got[0].body,
        json!({"to": "4915112345678", "body": "Your cart c-9 is waiting for you, Anna!"})
    );
}

#[tokio::test]
async fn an_order_cancels_the_follow_up() {
    let riposte = Riposte::start_at(CART, start(), &[]).await;
    event(&riposte, "cart_abandoned", cart("c-9")).await;
    event(&riposte, "order_placed", json!({"phone": "4915112345678"})).await;
    let jobs = riposte
        .wait_jobs("the follow-up cancelled", |jobs| {
            jobs.iter().any(|j| j["status"] == "cancelled")
        })
        .await;
    assert_eq!(pending(&jobs), 0);
    riposte.advance(Duration::hours(2));
    // A later message proves the workers ran past the due time with nothing to send.
    event(
        &riposte,
        "bad_time",
        json!({"phone": "4915112345678", "when": "2026-03-02T11:30:00Z"}),
    )
    .await;
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].body["body"], "never",
        "only the probe was sent, not the cancelled reminder"
    );
}

#[tokio::test]
async fn scheduling_the_same_key_again_replaces_the_follow_up() {
    let riposte = Riposte::start_at(CART, start(), &[]).await;
    event(&riposte, "cart_abandoned", cart("c-1")).await;
    riposte.advance(Duration::minutes(30));
    event(&riposte, "cart_abandoned", cart("c-2")).await;
    riposte
        .wait_jobs("one replaced, one pending", |jobs| {
            pending(jobs) == 1 && jobs.iter().any(|j| j["status"] == "cancelled")
        })
        .await;
    riposte.advance(Duration::minutes(30));
    riposte.wait_events(2).await;
    assert!(
        riposte.whapi.received().is_empty(),
        "the first reminder was replaced"
    );
    riposte.advance(Duration::minutes(30));
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(
        got[0].body["body"],
        "Your cart c-2 is waiting for you, Anna!"
    );
    let jobs = riposte
        .wait_jobs("sent", |jobs| jobs.iter().any(|j| j["status"] == "done"))
        .await;
    assert_eq!(jobs.iter().filter(|j| j["action"] == "send").count(), 2);
    assert_eq!(riposte.whapi.received().len(), 1);
}

/// After the two events, moves to the reminder's time and returns why it was not sent.
async fn skip_reason_when_due(riposte: &Riposte) -> String {
    riposte.wait_events(2).await;
    riposte.advance(Duration::hours(1));
    let jobs = riposte
        .wait_jobs("skipped", |jobs| {
            jobs.iter().any(|j| j["status"] == "skipped")
        })
        .await;
    assert!(riposte.whapi.received().is_empty());
    let skipped = jobs.iter().find(|j| j["status"] == "skipped").unwrap();
    skipped["last_error"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn unless_is_checked_against_the_contact_when_due() {
    let riposte = Riposte::start_at(CART, start(), &[]).await;
    event(&riposte, "cart_abandoned", cart("c-9")).await;
    event(&riposte, "paid_in_shop", json!({"phone": "4915112345678"})).await;
    assert_eq!(
        skip_reason_when_due(&riposte).await,
        "unless: contact has `ordered`"
    );
}

#[tokio::test]
async fn a_contact_who_opted_out_gets_no_follow_up() {
    let riposte = Riposte::start_at(CART, start(), &[]).await;
    event(&riposte, "cart_abandoned", cart("c-9")).await;
    let mut stop = fixture("message-text-private.json");
    stop["messages"][0]["text"]["body"] = json!("STOP");
    riposte.webhook(&stop).await;
    assert_eq!(
        skip_reason_when_due(&riposte).await,
        "4915112345678 is tagged `opted-out`"
    );
}

#[tokio::test]
async fn an_at_that_is_not_a_time_becomes_a_dead_job_with_the_reason() {
    let riposte = Riposte::start_at(CART, start(), &[]).await;
    event(
        &riposte,
        "bad_time",
        json!({"phone": "4915112345678", "when": "tomorrow-ish"}),
    )
    .await;
    let jobs = riposte
        .wait_jobs("dead", |jobs| jobs.iter().any(|j| j["status"] == "dead"))
        .await;
    assert_eq!(
        jobs[0]["last_error"],
        "`at` rendered to `tomorrow-ish`, which is not a time (expected RFC 3339 or `YYYY-MM-DD HH:MM`)"
    );
    // The server keeps working.
    event(
        &riposte,
        "bad_time",
        json!({"phone": "4915112345678", "when": "2026-03-02 10:30"}),
    )
    .await;
    riposte.advance(Duration::minutes(30));
    assert_eq!(riposte.whapi.wait_for(1).await[0].body["body"], "never");
}
