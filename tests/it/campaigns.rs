//! Campaigns on a virtual clock: a tagged audience without the contact who opted out, a CSV
//! audience with attributes in the message, and the run's record.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::support::{Riposte, fixture};

const RULES: &str = r#"
rules:
  - name: subscribe
    when:
      event: custom:subscribe
    then:
      - tag: deals
      - set: {first_name: "{{ data.name }}"}
  - name: opt-out
    when: {keywords: [stop]}
    then:
      - tag: opted-out

campaigns:
  - name: weekly-deals
    schedule: "0 9 * * MON"
    timezone: Europe/Berlin
    audience: {tags: {any: [deals]}}
    send: "Hi {{ contact.attrs.first_name | default('there') }}, this week's deals are in!"
    rate: 600/min
  - name: vip-invite
    schedule: "0 10 1 1 *"
    audience: {file: vip.csv}
    send: {text: "Hallo {{ contact.attrs.first_name }} aus {{ contact.attrs.city }}, Sie sind eingeladen."}
    rate: 60/s
"#;

const VIP: &str = "phone,first_name,city\n+49 151 1111111,Lena,Köln\n4915122222222,Jonas,Berlin\nnot-a-number,Nobody,Nowhere\n";

fn monday_before_nine_in_berlin() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T08:59:50+01:00")
        .unwrap()
        .with_timezone(&Utc)
}

async fn subscribe(riposte: &Riposte, phone: &str, name: &str) {
    let (status, _) = riposte
        .post(
            "/events/subscribe",
            json!({"phone": phone, "name": name}).to_string(),
        )
        .await;
    assert_eq!(status, 202);
}

fn bodies(riposte: &Riposte) -> Vec<Value> {
    let mut got: Vec<Value> = riposte
        .whapi
        .received()
        .into_iter()
        .map(|r| r.body)
        .collect();
    got.sort_by_key(|b| b["to"].as_str().unwrap_or_default().to_owned());
    got
}

#[tokio::test]
async fn a_scheduled_run_reaches_the_tagged_audience_but_not_who_opted_out() {
    let riposte =
        Riposte::start_at(RULES, monday_before_nine_in_berlin(), &[("vip.csv", VIP)]).await;
    subscribe(&riposte, "4915112345678", "Anna").await;
    subscribe(&riposte, "4917098765432", "Jonas").await;
    subscribe(&riposte, "4915223344556", "Lena").await;
    let mut stop = fixture("message-text-private.json");
    stop["messages"][0]["from"] = json!("4915223344556");
    stop["messages"][0]["chat_id"] = json!("4915223344556@s.whatsapp.net");
    stop["messages"][0]["text"]["body"] = json!("stop");
    riposte.webhook(&stop).await;
    riposte.wait_events(4).await;

    riposte.advance(Duration::seconds(15)); // 09:00:05 in Berlin
    riposte
        .wait_jobs("the run's jobs", |jobs| {
            jobs.iter().filter(|j| j["kind"] == "campaign").count() == 2
        })
        .await;
    riposte.advance(Duration::seconds(1)); // past the second recipient's paced slot
    riposte.whapi.wait_for(2).await;
    assert_eq!(
        bodies(&riposte),
        [
            json!({"to": "4915112345678", "body": "Hi Anna, this week's deals are in!"}),
            json!({"to": "4917098765432", "body": "Hi Jonas, this week's deals are in!"}),
        ]
    );
    riposte
        .wait_jobs("both sent", |jobs| {
            jobs.iter().filter(|j| j["status"] == "done").count() == 2
        })
        .await;
    let campaigns = riposte.get("/admin/campaigns").await;
    let deals = &campaigns["campaigns"][0];
    assert_eq!(deals["name"], "weekly-deals");
    assert_eq!(deals["next"][0], "2026-03-09T09:00:00+01:00");
    let run = &deals["runs"][0];
    assert_eq!(
        (
            run["trigger"].as_str(),
            run["planned"].as_u64(),
            run["skipped"].as_u64(),
            run["sent"].as_u64()
        ),
        (Some("schedule"), Some(2), Some(1), Some(2))
    );
}

#[tokio::test]
async fn a_csv_audience_fills_the_template_from_its_columns() {
    let riposte =
        Riposte::start_at(RULES, monday_before_nine_in_berlin(), &[("vip.csv", VIP)]).await;
    let (status, answer) = riposte.post("/admin/campaigns/vip-invite/run", "").await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        (answer["planned"].as_u64(), answer["skipped"].as_u64()),
        (Some(2), Some(1)),
        "{answer}"
    );
    riposte.advance(Duration::seconds(1));
    riposte.whapi.wait_for(2).await;
    assert_eq!(
        bodies(&riposte),
        [
            json!({"to": "491511111111", "body": "Hallo Lena aus Köln, Sie sind eingeladen."}),
            json!({"to": "4915122222222", "body": "Hallo Jonas aus Berlin, Sie sind eingeladen."}),
        ]
    );
    let (status, _) = riposte.post("/admin/campaigns/no-such/run", "").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_paused_campaign_lets_its_fire_times_pass_until_it_is_resumed() {
    let rules = r#"
campaigns:
  - name: weekly-deals
    schedule: "0 9 * * MON"
    timezone: Europe/Berlin
    audience: {numbers: ["4915112345678"]}
    send: "This week's deals are in!"
  - name: weekly-news
    schedule: "0 9 * * MON"
    timezone: Europe/Berlin
    audience: {numbers: ["4917098765432"]}
    send: "This week's news."
"#;
    let riposte = Riposte::start_at(rules, monday_before_nine_in_berlin(), &[]).await;
    let (status, answer) = riposte
        .post("/admin/campaigns/weekly-deals/pause", "")
        .await;
    assert_eq!(status, 200, "{answer}");
    let listed = riposte.get("/admin/campaigns").await;
    assert!(listed["campaigns"][0]["paused_at"].is_string(), "{listed}");

    // 09:00:05 in Berlin: the news (checked in the same pass) runs, the paused deals do not.
    riposte.advance(Duration::seconds(15));
    let sent = riposte.whapi.wait_for(1).await;
    assert_eq!(sent[0].body["body"], "This week's news.");
    let runs = riposte.get("/admin/campaigns").await;
    assert_eq!(runs["campaigns"][0]["runs"], json!([]), "{runs}");

    // Resumed, it does not send the run it missed, only the next one.
    let (status, _) = riposte
        .post("/admin/campaigns/weekly-deals/resume", "")
        .await;
    assert_eq!(status, 200);
    riposte.advance(Duration::days(7));
    riposte
        .wait_jobs("next week's two runs", |jobs| {
            jobs.iter().filter(|j| j["kind"] == "campaign").count() == 3
        })
        .await;
    let campaigns = riposte.get("/admin/campaigns").await;
    let deals = &campaigns["campaigns"][0];
    assert!(deals["paused_at"].is_null());
    let runs = deals["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{deals}");
    assert_eq!(runs[0]["fire_at"], "2026-03-09T08:00:00Z");
}
