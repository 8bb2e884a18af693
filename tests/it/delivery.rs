//! Delivery: retries, dead letters and dry-run.

use serde_json::json;

use crate::support::{HELLO_RULES as RULES, Riposte, fixture};

#[tokio::test]
async fn server_errors_are_retried_until_delivered_once() {
    let riposte = Riposte::start(RULES).await;
    riposte
        .whapi
        .fail_next(&[(500, None), (502, None), (429, None)]);
    riposte.webhook(&fixture("message-text-private.json")).await;
    let got = riposte.whapi.wait_for(4).await;
    assert!(
        got.iter()
            .all(|r| r.body == json!({"to": "4915112345678@s.whatsapp.net", "body": "Hi Anna"}))
    );
    let jobs = riposte.wait_jobs_settled().await;
    assert_eq!(jobs[0]["status"], "done");
    assert_eq!(jobs[0]["attempts"], 4);
    assert_eq!(riposte.whapi.received().len(), 4);
}

#[tokio::test]
async fn a_client_error_goes_to_the_dead_letters_and_can_be_retried() {
    let riposte = Riposte::start(RULES).await;
    riposte.whapi.fail_next(&[(400, None)]);
    riposte.webhook(&fixture("message-text-private.json")).await;
    riposte.whapi.wait_for(1).await;
    let jobs = riposte.wait_jobs_settled().await;
    assert_eq!(jobs[0]["status"], "dead");
    assert!(
        jobs[0]["last_error"].as_str().unwrap().contains("400"),
        "{}",
        jobs[0]
    );
    let id = jobs[0]["id"].as_i64().unwrap();
    let (status, _) = riposte.post(&format!("/admin/jobs/{id}/retry"), "").await;
    assert_eq!(status, 200);
    riposte.whapi.wait_for(2).await;
    let jobs = riposte.wait_jobs_settled().await;
    assert_eq!(jobs[0]["status"], "done");
}

#[tokio::test]
async fn dry_run_calls_nothing_and_records_the_job() {
    let riposte = Riposte::start_dry_run(RULES).await;
    riposte.webhook(&fixture("message-text-private.json")).await;
    riposte.wait_events(1).await;
    let jobs = riposte.wait_jobs_settled().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["status"], "done");
    assert!(riposte.whapi.received().is_empty());
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let riposte = Riposte::start(RULES).await;
    riposte.whapi.fail_next(&[(429, Some(2))]);
    riposte.webhook(&fixture("message-text-private.json")).await;
    let got = riposte.whapi.wait_for(2).await;
    let waited = got[1].at - got[0].at;
    assert!(
        waited >= std::time::Duration::from_secs(2),
        "retried after {waited:?}"
    );
    assert_eq!(riposte.wait_jobs_settled().await[0]["status"], "done");
}

