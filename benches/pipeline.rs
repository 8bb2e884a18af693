//! What the database costs per webhook: a round of 64 text-message webhooks stored, processed
//! against 1,000 rules by the real intake, their replies claimed and marked done, on a real
//! database file. The calls themselves are left out; `bench/load.sh` measures them.
//! Run with `cargo bench --bench pipeline`.

#[path = "support/generate.rs"]
mod generate;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use riposte::clock::SystemClock;
use riposte::config::SourceFile;
use riposte::intake::Intake;
use riposte::rules::compile;
use riposte::store::{Source, SqliteStore, Store};
use riposte::vocab::JobResult;
use tokio::sync::{Notify, watch};

/// Webhooks in one round: the connections of the load harness.
const ROUND: usize = 64;

fn main() {
    divan::main();
}

fn body(n: usize) -> String {
    serde_json::json!({
        "messages": [{
            "id": format!("bench-{n}"), "from_me": false, "type": "text",
            "chat_id": format!("{}@s.whatsapp.net", 4_915_100_000_000_u64 + (n % 5000) as u64),
            "timestamp": 1_767_261_600, "source": "mobile",
            "text": {"body": format!("Where is my parcel 4242? m{n}")},
            "from": format!("{}", 4_915_100_000_000_u64 + (n % 5000) as u64), "from_name": "Anna"
        }],
        "event": {"type": "messages", "event": "post"},
        "channel_id": "BENCH"
    })
    .to_string()
}

#[divan::bench(sample_count = 200)]
fn store_process_and_finish_64_webhooks(bencher: divan::Bencher) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(
        runtime
            .block_on(SqliteStore::open(&dir.path().join("bench.db")))
            .expect("store"),
    );
    let mut text = generate::generate(1_000);
    text.push_str(
        "  - name: parcel-status\n    when:\n      text: '(?i)\\bparcel\\s+#?(?P<parcel>\\d+)'\n    then:\n      - reply: \"Parcel {{ match.parcel }}: {{ text }}\"\n",
    );
    let rules = compile(&[SourceFile {
        path: PathBuf::from("bench.yaml"),
        text,
        root: None,
    }])
    .unwrap_or_else(|d| panic!("{}", d[0]));
    let (_keep, rules) = watch::channel(Arc::new(rules));
    let intake = Intake {
        store: store.clone(),
        rules,
        clock: Arc::new(SystemClock),
        wake: Arc::new(Notify::new()),
        delivery: Arc::new(Notify::new()),
        max_event_age: None,
        ready: None,
        channels: Arc::new(riposte::channels::Channels::single()),
    };
    let mut next = 0;
    bencher.bench_local(|| {
        let bodies: Vec<String> = (next..next + ROUND).map(body).collect();
        next += ROUND;
        runtime.block_on(async {
            let mut accepted = tokio::task::JoinSet::new();
            for body in bodies {
                let store = store.clone();
                accepted.spawn(async move {
                    let source = Source::Webhook {
                        path: String::new(),
                        method: "POST".into(),
                    };
                    store.accept(source, &body, Utc::now()).await
                });
            }
            while let Some(done) = accepted.join_next().await {
                done.expect("task").expect("accepted");
            }
            intake.process_pending().await.expect("processed");
            let now = Utc::now();
            let jobs = store
                .claim_jobs(now, now + chrono::Duration::minutes(2), ROUND as u32)
                .await
                .expect("claimed");
            assert_eq!(jobs.len(), ROUND);
            let mut finished = tokio::task::JoinSet::new();
            for job in jobs {
                let store = store.clone();
                finished.spawn(async move {
                    let done = JobResult::Done {
                        response: r#"{"sent":true,"message":{"id":"x"}}"#.into(),
                    };
                    store.finish_job(job.id, &done, Utc::now()).await
                });
            }
            while let Some(done) = finished.join_next().await {
                done.expect("task").expect("finished");
            }
        });
    });
}
