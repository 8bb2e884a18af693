//! The real binary and signals: SIGKILL loses no pending follow-up, SIGHUP reloads the rules.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{DEADLINE, StandIn};

const RULES: &str = r#"
rules:
  - name: cart-reminder
    when:
      event: custom:cart_abandoned
    then:
      - send: {to: "{{ data.phone }}", text: "Your cart is waiting"}
        after: 2s
        key: "cart-{{ data.phone }}"
"#;

/// A folder with `rules` as its rules file, and a stand-in Whapi.Cloud.
async fn setup(rules: &str) -> (tempfile::TempDir, StandIn) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/rules.yaml"), rules).unwrap();
    (dir, StandIn::start().await)
}

pub(crate) struct Process {
    pub(crate) child: Child,
    pub(crate) url: String,
}

impl Drop for Process {
    // A test that fails half-way must not leave a server running (it would hold the test
    // runner's output open).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &std::path::Path, whapi: &str) -> Process {
    spawn_with(dir, whapi, &[])
}

pub(crate) fn spawn_with(dir: &std::path::Path, whapi: &str, args: &[&str]) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_riposte"))
        .arg("serve")
        .args(args)
        .env("RIPOSTE_LISTEN", "127.0.0.1:0")
        .env("RIPOSTE_RULES", dir.join("rules"))
        .env("RIPOSTE_DB", dir.join("riposte.db"))
        .env("WHAPI_URL", whapi)
        .env("WHAPI_TOKEN", "test-token")
        .env("RIPOSTE_WHAPI_RATE", "1000/s")
        .env("RIPOSTE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("riposte starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("\"ERROR\"") || line.contains("\"WARN\"") {
                eprintln!("riposte: {line}");
            }
            if let Some(at) = line.find("listening on http://") {
                let rest = &line[at + "listening on ".len()..];
                let url: String = rest
                    .chars()
                    .take_while(|c| !matches!(c, '"' | ' '))
                    .collect();
                let _ = tx.send(url);
            }
        }
    });
    let url = rx
        .recv_timeout(DEADLINE)
        .expect("riposte reports its address");
    Process { child, url }
}

