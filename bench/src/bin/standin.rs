//! A stand-in Whapi.Cloud for load runs: answers every call like Whapi does and counts the
//! load messages it receives, so the driver can compare calls expected with calls received.
//!
//! `GET /stats` reports calls, distinct message ids, duplicates and end-to-end latency;
//! `POST /stats/reset` starts over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::{Value, json};

#[derive(Default)]
struct Tally {
    calls: u64,
    unmarked: u64,
    seen: HashMap<String, u32>,
    e2e_micros: Vec<u64>,
}

type Shared = Arc<Mutex<Tally>>;

#[tokio::main]
async fn main() {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9100".into());
    let tally = Shared::default();
    let app = Router::new()
        .route("/stats", get(stats))
        .route("/stats/reset", post(reset))
        .fallback(call)
        .with_state(tally);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {listen}: {e}"));
    axum::serve(listener, app).await.expect("stand-in server");
}

async fn call(State(tally): State<Shared>, body: Bytes) -> axum::Json<Value> {
    let arrived = riposte_bench::now_micros();
    let text = String::from_utf8_lossy(&body);
    let found = riposte_bench::marker()
        .captures(&text)
        .map(|c| (c[1].to_owned(), c[2].parse::<u64>().unwrap_or(arrived)));
    {
        let mut t = tally
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        t.calls += 1;
        match found {
            Some((id, sent)) => {
                *t.seen.entry(id).or_default() += 1;
                t.e2e_micros.push(arrived.saturating_sub(sent));
            }
            None => t.unmarked += 1,
        }
    }
    axum::Json(json!({"sent": true, "message": {"id": format!("standin-{arrived}")}}))
}

async fn stats(State(tally): State<Shared>) -> axum::Json<Value> {
    let t = tally
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut e2e = t.e2e_micros.clone();
    e2e.sort_unstable();
    let duplicates: u64 = t
        .seen
        .values()
        .map(|&n| u64::from(n.saturating_sub(1)))
        .sum();
    axum::Json(json!({
        "calls": t.calls,
        "unmarked": t.unmarked,
        "distinct": t.seen.len(),
        "duplicates": duplicates,
        "e2e_p50_us": riposte_bench::percentile(&e2e, 50.0),
        "e2e_p99_us": riposte_bench::percentile(&e2e, 99.0),
    }))
}

async fn reset(State(tally): State<Shared>) -> &'static str {
    *tally
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Tally::default();
    "reset"
}
