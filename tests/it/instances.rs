//! Several instances on one PostgreSQL database: three real `riposte serve` processes behind
//! no load balancer but the test itself, posting to each in turn.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::crash::{Process, poll, spawn_with};
use crate::support::{DEADLINE, StandIn};

const ECHO: &str = r#"
rules:
  - name: echo
    when: {text: "."}
    then:
      - reply: "echo {{ text }}"
  - name: reminder
    when: {event: "custom:remind"}
    then:
      - send: {to: "{{ data.phone }}", text: "Reminder for {{ data.phone }}"}
        after: 2s
campaigns:
  - name: every-second
    schedule: "* * * * * *"
    audience: {numbers: ["4915100000001"]}
    send: "tick"
    rate: 100/s
    enabled: false
"#;

/// A rules folder and a stand-in Whapi.Cloud, and the address of a fresh database.
async fn setup(rules: &str) -> Option<(tempfile::TempDir, StandIn, String)> {
    let url = crate::postgres::database().await?;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/rules.yaml"), rules).unwrap();
    Some((dir, StandIn::start().await, url))
}

fn instance(dir: &std::path::Path, whapi: &str, db: &str, name: &str) -> Process {
    spawn_with(dir, whapi, &["--db", db, "--instance", name])
}

fn message(chat: usize, n: usize) -> Value {
    let phone = format!("49151000{chat:05}");
    json!({
        "messages": [{
            "id": format!("M{chat}x{n}.aB3cDe-gBgKa1Zr8k"),
            "from_me": false, "type": "text",
            "chat_id": format!("{phone}@s.whatsapp.net"), "from": phone,
            "timestamp": 1_767_261_600, "text": {"body": format!("c{chat} m{n}")}
        }],
        "event": {"type": "messages", "event": "post"},
        "channel_id": "HERON-X4K9P"
    })
}

