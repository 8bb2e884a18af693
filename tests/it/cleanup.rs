//! Tidying a group: a campaign whose audience is the group's members as Whapi.Cloud lists
//! them, less admins and less who posted or joined within the window as Riposte saw it, and
//! whose `then` messages and removes each of them.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::support::{Riposte, fixture};

const GROUP: &str = "120363041234567890@g.us";

const RULES: &str = r#"
rules: []
campaigns:
  - name: tidy-up
    schedule: "0 10 1 1 *"
    audience:
      group_members: {group: "120363041234567890@g.us", inactive_for: 30d}
    then:
      - send: {to: "{{ contact.phone }}", text: "After 30 quiet days you left the group; write JOIN to come back."}
      - group_remove: {group: "120363041234567890@g.us", participants: "{{ contact.phone }}"}
    rate: 60/s
  - name: tidy-other
    schedule: "0 10 1 1 *"
    audience:
      group_members: {group: "120363099999999999@g.us", inactive_for: 30d}
    then:
      - group_remove: {group: "120363099999999999@g.us", participants: "{{ contact.phone }}"}
"#;

fn said_in_group(from: &str, id: &str) -> Value {
    let mut body = fixture("message-text-group.json");
    body["messages"][0]["id"] = json!(id);
    body["messages"][0]["from"] = json!(from);
    body
}

#[tokio::test]
async fn inactive_members_are_told_and_removed_admins_and_the_active_stay() {
    let start: DateTime<Utc> = "2026-03-02T08:00:00Z".parse().unwrap();
    let riposte = Riposte::start_at(RULES, start, &[]).await;
    let (admin, talker, newcomer, quiet) = (
        "4915100000001",
        "4915100000002",
        "4915100000003",
        "4915100000004",
    );
    riposte.whapi.respond_with(move |r| {
        if r.path == format!("/groups/{GROUP}") {
            let participants = json!([
                {"id": admin, "rank": "creator"},
                {"id": talker, "rank": "member"},
                {"id": newcomer, "rank": "member"},
                {"id": quiet, "rank": "member"},
            ]);
            (
                200,
                json!({"id": GROUP, "name": "Runners", "participants": participants}).to_string(),
            )
        } else {
            (
                200,
                r#"{"sent":true,"message":{"id":"Tidy0001x-Group1"}}"#.into(),
            )
        }
    });
    // Riposte watches the group from its first event on.
    riposte
        .webhook(&said_in_group(quiet, "Old00001a-Quiet001"))
        .await;
    riposte.wait_events(1).await;
    riposte.advance(Duration::days(20));
    riposte
        .webhook(&said_in_group(talker, "New00001a-Talk0001"))
        .await;
    let mut joined = fixture("group-participant-add.json");
    joined["groups_participants"][0]["participants"] = json!([newcomer]);
    riposte.webhook(&joined).await;
    riposte.wait_events(3).await;
    riposte.advance(Duration::days(20));

    let (code, answer) = riposte.post("/admin/campaigns/tidy-up/run", "").await;
    assert_eq!(code, 202, "{answer}");
    riposte.advance(Duration::seconds(1));
    // The member's name is asked of WhatsApp alongside: wait for the removal itself.
    let deadline = std::time::Instant::now() + crate::support::DEADLINE;
    let received = loop {
        let received = riposte.whapi.received();
        if received.iter().any(|r| r.method == "DELETE") || std::time::Instant::now() > deadline {
            break received;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let acted: Vec<(String, String, Value)> = received
        .iter()
        .filter(|r| r.path != format!("/groups/{GROUP}"))
        .filter(|r| !r.path.ends_with("/profile"))
        .map(|r| (r.method.clone(), r.path.clone(), r.body.clone()))
        .collect();
    assert_eq!(
        acted,
        [
            (
                "POST".to_owned(),
                "/messages/text".to_owned(),
                json!({"to": quiet, "body": "After 30 quiet days you left the group; write JOIN to come back."})
            ),
            (
                "DELETE".into(),
                format!("/groups/{GROUP}/participants"),
                json!({"participants": [quiet]})
            ),
        ]
    );
    riposte.wait_jobs_settled().await;
}

#[tokio::test]
async fn a_group_riposte_has_not_watched_for_the_whole_window_is_left_alone() {
    let start: DateTime<Utc> = "2026-03-02T08:00:00Z".parse().unwrap();
    let riposte = Riposte::start_at(RULES, start, &[]).await;
    riposte.whapi.respond_with(|_| {
        (
            200,
            json!({"participants": [{"id": "4915100000009", "rank": "member"}]}).to_string(),
        )
    });
    refused(
        &riposte,
        "Riposte has seen nothing of group 120363099999999999@g.us yet",
    )
    .await;
    // Seen from now on: still not for the whole 30 days.
    let mut body = fixture("message-text-group.json");
    body["messages"][0]["chat_id"] = json!("120363099999999999@g.us");
    riposte.webhook(&body).await;
    riposte.wait_events(1).await;
    riposte.advance(Duration::days(10));
    refused(&riposte, "is known from 2026-04-01T08:00:00Z on").await;
    let removals = riposte
        .whapi
        .received()
        .iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(removals, 0);
}

/// A run of `tidy-other` now is refused (422), saying `why`.
async fn refused(riposte: &Riposte, why: &str) {
    let (code, answer) = riposte.post("/admin/campaigns/tidy-other/run", "").await;
    assert_eq!(code, 422, "{answer}");
    let said = answer["error"].as_str().unwrap_or_default();
    assert!(said.contains(why), "{answer}");
}