async fn jobs(url: &str) -> Vec<Value> {
    let answer: Value = reqwest::get(format!("{url}/admin/jobs"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["jobs"].as_array().cloned().unwrap_or_default()
}

pub(crate) async fn poll<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let wait = async {
        loop {
            if let Some(v) = f().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

#[tokio::test]
async fn a_pending_follow_up_survives_sigkill_and_is_sent_once() {
    let (dir, whapi) = setup(RULES).await;

    let mut first = spawn(dir.path(), &whapi.url);
    let body = json!({"phone": "4915112345678"}).to_string();
    let client = reqwest::Client::new();
    let answer = client
        .post(format!("{}/events/cart_abandoned", first.url))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 202);
    let url = first.url.clone();
    poll("the follow-up to be stored", async || {
        jobs(&url)
            .await
            .iter()
            .any(|j| j["status"] == "pending")
            .then_some(())
    })
    .await;
    first.child.kill().unwrap(); // SIGKILL: no shutdown, no flush
    first.child.wait().unwrap();
    assert!(
        whapi.received().is_empty(),
        "killed before the follow-up was due"
    );

    let mut second = spawn(dir.path(), &whapi.url);
    let got = whapi.wait_for(1).await;
    assert_eq!(
        got[0].body,
        json!({"to": "4915112345678", "body": "Your cart is waiting"})
    );
    let url = second.url.clone();
    let done = poll("the job to be done", async || {
        let jobs = jobs(&url).await;
        jobs.iter().all(|j| j["status"] == "done").then_some(jobs)
    })
    .await;
    assert_eq!(done.len(), 1);
    assert_eq!(whapi.received().len(), 1);
    second.child.kill().unwrap();
    second.child.wait().unwrap();
}

#[tokio::test]
async fn sighup_reloads_the_rules() {
    let (dir, whapi) = setup(RULES).await;
    let mut server = spawn_with(dir.path(), &whapi.url, &["--no-watch"]);
    let url = server.url.clone();
    let before: Value = reqwest::get(format!("{url}/admin/rules"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    std::fs::write(
        dir.path().join("rules/more.yaml"),
        "rules:\n  - name: hello\n    then: [{reply: hi}]\n",
    )
    .unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let after = poll("the reload", async || {
        let rules: Value = reqwest::get(format!("{url}/admin/rules"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (rules["version"] != before["version"]).then_some(rules)
    })
    .await;
    assert_eq!(after["last_reload"]["trigger"], "signal");
    assert_eq!(after["last_reload"]["added"], json!(["hello"]));
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

/// Posts distinct messages until the server stops answering; returns the texts answered 200
/// and counts them in `count` as it goes.
async fn post_until_down(
    url: String,
    round: usize,
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut accepted = Vec::new();
    for i in 0.. {
        let text = format!("r{round}-m{i}");
        let body = json!({
            "messages": [{"id": format!("crash-{round}-{i}"), "from_me": false, "type": "text", "chat_id": format!("49151{:07}@s.whatsapp.net", i % 50), "timestamp": 1767261600, "from": format!("49151{:07}", i % 50), "text": {"body": text}}],
            "event": {"type": "messages", "event": "post"},
            "channel_id": "CRASH"
        });
        match client
            .post(format!("{url}/webhook"))
            .json(&body)
            .send()
            .await
        {
            Ok(r) if r.status().as_u16() == 200 => {
                accepted.push(text);
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    accepted
}

#[tokio::test]
async fn random_sigkills_lose_no_answered_event() {
    let (dir, whapi) =
        setup("rules:\n  - name: echo\n    then:\n      - reply: \"{{ text }}\"\n").await;
    let mut accepted = Vec::new();
    let kills = 5;
    for round in 0..kills {
        let mut server = spawn(dir.path(), &whapi.url);
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let poster = tokio::spawn(post_until_down(server.url.clone(), round, count.clone()));
        // Kill at a random moment while webhooks are being stored, processed and sent: after
        // the round has had some accepted (however slow the machine), then a random pause.
        poll("webhooks to be accepted", async || {
            (count.load(std::sync::atomic::Ordering::Relaxed) >= 30).then_some(())
        })
        .await;
        let pause = rand::random::<u64>() % 400;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        accepted.extend(poster.await.unwrap());
    }
    let mut last = spawn(dir.path(), &whapi.url);
    let replies = || -> std::collections::HashMap<String, usize> {
        whapi
            .received()
            .iter()
            .fold(Default::default(), |mut m, r| {
                *m.entry(r.body["body"].as_str().unwrap_or_default().to_owned())
                    .or_default() += 1;
                m
            })
    };
    let wait = async {
        loop {
            let texts = replies();
            if accepted.iter().all(|t| texts.contains_key(t)) {
                return texts;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let Ok(answered) = tokio::time::timeout(Duration::from_secs(30), wait).await else {
        let texts = replies();
        let missing: Vec<&String> = accepted
            .iter()
            .filter(|t| !texts.contains_key(*t))
            .collect();
        last.child.kill().unwrap();
        panic!(
            "{} of {} accepted events got no reply, e.g. {:?}",
            missing.len(),
            accepted.len(),
            &missing[..missing.len().min(5)]
        );
    };
    let duplicates: usize = answered.values().map(|n| n - 1).sum();
    println!(
        "{} events answered 200 across {kills} SIGKILLs: all replied to, {duplicates} duplicate replies",
        accepted.len()
    );
    assert!(
        accepted.len() >= 150,
        "only {} events were accepted",
        accepted.len()
    );
    // A duplicate needs a kill between a call reaching Whapi and the commit that marks its job
    // done: at most the calls in flight (16) per kill.
    assert!(
        duplicates <= 16 * kills,
        "{duplicates} duplicates in {kills} kills"
    );
    last.child.kill().unwrap();
    last.child.wait().unwrap();
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully_and_quickly() {
    let (dir, whapi) = setup(RULES).await;
    let mut server = spawn(dir.path(), &whapi.url);
    let started = std::time::Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || server.child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
