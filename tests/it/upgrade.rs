//! An upgrade strands no pending work: a database written by an earlier release, holding
//! pending jobs of every kind, is opened by this one and each job does what it was made for.
//!
//! `tests/fixtures/db/jobs-2026-12.db` was made by the release of December 2026 running
//! `jobs-2026-12.rules.yaml` beside it: three messages came in (`Hallo there`, two questions)
//! while Whapi.Cloud and the model were unreachable, then `riposte campaigns run deals`. It holds
//! 14 pending jobs, created at 2026-12-06 08:49 UTC: a reply, a reaction, a mark-read, a
//! forward and a webhook call (three of them already tried once), follow-ups at +1 h (a tag, a
//! `set`), +2 h (a send with a key and `unless`), +3 h (a handoff) and +4 h (a cancel), two
//! `ai_reply` model calls, and two campaign sends.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::support::{Received, Riposte};

const RULES: &str = include_str!("../fixtures/db/jobs-2026-12.rules.yaml");
const MESSAGE: &str = "Fixture1Msg.aB3cDe-gBgKa1Zr8k";
const ANNA: &str = "4915112345678";

/// Riposte on a copy of the earlier release's database, its clock at `at`.
async fn upgraded(at: &str) -> Riposte {
    let start: DateTime<Utc> = at.parse().unwrap();
    let mut riposte = Riposte::start_at(RULES, start, &[]).await;
    riposte.stop().await;
    let db = riposte.db_path();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/db/jobs-2026-12.db"
    );
    std::fs::copy(fixture, &db).unwrap();
    riposte.whapi.respond_with(|r| {
        if r.path != "/v1/chat/completions" {
            return (200, r#"{"sent":true,"message":{"id":"out-1"}}"#.into());
        }
        let answer = json!({"choices": [{"message": {"role": "assistant", "content": "Free shipping from 50 EUR."}}]});
        (200, answer.to_string())
    });
    riposte.restart().await;
    riposte
}

fn whapi_calls(received: &[Received]) -> Vec<(String, String, Value)> {
    received
        .iter()
        .filter(|r| r.path != "/v1/chat/completions")
        .map(|r| (r.method.clone(), r.path.clone(), r.body.clone()))
        .collect()
}

fn job<'a>(jobs: &'a [Value], action: &str) -> Vec<&'a Value> {
    jobs.iter().filter(|j| j["action"] == action).collect()
}

#[tokio::test]
async fn jobs_written_by_the_previous_release_are_delivered() {
    // An hour after the messages: the calls and the first follow-ups are due.
    let riposte = upgraded("2026-12-06T10:00:00Z").await;
    let text = |to: &str, body: &str| {
        (
            "POST".to_owned(),
            "/messages/text".to_owned(),
            json!({"to": to, "body": body}),
        )
    };
    // Six Whapi.Cloud calls, and two model calls whose answers become two more sends.
    let received = riposte.whapi.wait_for(10).await;
    let mut calls = whapi_calls(&received);
    calls.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    let chat = format!("{ANNA}@s.whatsapp.net");
    let mut expected = vec![
        text(&chat, "Hi Anna"),
        (
            "PUT".into(),
            format!("/messages/{MESSAGE}/reaction"),
            json!({"emoji": "👍"}),
        ),
        ("PUT".into(), format!("/messages/{MESSAGE}"), Value::Null),
        (
            "POST".into(),
            format!("/messages/{MESSAGE}"),
            json!({"to": "4917000000001"}),
        ),
        text(&chat, "Free shipping from 50 EUR."),
        text(&chat, "Free shipping from 50 EUR."),
        text("4917000000002", "Deals this week, friend!"),
        text("4917000000003", "Deals this week, friend!"),
    ];
    expected.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    // A bodiless mark-read arrives as an empty string.
    for call in &mut calls {
        if call.2 == json!("") {
            call.2 = Value::Null;
        }
    }
    assert_eq!(calls, expected);
    let model = received
        .iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .count();
    assert_eq!(model, 2, "each ai_reply asked the model once");

    // The follow-ups of the first hour changed the contact.
    let jobs = riposte
        .wait_jobs("the first hour's follow-ups", |jobs| {
            job(jobs, "tag")
                .iter()
                .chain(&job(jobs, "set"))
                .all(|j| j["status"] == "done")
        })
        .await;
    assert_eq!(
        jobs.len(),
        16,
        "14 from the old release, 2 answers of the model"
    );
    let (code, csv, _) = crate::cli::riposte_in(
        riposte.dir.path(),
        &[
            "contacts",
            "export",
            "--db",
            riposte.db_path().to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0);
    assert!(csv.contains("later") && csv.contains("yes"), "{csv}");

    // The webhook call still points where it did, where nothing listens: it was tried again
    // (and, past the retry age of these tests, given up as a dead letter).
    let webhook = job(&jobs, "webhook")[0].clone();
    assert!(webhook["attempts"].as_u64().unwrap() >= 2, "{webhook}");
    assert_eq!(webhook["work"]["call"]["path"], "http://127.0.0.1:9/hook");
    assert!(
        webhook["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{webhook}"
    );

    // Later: the keyed send (its `unless` does not hold), the handoff, then the cancel.
    riposte.advance(Duration::hours(1));
    let received = riposte.whapi.wait_for(11).await;
    let last = whapi_calls(&received).pop().unwrap();
    assert_eq!(last, text(ANNA, "Still there, Anna?"));
    for (hours, action) in [(1, "handoff"), (1, "cancel")] {
        riposte.advance(Duration::hours(hours));
        riposte
            .wait_jobs(&format!("the {action} follow-up"), |jobs| {
                job(jobs, action).iter().all(|j| j["status"] == "done")
            })
            .await;
    }
    let jobs = riposte
        .wait_jobs("every job but the webhook call to be done", |jobs| {
            jobs.iter()
                .all(|j| j["action"] == "webhook" || j["status"] == "done")
        })
        .await;
    for job in &jobs {
        if job["action"] != "webhook" {
            assert_eq!(job["status"], "done", "{job}");
        }
    }
}
