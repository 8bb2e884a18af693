//! What happened to each message Riposte sent: the id Whapi.Cloud gives it is kept, its
//! statuses move it on, a rule on a status knows which rule or campaign sent it, a vote in a
//! poll Riposte sent is read by option name, and a campaign run reports its funnel.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::support::{Riposte, fixture};

/// Answers every send with a fresh message id in Whapi.Cloud's form: `Sent0001x-Riposte1`, ...
fn numbering(riposte: &Riposte) {
    let n = Arc::new(AtomicU32::new(0));
    riposte.whapi.respond_with(move |_| {
        let n = n.fetch_add(1, Ordering::SeqCst) + 1;
        (
            200,
            json!({"sent": true, "message": {"id": format!("Sent{n:04}x-Riposte1"), "status": "pending"}})
                .to_string(),
        )
    });
}

fn status(id: &str, status: &str, to: &str) -> Value {
    json!({
        "statuses": [{"id": id, "code": 3, "status": status, "recipient_id": format!("{to}@s.whatsapp.net"), "timestamp": "1767261701"}],
        "event": {"type": "statuses", "event": "post"},
        "channel_id": "HERON-X4K9P"
    })
}

fn message(from: &str, id: &str, text: &str) -> Value {
    let mut body = fixture("message-text-private.json");
    body["messages"][0]["id"] = json!(id);
    body["messages"][0]["from"] = json!(from);
    body["messages"][0]["chat_id"] = json!(format!("{from}@s.whatsapp.net"));
    body["messages"][0]["text"]["body"] = json!(text);
    body
}

const RULES: &str = r#"
rules:
  - name: coupon
    when: {keywords: [coupon]}
    then:
      - reply: "Your coupon: SAVE10"
  - name: poll
    when: {keywords: [poll]}
    then:
      - reply:
          poll: {title: "Open on Sunday?", options: ["Yes", "No"]}
  - name: coupon-failed
    when:
      event: status
      status: failed
      if: "sent is defined and sent.rule == 'coupon'"
    then:
      - send: {to: "4917000000000", text: "The coupon to {{ sent.chat }} failed: {{ sent.text }}"}
  - name: voted-yes
    when: {event: poll_vote, option: "yes"}
    then:
      - reply: "Thanks! You voted {{ vote.options | join(', ') }} on “{{ sent.text }}”."
"#;

#[tokio::test]
async fn a_failed_coupon_alerts_someone_and_a_vote_is_read_by_its_option() {
    let riposte = Riposte::start(RULES).await;
    numbering(&riposte);
    let anna = "4915112345678";
    riposte
        .webhook(&message(anna, "Msg00001a-Anna0001", "coupon please"))
        .await;
    riposte.whapi.wait_for(1).await;
    riposte.wait_jobs_settled().await;
    // Whapi.Cloud reports the coupon failed: the rule on statuses knows which rule sent it.
    riposte
        .webhook(&status("Sent0001x-Riposte1", "failed", anna))
        .await;
    let received = riposte.whapi.wait_for(2).await;
    assert_eq!(
        received[1].body,
        json!({"to": "4917000000000", "body": "The coupon to 4915112345678 failed: Your coupon: SAVE10"})
    );
    // A status of a message Riposte did not send (or of the alert itself) fires nothing.
    riposte
        .webhook(&status("Other001x-Elsewhere", "failed", anna))
        .await;

    riposte
        .webhook(&message(anna, "Msg00002a-Anna0002", "poll"))
        .await;
    let received = riposte.whapi.wait_for(3).await;
    assert_eq!(received[2].path, "/messages/poll");
    // The vote names the option by the SHA-256 of its text, as WhatsApp does
    // (`printf %s Yes | openssl dgst -sha256 -binary | base64`).
    let mut vote = fixture("message-text-private.json");
    vote["messages"][0] = json!({
        "id": "Vote0001a-Anna0003", "from_me": false, "type": "action",
        "chat_id": format!("{anna}@s.whatsapp.net"), "from": anna, "timestamp": 1767261800,
        "action": {"type": "vote", "target": "Sent0003x-Riposte1",
                   "votes": ["haOas0XWcv+MqbnGh2863Kz0XufB4tvSQI/TOL1V4H4="]}
    });
    riposte.webhook(&vote).await;
    let received = riposte.whapi.wait_for(4).await;
    assert_eq!(
        received[3].body,
        json!({"to": "4915112345678@s.whatsapp.net", "body": "Thanks! You voted Yes on “Open on Sunday?”."})
    );
    riposte.wait_jobs_settled().await;
    assert_eq!(riposte.whapi.received().len(), 4);
}

const CAMPAIGN: &str = r#"
rules: []
campaigns:
  - name: sunday-opening
    schedule: "0 10 1 1 *"
    audience: {file: people.csv}
    send: "We are open this Sunday!"
    rate: 60/s
"#;

#[tokio::test]
async fn a_campaign_run_reports_delivered_read_replied_and_failed() {
    let start: DateTime<Utc> = "2026-03-02T08:00:00Z".parse().unwrap();
    let people = "phone\n4915111111111\n4915122222222\n4915133333333\n";
    let riposte = Riposte::start_at(CAMPAIGN, start, &[("people.csv", people)]).await;
    numbering(&riposte);
    let (code, answer) = riposte
        .post("/admin/campaigns/sunday-opening/run", "")
        .await;
    assert_eq!(code, 202, "{answer}");
    riposte.advance(Duration::seconds(1));
    let sent = riposte.whapi.wait_for(3).await;
    riposte.wait_jobs_settled().await;
    let id_to = |to: &str| {
        let n = sent.iter().position(|r| r.body["to"] == to).unwrap() + 1;
        format!("Sent{n:04}x-Riposte1")
    };
    let (lena, jonas, mia) = ("4915111111111", "4915122222222", "4915133333333");
    for (id, state, to) in [
        (id_to(lena), "delivered", lena),
        (id_to(lena), "read", lena),
        (id_to(jonas), "delivered", jonas),
        (id_to(mia), "failed", mia),
    ] {
        riposte.webhook(&status(&id, state, to)).await;
    }
    riposte.advance(Duration::minutes(30));
    riposte
        .webhook(&message(lena, "Msg00003a-Lena0001", "See you there!"))
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let funnel = loop {
        let campaigns = riposte.get("/admin/campaigns").await;
        let run = campaigns["campaigns"][0]["runs"][0].clone();
        let funnel = ["planned", "sent", "delivered", "read", "replied", "failed"]
            .map(|k| run[k].as_u64().unwrap_or(u64::MAX));
        if funnel == [3, 3, 2, 1, 1, 1] || std::time::Instant::now() > deadline {
            break funnel;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        funnel,
        [3, 3, 2, 1, 1, 1],
        "planned, sent, delivered, read, replied, failed"
    );
}
