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