#[tokio::test]
async fn messages_to_one_chat_keep_their_order_while_the_first_is_retried() {
    let riposte =
        Riposte::start("rules:\n  - name: echo\n    then:\n      - reply: \"re: {{ text }}\"\n")
            .await;
    riposte.whapi.fail_next(&[(500, None), (503, None)]);
    for n in 1..=3 {
        let mut body = fixture("message-text-private.json");
        body["messages"][0]["id"] = json!(format!("order-{n}"));
        body["messages"][0]["text"]["body"] = json!(format!("m{n}"));
        riposte.webhook(&body).await;
    }
    let got = riposte.whapi.wait_for(5).await;
    let texts: Vec<&str> = got
        .iter()
        .map(|r| r.body["body"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["re: m1", "re: m1", "re: m1", "re: m2", "re: m3"]);
}

#[tokio::test]
async fn a_burst_over_several_chats_is_answered_once_each_and_in_order_per_chat() {
    let riposte =
        Riposte::start("rules:\n  - name: echo\n    then:\n      - reply: \"re: {{ text }}\"\n")
            .await;
    let (chats, rounds) = (5, 8);
    let http = reqwest::Client::new();
    for round in 1..=rounds {
        // The chats' messages of a round arrive together; a chat's next one after its last.
        let mut sends = tokio::task::JoinSet::new();
        for chat in 1..=chats {
            let mut body = fixture("message-text-private.json");
            body["messages"][0]["id"] = json!(format!("burst-{chat}-{round}"));
            body["messages"][0]["chat_id"] = json!(format!("49151000000{chat}@s.whatsapp.net"));
            body["messages"][0]["text"]["body"] = json!(format!("c{chat} m{round}"));
            let send = http
                .post(format!("{}/webhook", riposte.url))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send();
            sends.spawn(async move { send.await.map(|r| r.status().as_u16()) });
        }
        while let Some(status) = sends.join_next().await {
            assert_eq!(status.unwrap().unwrap(), 200);
        }
    }
    let got = riposte.whapi.wait_for(chats * rounds).await;
    for chat in 1..=chats {
        let to = format!("49151000000{chat}@s.whatsapp.net");
        let texts: Vec<&str> = got
            .iter()
            .filter(|r| r.body["to"] == to.as_str())
            .map(|r| r.body["body"].as_str().unwrap())
            .collect();
        let expected: Vec<String> = (1..=rounds).map(|m| format!("re: c{chat} m{m}")).collect();
        assert_eq!(texts, expected, "chat {chat}");
    }
    assert_eq!(riposte.whapi.received().len(), chats * rounds);
}

#[tokio::test]
async fn a_failing_whapi_trips_the_breaker_which_probes_before_resuming() {
    let riposte = Riposte::start_with(RULES, |s| {
        s.breaker = riposte::delivery::BreakerPolicy {
            threshold: 3,
            cooldown: std::time::Duration::from_millis(400),
            max_cooldown: std::time::Duration::from_secs(5),
        };
        s.retry.max_attempts = 10;
    })
    .await;
    riposte.whapi.fail_next(&[(500, None); 4]);
    riposte.webhook(&fixture("message-text-private.json")).await;
    let got = riposte.whapi.wait_for(5).await;
    // Three failures open the breaker; the probe waits out the cooldown, fails, and the next
    // probe waits twice as long before it succeeds.
    let first_pause = got[3].at - got[2].at;
    let second_pause = got[4].at - got[3].at;
    assert!(
        first_pause >= std::time::Duration::from_millis(400),
        "{first_pause:?}"
    );
    assert!(
        second_pause >= std::time::Duration::from_millis(800),
        "{second_pause:?}"
    );
    assert_eq!(riposte.wait_jobs_settled().await[0]["status"], "done");
    assert!(riposte.metric("riposte_whapi_breaker_opened_total").await >= 2);
}

#[tokio::test]
async fn a_runaway_template_fails_its_action_and_the_server_carries_on() {
    let rules = r#"
rules:
  - name: runaway
    when: {keywords: [loop]}
    then:
      - reply: "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
      - tag: still-ran
  - name: hello
    when: {keywords: [hallo]}
    then:
      - reply: "Hi"
"#;
    let riposte = Riposte::start(rules).await;
    let mut body = fixture("message-text-private.json");
    body["messages"][0]["id"] = json!("loop-1");
    body["messages"][0]["text"]["body"] = json!("loop please");
    riposte.webhook(&body).await;
    riposte.webhook(&fixture("message-text-private.json")).await;
    let events = riposte.wait_events(2).await;
    let runaway = &events[0]["rules"][0];
    let error = runaway["actions"][0]["error"].as_str().unwrap();
    assert!(error.contains("fuel"), "{error}");
    assert_eq!(runaway["actions"][1]["action"], "tag");
    assert_eq!(riposte.whapi.wait_for(1).await[0].body["body"], "Hi");
    assert_eq!(
        reqwest::get(format!("{}/healthz", riposte.url))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_webhook_host_from_event_data_must_be_allowed() {
    let rules = r#"
rules:
  - name: forward-to-host
    when: {event: "custom:ping"}
    then:
      - webhook: {url: "http://{{ data.host }}/hooks/ping", body: {n: "{{ data.n }}"}}
"#;
    let riposte = Riposte::start(rules).await;
    let allowed = riposte.whapi.url.trim_start_matches("http://").to_owned();
    riposte
        .post(
            "/events/ping",
            json!({"host": "169.254.169.254", "n": 1}).to_string(),
        )
        .await;
    riposte
        .post("/events/ping", json!({"host": allowed, "n": 2}).to_string())
        .await;
    let events = riposte.wait_events(2).await;
    let refused = events[0]["rules"][0]["actions"][0]["error"]
        .as_str()
        .unwrap();
    assert_eq!(
        refused,
        "webhook host `169.254.169.254` comes from event data and is not on the allow-list (--webhook-allow)"
    );
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(
        (got[0].path.as_str(), &got[0].body),
        ("/hooks/ping", &json!({"n": 2}))
    );
}
