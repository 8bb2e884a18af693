//! What a message can carry beyond text, and what rules do to the event's message: polls,
//! mentions and deleting, as the exact calls Whapi.Cloud receives.

use serde_json::json;

use crate::support::{Riposte, fixture};

#[tokio::test]
async fn a_group_guard_deletes_a_link_mentions_the_sender_and_asks_with_a_poll() {
    let rules = r#"
rules:
  - name: no-links
    when: {chat: group, text: 'https?://'}
    then:
      - delete: true
      - reply:
          text: "@{{ sender.phone }} links are not allowed here"
          mentions: "{{ sender.phone }}"
      - reply:
          poll:
            title: "Should links be allowed?"
            options: ["Yes", "No", "Only from admins"]
            count: 0
"#;
    let riposte = Riposte::start(rules).await;
    let mut body = fixture("message-text-group.json");
    body["messages"][0]["text"]["body"] = json!("cheap pills at https://spam.example");
    riposte.webhook(&body).await;
    let mut calls: Vec<_> = riposte
        .whapi
        .wait_for(3)
        .await
        .into_iter()
        .map(|r| (r.method, r.path, r.body))
        .collect();
    calls.sort_by(|a, b| a.1.cmp(&b.1));
    let group = "120363041234567890@g.us";
    assert_eq!(
        calls,
        [
            (
                "DELETE".to_owned(),
                "/messages/.k2LmQ8vT0pZx7Rt-hU3nB5wKq1-E8JdK1c".to_owned(),
                json!("")
            ),
            (
                "POST".into(),
                "/messages/poll".into(),
                json!({"to": group, "title": "Should links be allowed?", "options": ["Yes", "No", "Only from admins"], "count": 0})
            ),
            (
                "POST".into(),
                "/messages/text".into(),
                json!({"to": group, "body": "@4917098765432 links are not allowed here", "mentions": ["4917098765432"]})
            ),
        ]
    );
}

#[tokio::test]
async fn polls_and_mentions_that_cannot_work_are_refused_where_they_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    let cases = [
        (
            "poll: {title: Day?, options: [Mon]}",
            "a poll has 2 to 12 options, this has 1",
        ),
        (
            "poll: {title: Day?, options: [Mon, Mon]}",
            "the poll option `Mon` is there twice",
        ),
        (
            "poll: {title: Day?, options: [Mon, Tue], count: 2}",
            "`count` is 1 (one choice) or 0 (any number of choices)",
        ),
        (
            "{text: Hi, poll: {title: Day?, options: [Mon, Tue]}}",
            "remove `text`, `header` and `footer`",
        ),
        (
            "{text: Hi, mentions: [Anna]}",
            "`mentions` takes phone numbers (digits, country code first), and `Anna` is not one",
        ),
        (
            "{document: 'https://example.com/a.pdf', mentions: ['4915112345678']}",
            "`mentions` go with a text, an image or a video",
        ),
        (
            "{text: Hi, pin: weak}",
            "`pin: weak`: a message is pinned for a day, week or month, did you mean `week`?",
        ),
    ];
    for (reply, expected) in cases {
        let poll_reply = if reply.starts_with("poll") {
            format!("{{{reply}}}")
        } else {
            reply.to_owned()
        };
        std::fs::write(
            &file,
            format!("rules:\n  - name: r\n    when: {{text: hi}}\n    then:\n      - reply: {poll_reply}\n"),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_riposte"))
            .arg("check")
            .arg(dir.path())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{reply}: {said}");
        assert!(
            said.contains(expected),
            "{reply}: expected `{expected}` in {said}"
        );
        assert!(
            said.contains("rules.yaml:5:"),
            "{reply}: no location in {said}"
        );
    }
}

