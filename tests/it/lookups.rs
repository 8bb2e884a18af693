//! `lookup:` against a real server: the question goes to another system (here the stand-in,
//! under `/shop`), and the rule's later actions answer with what it said, after retries and a
//! restart too; when it finally fails, `on_error` runs instead.

use serde_json::json;

use crate::support::{Riposte, fixture};

const RULES: &str = r#"
rules:
  - name: order-status
    when: {text: '(?i)order\s*(?P<order>\d+)'}
    then:
      - lookup:
          as: order
          url: "STAND_IN/shop/orders/{{ match.order }}"
          headers: {X-Shop-Key: "k-123"}
          on_error:
            - reply: "We cannot see order {{ match.order }} right now; a person will answer."
      - reply: "Order {{ match.order }}: {{ lookup.order.status }} with {{ lookup.order.carrier }}."
"#;

/// Riposte on the rules above, calling the stand-in for the shop; the shop knows order 1234.
async fn start() -> Riposte {
    let mut riposte = Riposte::start("rules: []").await;
    let rules = RULES.replace("STAND_IN", &riposte.whapi.url);
    std::fs::write(riposte.dir.path().join("rules/rules.yaml"), rules).unwrap();
    riposte.restart().await;
    riposte.whapi.respond_with(|r| match r.path.as_str() {
        "/shop/orders/1234" => (200, r#"{"status":"in transit","carrier":"DHL"}"#.into()),
        p if p.starts_with("/shop/") => (404, r#"{"error":"no such order"}"#.into()),
        _ => (200, r#"{"sent":true,"message":{"id":"out-1"}}"#.into()),
    });
    riposte
}

fn asking(text: &str) -> serde_json::Value {
    let mut body = fixture("message-text-private.json");
    body["messages"][0]["text"]["body"] = json!(text);
    body
}

#[tokio::test]
async fn the_answer_after_a_failure_and_a_restart_is_what_the_reply_says() {
    let mut riposte = start().await;
    // The shop is down for the first try and asks to be tried again in a second.
    riposte.whapi.fail_next(&[(503, Some(1))]);
    riposte.webhook(&asking("Where is order 1234?")).await;
    riposte.whapi.wait_for(1).await;
    // Stopped while the lookup waits for its retry: the job, and where the rule goes on,
    // are in the database.
    riposte.restart().await;
    let received = riposte.whapi.wait_for(3).await;
    let calls: Vec<_> = received
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("GET", "/shop/orders/1234"),
            ("GET", "/shop/orders/1234"),
            ("POST", "/messages/text")
        ]
    );
    assert_eq!(received[0].headers["x-shop-key"], "k-123");
    // The retry is the same question: the same idempotency key.
    assert_eq!(
        received[0].headers["idempotency-key"],
        received[1].headers["idempotency-key"]
    );
    assert_eq!(
        received[2].body,
        json!({"to": "4915112345678@s.whatsapp.net", "body": "Order 1234: in transit with DHL."})
    );
    riposte.wait_jobs_settled().await;
    assert_eq!(riposte.whapi.received().len(), 3, "one reply, once");
}

#[tokio::test]
async fn a_lookup_that_finally_fails_runs_its_on_error_instead_of_the_rest() {
    let riposte = start().await;
    riposte.webhook(&asking("order 999 please")).await;
    let received = riposte.whapi.wait_for(2).await;
    assert_eq!(received[0].path, "/shop/orders/999");
    assert_eq!(received[1].path, "/messages/text");
    assert_eq!(
        received[1].body["body"],
        "We cannot see order 999 right now; a person will answer."
    );
    let jobs = riposte.wait_jobs_settled().await;
    let lookup = jobs
        .iter()
        .find(|j| j["action"] == "lookup")
        .expect("the lookup's job");
    assert_eq!(lookup["status"], "dead", "{lookup}");
    let error = lookup["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("lookup `order` failed, its on_error ran: HTTP 404"),
        "{error}"
    );
    assert_eq!(riposte.whapi.received().len(), 2);
}
