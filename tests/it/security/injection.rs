//! Values from outside never change where a call goes: ids in Whapi.Cloud paths and template
//! values in webhook URLs are encoded or refused.

use serde_json::{Value, json};

use crate::support::{Riposte, fixture};

/// The error of each action of the first rule of an event record.
fn action_errors(event: &Value) -> Vec<&str> {
    event["rules"][0]["actions"]
        .as_array()
        .map(|actions| {
            actions
                .iter()
                .map(|a| a["error"].as_str().unwrap_or("no error"))
                .collect()
        })
        .unwrap_or_default()
}

/// Riposte on `rules`, where `STAND_IN` stands for the stand-in's URL (known once it runs).
async fn start_calling_the_stand_in(rules: &str) -> Riposte {
    let mut riposte = Riposte::start("rules: []").await;
    let rules = rules.replace("STAND_IN", &riposte.whapi.url);
    std::fs::write(riposte.dir.path().join("rules/rules.yaml"), rules).unwrap();
    riposte.restart().await;
    riposte
}

#[tokio::test]
async fn a_forged_message_id_reaches_no_whapi_path() {
    let rules = r#"
rules:
  - name: touch
    when: {text: "(?i)hallo"}
    then:
      - react: "👍"
      - mark_read: true
      - forward: {to: "120363041234567890@g.us"}
"#;
    let riposte = Riposte::start(rules).await;
    let forged = ["../../users/me", "abc/..%2F"];
    for id in forged {
        let mut body = fixture("message-text-private.json");
        body["messages"][0]["id"] = json!(id);
        riposte.webhook(&body).await;
    }
    riposte.webhook(&fixture("message-text-private.json")).await;
    let events = riposte.wait_events(3).await;
    for (event, id) in events.iter().zip(forged) {
        assert_eq!(
            action_errors(event),
            ["react", "mark_read", "forward"].map(|action| format!(
                "the event's message id for `{action}` is `{id}`, not a Whapi.Cloud message id (pattern `^[A-Za-z0-9._]{{4,30}}-[A-Za-z0-9._]{{4,14}}(-[A-Za-z0-9._]{{4,10}})?(-[A-Za-z0-9._]{{2,10}})?$`); nothing was called"
            ))
        );
    }
    riposte.whapi.wait_for(3).await;
    riposte.wait_jobs_settled().await;
    let mut paths: Vec<(String, String)> = riposte
        .whapi
        .received()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    paths.sort();
    let valid = "Qm7vT2xLp9.aB3cDe-gBgKa1Zr8k";
    assert_eq!(
        paths,
        [
            ("POST".to_owned(), format!("/messages/{valid}")),
            ("PUT".to_owned(), format!("/messages/{valid}")),
            ("PUT".to_owned(), format!("/messages/{valid}/reaction")),
        ],
        "only the genuine message's calls were made"
    );
}

#[tokio::test]
async fn a_group_id_from_event_data_must_be_a_group_id() {
    let rules = r#"
rules:
  - name: join
    when: {event: "custom:join"}
    then:
      - group_add: {group: "{{ data.group }}", participants: "{{ data.phone }}"}
"#;
    let riposte = Riposte::start(rules).await;
    for group in [
        "120363041234567890@g.us/../../users/me",
        "120363041234567890@g.us?x=1",
        "120363041234567890@g.us",
    ] {
        let data = json!({"group": group, "phone": "4915112345678"});
        let (status, _) = riposte.post("/events/join", data.to_string()).await;
        assert_eq!(status, 202);
    }
    let events = riposte.wait_events(3).await;
    assert_eq!(
        action_errors(&events[0]),
        [
            r"`group_add.group` is `120363041234567890@g.us/../../users/me`, not a Whapi.Cloud group id (pattern `^[\d-]{10,31}@g\.us$`); nothing was called"
        ]
    );
    assert_eq!(
        action_errors(&events[1]),
        [
            r"`group_add.group` is `120363041234567890@g.us?x=1`, not a Whapi.Cloud group id (pattern `^[\d-]{10,31}@g\.us$`); nothing was called"
        ]
    );
    let got = riposte.whapi.wait_for(1).await;
    riposte.wait_jobs_settled().await;
    assert_eq!(riposte.whapi.received().len(), 1);
    assert_eq!(
        (got[0].method.as_str(), got[0].path.as_str(), &got[0].body),
        (
            "POST",
            "/groups/120363041234567890@g.us/participants",
            &json!({"participants": ["4915112345678"]})
        )
    );
}