#[tokio::test]
async fn a_pinned_reply_is_pinned_once_whapi_says_which_message_it_was() {
    let rules = r#"
rules:
  - name: notice
    when: {keywords: [opening]}
    then:
      - reply: {text: "We are open 9-18, Monday to Saturday.", pin: week}
"#;
    let riposte = Riposte::start(rules).await;
    riposte.whapi.respond_with(|r| match r.path.as_str() {
        "/messages/text" => (
            200,
            r#"{"sent":true,"message":{"id":"Pin0001x-Notice1","status":"pending"}}"#.into(),
        ),
        _ => (200, r#"{"success":true}"#.into()),
    });
    let mut body = fixture("message-text-group.json");
    body["messages"][0]["text"]["body"] = json!("opening hours?");
    riposte.webhook(&body).await;
    let calls: Vec<_> = riposte
        .whapi
        .wait_for(2)
        .await
        .into_iter()
        .map(|r| (r.method, r.path, r.body))
        .collect();
    assert_eq!(
        calls[1],
        (
            "POST".to_owned(),
            "/messages/Pin0001x-Notice1/pin".to_owned(),
            json!({"time": "week"})
        )
    );
    assert_eq!(calls[0].2["body"], "We are open 9-18, Monday to Saturday.");
    assert!(calls[0].2.get("pin").is_none(), "{:?}", calls[0].2);
    riposte.wait_jobs_settled().await;
    assert_eq!(riposte.whapi.received().len(), 2);
}

#[tokio::test]
async fn a_member_s_name_is_learned_once_and_greets_them_from_then_on() {
    let rules = r#"
rules:
  - name: welcome
    when: {event: [group_join, group_leave]}
    then:
      - send:
          to: "{{ chat.id }}"
          text: "{{ event.kind }} @{{ sender.phone }} {{ sender.name | default('(no name yet)') }}"
          mentions: "{{ sender.phone }}"
"#;
    let riposte = Riposte::start(rules).await;
    riposte.whapi.respond_with(|r| match r.path.as_str() {
        "/contacts/4915223344556/profile" => {
            (200, r#"{"name":"Anna Schmidt","about":"hi"}"#.into())
        }
        _ => (
            200,
            r#"{"sent":true,"message":{"id":"Welc0001x-Group1"}}"#.into(),
        ),
    });
    let joined = fixture("group-participant-add.json");
    riposte.webhook(&joined).await;
    riposte.whapi.wait_for(2).await;
    riposte.wait_jobs_settled().await;
    let mut left = joined.clone();
    left["groups_participants"][0]["action"] = json!("remove");
    riposte.webhook(&left).await;
    let received = riposte.whapi.wait_for(3).await;
    let mut calls: Vec<(String, String)> = received
        .iter()
        .map(|r| {
            (
                r.path.clone(),
                r.body["body"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    calls[..2].sort();
    assert_eq!(
        calls,
        [
            ("/contacts/4915223344556/profile".to_owned(), String::new()),
            (
                "/messages/text".into(),
                "group_join @4915223344556 (no name yet)".into()
            ),
            (
                "/messages/text".into(),
                "group_leave @4915223344556 Anna Schmidt".into()
            ),
        ]
    );
    let asked = received
        .iter()
        .find(|r| r.path.ends_with("/profile"))
        .unwrap();
    assert_eq!(asked.method, "GET");
    riposte.wait_jobs_settled().await;
    // Known now: asked once only.
    assert_eq!(riposte.whapi.received().len(), 3);
}

#[test]
fn if_past_without_at_and_an_audience_of_all_false_are_refused_where_written() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "rules:\n  - name: r\n    when: {text: hi}\n    then:\n      - reply: Hi\n        if_past: skip\n",
            "rules.yaml:6:18: error: `if_past` goes with `at`",
        ),
        (
            "campaigns:\n  - name: c\n    schedule: \"0 9 * * *\"\n    audience: {all: false}\n    send: Hi\n",
            "rules.yaml:4:21: error: `all: false` adds nobody",
        ),
    ];
    for (yaml, expected) in cases {
        std::fs::write(dir.path().join("rules.yaml"), yaml).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_riposte"))
            .arg("check")
            .arg(dir.path())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{said}");
        assert!(said.contains(expected), "expected `{expected}` in {said}");
    }
}