async fn post(client: &reqwest::Client, url: &str, path: &str, body: &Value) -> u16 {
    client
        .post(format!("{url}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

/// The replies the stand-in received, by chat, in the order they arrived.
fn replies(whapi: &StandIn) -> BTreeMap<String, Vec<String>> {
    let mut by_chat: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in whapi.received() {
        if let (Some(to), Some(text)) = (r.body["to"].as_str(), r.body["body"].as_str()) {
            by_chat
                .entry(to.to_owned())
                .or_default()
                .push(text.to_owned());
        }
    }
    by_chat
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_answer_each_event_once_and_each_chat_in_order() {
    let Some((dir, whapi, db)) = setup(ECHO).await else {
        return;
    };
    let servers: Vec<Process> = (1..=3)
        .map(|n| instance(dir.path(), &whapi.url, &db, &format!("i{n}")))
        .collect();
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let (chats, per_chat) = (12, 10);
    // Each chat writes its messages one after the other, each to the next instance; the
    // chats write at the same time.
    let writers = (0..chats).map(|chat| {
        let urls = urls.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for n in 0..per_chat {
                let url = &urls[(chat + n) % urls.len()];
                assert_eq!(post(&client, url, "/webhook", &message(chat, n)).await, 200);
            }
        })
    });
    for writer in writers {
        writer.await.unwrap();
    }
    whapi.wait_for(chats * per_chat).await;
    let by_chat = replies(&whapi);
    assert_eq!(by_chat.len(), chats);
    for (chat, texts) in &by_chat {
        let n: usize = chat[8..13].parse().unwrap();
        let expected: Vec<String> = (0..per_chat).map(|m| format!("echo c{n} m{m}")).collect();
        assert_eq!(texts, &expected, "{chat}: one reply per message, in order");
    }
    // Every instance says which rule set it serves: the same one, a rollout converged.
    let rules: Value = reqwest::get(format!("{}/admin/rules", urls[0]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let instances = rules["instances"].as_array().unwrap();
    let names: Vec<&str> = instances
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names, ["i1", "i2", "i3"], "{rules}");
    assert!(
        instances
            .iter()
            .all(|i| i["version"] == rules["version"] && i["live"] == true),
        "{rules}"
    );
    drop(servers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_posted_to_two_instances_at_once_fires_once() {
    let Some((dir, whapi, db)) = setup(ECHO).await else {
        return;
    };
    let (a, b) = (
        instance(dir.path(), &whapi.url, &db, "a"),
        instance(dir.path(), &whapi.url, &db, "b"),
    );
    let client = reqwest::Client::new();
    for n in 0..20 {
        let body = message(1, n);
        let (x, y) = tokio::join!(
            post(&client, &a.url, "/webhook", &body),
            post(&client, &b.url, "/webhook", &body)
        );
        assert_eq!((x, y), (200, 200));
    }
    whapi.wait_for(20).await;
    // Both copies of each are processed by now once the last one's reply is in and every
    // stored body is done.
    let url = a.url.clone();
    poll("every copy to be processed", async || {
        let events: Value = reqwest::get(format!("{url}/admin/events?limit=100"))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (events["events"].as_array()?.len() == 40).then_some(())
    })
    .await;
    let texts: Vec<String> = replies(&whapi).into_values().flatten().collect();
    assert_eq!(texts.len(), 20, "{texts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_is_sent_by_another_instance_when_its_own_dies() {
    let Some((dir, whapi, db)) = setup(ECHO).await else {
        return;
    };
    let mut first = instance(dir.path(), &whapi.url, &db, "first");
    let second = instance(dir.path(), &whapi.url, &db, "second");
    let client = reqwest::Client::new();
    let remind = json!({"phone": "4915112345678"});
    assert_eq!(
        post(&client, &first.url, "/events/remind", &remind).await,
        202
    );
    let url = second.url.clone();
    poll("the follow-up to be stored", async || {
        let jobs: Value = reqwest::get(format!("{url}/admin/jobs"))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (jobs["jobs"].as_array()?.len() == 1).then_some(())
    })
    .await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let got = whapi.wait_for(1).await;
    assert_eq!(got[0].body["body"], "Reminder for 4915112345678");
    // Well past its time: nothing more comes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(whapi.received().len(), 1);
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_fire_time_is_sent_once_by_three_instances() {
    let rules = ECHO.replace("enabled: false", "enabled: true");
    let Some((dir, whapi, db)) = setup(&rules).await else {
        return;
    };
    let servers: Vec<Process> = (1..=3)
        .map(|n| instance(dir.path(), &whapi.url, &db, &format!("c{n}")))
        .collect();
    // Some seconds of fire times, each planned by whichever instance gets there first.
    whapi.wait_for(4).await;
    drop(servers);
    let runs = {
        let client = tokio_postgres::connect(&db, tokio_postgres::NoTls).await;
        let (client, connection) = client.unwrap();
        tokio::spawn(connection);
        client
            .query(
                "SELECT fire_at, COUNT(*) FROM campaign_runs GROUP BY fire_at ORDER BY fire_at",
                &[],
            )
            .await
            .unwrap()
    };
    assert!(runs.len() >= 4, "{runs:?}");
    assert!(runs.iter().all(|r| r.get::<_, i64>(1) == 1));
    let ticks = whapi
        .received()
        .iter()
        .filter(|r| r.body["body"] == "tick")
        .count();
    assert!(
        ticks >= runs.len() - 1 && ticks <= runs.len(),
        "{ticks} ticks, {} runs",
        runs.len()
    );
    let _ = DEADLINE;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_is_copied_into_postgres_with_its_pending_work() {
    let Some(db) = crate::postgres::database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("riposte.db");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/db/jobs-2026-12.db"
        ),
        &file,
    )
    .unwrap();
    let copy = |to: String| {
        let (dir, file) = (dir.path().to_owned(), file.clone());
        tokio::task::spawn_blocking(move || {
            crate::cli::riposte_in(
                &dir,
                &["db", "copy", "--from", file.to_str().unwrap(), "--to", &to],
            )
        })
    };
    let (code, stdout, stderr) = copy(db.clone()).await.unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("jobs  14 rows"), "{stdout}");
    let store = riposte::store::open(&db, riposte::store::OpenOptions::default())
        .await
        .unwrap();
    let pending = store
        .jobs(riposte::store::JobQuery {
            status: Some(riposte::vocab::JobStatus::Pending),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pending.len(), 14);
    let anna = store.contact("4915112345678").await.unwrap();
    assert!(!anna.tags.is_empty(), "{anna:?}");
    assert_eq!(store.recent_events(10).await.unwrap().len(), 3);
    assert_eq!(store.campaign_runs(None, 10).await.unwrap().len(), 1);
    // The bodies were all processed: nothing is claimed again.
    let now = chrono::Utc::now();
    let claimed = store
        .claim_inbound(10, now + chrono::Duration::seconds(60), now)
        .await
        .unwrap();
    assert!(claimed.is_empty(), "{claimed:?}");
    // A second copy into the same database is refused rather than mixed in.
    let (code, _, stderr) = copy(db).await.unwrap();
    assert_eq!(code, 1);
    assert!(stderr.contains("not empty"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_under_load_loses_no_accepted_event() {
    let Some((dir, whapi, db)) = setup(ECHO).await else {
        return;
    };
    let mut servers: Vec<Process> = (1..=3)
        .map(|n| instance(dir.path(), &whapi.url, &db, &format!("k{n}")))
        .collect();
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let (chats, per_chat) = (10, 80);
    let writers: Vec<_> = (0..chats)
        .map(|chat| {
            let urls = urls.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut accepted = Vec::new();
                for n in 0..per_chat {
                    let url = &urls[(chat + n) % urls.len()];
                    if post(&client, url, "/webhook", &message(chat, n)).await == 200 {
                        accepted.push(format!("echo c{chat} m{n}"));
                    }
                }
                accepted
            })
        })
        .collect();
    // SIGKILL one instance while the chats write: no shutdown, no flush.
    whapi.wait_for(40).await;
    servers[1].child.kill().unwrap();
    servers[1].child.wait().unwrap();
    let mut accepted = Vec::new();
    for writer in writers {
        accepted.extend(writer.await.unwrap());
    }
    // It starts again under its name and takes up what it held at once.
    servers[1] = instance(dir.path(), &whapi.url, &db, "k2");
    let answered = poll("every accepted event to be answered", async || {
        let texts: Vec<String> = replies(&whapi).into_values().flatten().collect();
        accepted.iter().all(|a| texts.contains(a)).then_some(texts)
    })
    .await;
    let duplicates = answered.len() - accepted.len();
    eprintln!(
        "{} accepted, {} answered, {duplicates} answered twice (calls in flight when the instance was killed)",
        accepted.len(),
        answered.len()
    );
    assert!(accepted.len() >= chats * per_chat / 2);
    assert!(duplicates <= 16, "{duplicates} duplicates");
    // Each chat's first answers are in the order its messages were accepted.
    for (chat, texts) in replies(&whapi) {
        let mut firsts: Vec<&String> = Vec::new();
        for t in &texts {
            if !firsts.contains(&t) {
                firsts.push(t);
            }
        }
        let order: Vec<usize> = firsts
            .iter()
            .map(|t| t.rsplit('m').next().unwrap().parse().unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{chat}: {texts:?}");
    }
    drop(servers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whapi_rate_holds_for_the_instances_together() {
    let Some((dir, whapi, db)) = setup(ECHO).await else {
        return;
    };
    let servers: Vec<Process> = (1..=3)
        .map(|n| {
            spawn_with(
                dir.path(),
                &whapi.url,
                &[
                    "--db",
                    &db,
                    "--instance",
                    &format!("r{n}"),
                    "--whapi-rate",
                    "20/s",
                ],
            )
        })
        .collect();
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    // Each instance has counted the three (it shares the pace with them from then on).
    for url in &urls {
        poll("every instance to see the others", async || {
            let ready: Value = reqwest::get(format!("{url}/readyz"))
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (ready["instances_live"] == 3).then_some(())
        })
        .await;
    }
    let client = reqwest::Client::new();
    let total = 90;
    for n in 0..total {
        let url = &urls[n % urls.len()];
        assert_eq!(post(&client, url, "/webhook", &message(n, 0)).await, 200);
    }
    let received = whapi.wait_for(total).await;
    // The busiest two seconds: 20 calls a second together (each instance alone would make
    // 20), within 10 %.
    let at: Vec<std::time::Instant> = received.iter().map(|r| r.at).collect();
    let busiest = (0..at.len())
        .map(|i| {
            at[i..]
                .iter()
                .take_while(|t| t.duration_since(at[i]) < Duration::from_secs(2))
                .count()
        })
        .max()
        .unwrap_or(0);
    let rate = busiest as f64 / 2.0;
    eprintln!("busiest two seconds: {rate:.1} calls a second");
    assert!(
        (18.0..=22.0).contains(&rate),
        "{rate:.1} calls a second for a pace of 20"
    );
    drop(servers);
}