#[tokio::test]
async fn a_webhook_url_value_arrives_encoded_in_its_path_segment_and_query_value() {
    let rules = r#"
rules:
  - name: notes
    when: {event: "custom:note"}
    then:
      - webhook: {url: "STAND_IN/hooks/{{ data.x }}/notes?q={{ data.q }}&v=1", method: GET}
"#;
    let riposte = start_calling_the_stand_in(rules).await;
    let data = json!({"x": "a/../b?c#d@e", "q": "x&admin=1#+ é"});
    riposte.post("/events/note", data.to_string()).await;
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(
        got[0].path,
        "/hooks/a%2F..%2Fb%3Fc%23d%40e/notes?q=x%26admin%3D1%23%2B%20%C3%A9&v=1"
    );
}

#[tokio::test]
async fn a_value_that_would_climb_out_of_the_path_is_refused() {
    let rules = r#"
rules:
  - name: notes
    when: {event: "custom:note"}
    then:
      - webhook: {url: "STAND_IN/hooks/{{ data.x }}/notes"}
"#;
    let riposte = start_calling_the_stand_in(rules).await;
    for x in ["..", "ok"] {
        riposte
            .post("/events/note", json!({ "x": x }).to_string())
            .await;
    }
    let events = riposte.wait_events(2).await;
    assert_eq!(
        action_errors(&events[0]),
        ["webhook url: a template value makes the path segment `..`"]
    );
    let got = riposte.whapi.wait_for(1).await;
    riposte.wait_jobs_settled().await;
    assert_eq!(riposte.whapi.received().len(), 1);
    assert_eq!(got[0].path, "/hooks/ok/notes");
}

#[tokio::test]
async fn a_whole_url_from_data_needs_safe_url_and_an_allowed_host_without_user_info() {
    let rules = r#"
rules:
  - name: trusted
    when: {event: "custom:trusted"}
    then:
      - webhook: {url: "{{ data.url | safe_url }}", body: {n: "{{ data.n }}"}}
  - name: plain
    when: {event: "custom:plain"}
    then:
      - webhook: {url: "{{ data.url }}"}
"#;
    let riposte = Riposte::start(rules).await;
    let stand_in = &riposte.whapi.url;
    let with_login = stand_in.replace("http://", "http://bot:s3cret@");
    for (name, url) in [
        ("plain", format!("{stand_in}/hooks/plain")),
        (
            "trusted",
            "http://169.254.169.254/latest/meta-data".to_owned(),
        ),
        ("trusted", format!("{with_login}/hooks/login")),
        ("trusted", format!("{stand_in}/hooks/a/b?c=d")),
    ] {
        let (status, _) = riposte
            .post(
                &format!("/events/{name}"),
                json!({"url": url, "n": 1}).to_string(),
            )
            .await;
        assert_eq!(status, 202);
    }
    let events = riposte.wait_events(4).await;
    let errors: Vec<&str> = events[..3]
        .iter()
        .map(|e| {
            e["rules"]
                .as_array()
                .and_then(|rules| rules.iter().find(|r| r["result"] == "matched"))
                .and_then(|r| r["actions"][0]["error"].as_str())
                .unwrap_or("no error")
        })
        .collect();
    assert_eq!(
        errors,
        [
            "webhook url: a template value comes before `://`; a URL taken whole from data needs `| safe_url` (and its host must be on --webhook-allow)",
            "webhook host `169.254.169.254` comes from event data and is not on the allow-list (--webhook-allow)",
            "webhook url: a user name or password (`…@` before the host) is refused in a templated URL; send credentials in `headers`",
        ]
    );
    let got = riposte.whapi.wait_for(1).await;
    riposte.wait_jobs_settled().await;
    assert_eq!(riposte.whapi.received().len(), 1);
    assert_eq!(
        (got[0].path.as_str(), &got[0].body),
        ("/hooks/a/b?c=d", &json!({"n": 1}))
    );
}

#[tokio::test]
async fn an_allowed_host_without_a_port_allows_only_the_default_port() {
    let rules = r#"
rules:
  - name: ping
    when: {event: "custom:ping"}
    then:
      - webhook: {url: "http://{{ data.host }}/hooks/ping"}
"#;
    let riposte = Riposte::start_with(rules, |s| s.webhook_allow = vec!["127.0.0.1".into()]).await;
    let host = riposte.whapi.url.trim_start_matches("http://").to_owned();
    riposte
        .post("/events/ping", json!({ "host": host }).to_string())
        .await;
    let events = riposte.wait_events(1).await;
    assert_eq!(
        action_errors(&events[0]),
        [format!(
            "webhook host `{host}` comes from event data and is not on the allow-list (--webhook-allow; an entry without a port allows only the default port, so allow `{host}`)"
        )]
    );
    assert!(riposte.whapi.received().is_empty());
}
