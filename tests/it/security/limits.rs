//! Bounded work per request: slow clients, connection counts, item counts, nesting, rates.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{DEADLINE, HELLO_RULES, Riposte, fixture};

/// A connection to the server, spoken to byte by byte.
async fn connect(riposte: &Riposte) -> TcpStream {
    TcpStream::connect(riposte.url.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection; what it sent, and when it closed.
async fn until_closed(stream: &mut TcpStream) -> (String, std::time::Instant) {
    let mut got = Vec::new();
    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    (
        String::from_utf8_lossy(&got).into_owned(),
        std::time::Instant::now(),
    )
}

/// One `GET /healthz` on a kept-alive connection; the answer's head and body.
async fn health(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 512];
    while !answer.ends_with(b"ok") {
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut chunk))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// A client that opens a connection and sends its request head slowly, or never, is cut
/// off after the header timeout instead of holding the connection forever.
#[tokio::test]
async fn a_request_head_that_never_completes_is_cut_off() {
    let riposte = Riposte::start_with(HELLO_RULES, |s| {
        s.http.connections.header_timeout = Duration::from_millis(300);
    })
    .await;
    let mut silent = connect(&riposte).await;
    let opened = std::time::Instant::now();
    let mut slow = connect(&riposte).await;
    slow.write_all(b"POST /webhook HTTP/1.1\r\nHost: localhost\r\nX-A: ")
        .await
        .unwrap();
    let (sent, closed) = until_closed(&mut slow).await;
    assert!(closed - opened >= Duration::from_millis(300), "{sent}");
    let (_, closed) = until_closed(&mut silent).await;
    assert!(closed - opened >= Duration::from_millis(300));
}

/// Between requests a connection may stay silent for the idle timeout, longer than the
/// header timeout, and is closed after it.
#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let riposte = Riposte::start_with(HELLO_RULES, |s| {
        s.http.connections.header_timeout = Duration::from_millis(200);
        s.http.connections.idle_timeout = Duration::from_millis(1500);
    })
    .await;
    let mut stream = connect(&riposte).await;
    assert!(health(&mut stream).await.starts_with("HTTP/1.1 200"));
    // Silence longer than the header timeout: an idle connection is not a slow head.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(health(&mut stream).await.starts_with("HTTP/1.1 200"));
    let answered = std::time::Instant::now();
    let (more, closed) = until_closed(&mut stream).await;
    assert_eq!(more, "");
    assert!(closed - answered >= Duration::from_millis(1500));
}

/// At the cap, a new connection waits until an open one closes, instead of taking another
/// file descriptor.
#[tokio::test]
async fn connections_over_the_cap_wait_for_a_free_one() {
    let riposte = Riposte::start_with(HELLO_RULES, |s| {
        s.http.connections.max_connections = 2;
    })
    .await;
    let mut first = connect(&riposte).await;
    let mut second = connect(&riposte).await;
    // Answered, so both are being served.
    health(&mut first).await;
    health(&mut second).await;
    let mut third = connect(&riposte).await;
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "served a third connection over a cap of two"
    );
    drop(first);
    let answered = tokio::time::timeout(DEADLINE, third.read(&mut byte)).await;
    assert!(
        matches!(answered, Ok(Ok(1))),
        "served once a connection closed"
    );
}

fn messages(count: usize) -> Value {
    let one = fixture("message-text-private.json")["messages"][0].clone();
    let list: Vec<Value> = (0..count)
        .map(|n| {
            let mut m = one.clone();
            m["id"] = json!(format!("forged-{n}"));
            m["from"] = json!(format!("49151{n:08}"));
            m["chat_id"] = json!(format!("49151{n:08}@s.whatsapp.net"));
            m["text"]["body"] = json!("hallo");
            m
        })
        .collect();
    json!({ "messages": list, "event": {"type": "messages", "event": "post"}, "channel_id": "c" })
}

/// The forged batch: one body of thousands of messages to numbers of the sender's choosing
/// is refused whole; nothing is stored and nothing is sent.
#[tokio::test]
async fn a_body_with_more_items_than_the_limit_is_refused_and_nothing_is_stored() {
    let riposte = Riposte::start_with(HELLO_RULES, |s| {
        s.http.max_body = 10 * 1024 * 1024;
    })
    .await;
    let refused_before = riposte
        .metric("riposte_requests_refused_total{reason=\"too_large\"}")
        .await;
    let (status, answer) = riposte.post("/webhook", messages(3000).to_string()).await;
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("3000 items"),
        "{answer}"
    );
    let refused = riposte
        .metric("riposte_requests_refused_total{reason=\"too_large\"}")
        .await;
    assert!(refused > refused_before);
    // A body within the limit goes through; the refused one left no trace before it.
    riposte.webhook(&messages(2)).await;
    riposte.whapi.wait_for(2).await;
    let events = riposte.wait_events(2).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(riposte.whapi.received().len(), 2);
}

fn nested(levels: usize) -> String {
    format!(
        r#"{{"messages":[],"deep":{}1{}}}"#,
        "[".repeat(levels - 1),
        "]".repeat(levels - 1)
    )
}

/// Nesting that intake could not read back is refused at the door with 400, not stored and
/// then dropped; the deepest body intake can read is accepted and processed.
#[tokio::test]
async fn nesting_deeper_than_intake_reads_is_refused_at_the_door() {
    let riposte = Riposte::start(HELLO_RULES).await;
    let (status, answer) = riposte.post("/webhook", nested(129)).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("nested"),
        "{answer}"
    );
    let (status, _) = riposte.post("/events/deep", nested(5000)).await;
    assert_eq!(status, 400);
    let (status, answer) = riposte
        .post("/webhook", nested(riposte::server::MAX_DEPTH))
        .await;
    assert_eq!(status, 200, "{answer}");
    let events = riposte.wait_events(1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["result"], "unknown family", "{events:?}");
}

/// The event list is served from stored summaries: after a body of a thousand long messages
/// (9 MB), a page of 50 reads no body; the detail of one event explains it from the body.
#[tokio::test]
async fn the_event_list_reads_summaries_not_bodies() {
    let riposte = Riposte::start_with("rules: []", |s| {
        s.http.max_body = 10 * 1024 * 1024;
    })
    .await;
    let mut body = messages(1000);
    let long = format!("hallo {}", "x".repeat(9000));
    for m in body["messages"].as_array_mut().unwrap() {
        m["text"]["body"] = json!(long);
    }
    let body = body.to_string();
    assert!(body.len() > 9_000_000, "{}", body.len());
    riposte.webhook(&serde_json::from_str(&body).unwrap()).await;
    riposte.wait_events(1000).await;
    let started = std::time::Instant::now();
    let page = riposte.get("/admin/events?limit=50").await;
    let took = started.elapsed();
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 50);
    for event in events {
        assert!(
            event.get("explained").is_none(),
            "the list explains nothing: {event}"
        );
        let text = event["text"].as_str().unwrap();
        assert_eq!(
            text.chars().count(),
            281,
            "cut to 280 characters and an ellipsis"
        );
    }
    eprintln!("a page of 50 after a 9 MB body: {took:?}");
    let detail = riposte
        .get(&format!("/admin/events/{}", events[0]["seq"]))
        .await;
    assert_eq!(detail["explained"], true, "{detail}");
    assert_eq!(detail["text"], json!(long), "the detail has the whole text");
    let (status, _) = riposte.send("GET", "/admin/events/999999", &[], "").await;
    assert_eq!(status, 404);
}

/// One source may post so many webhooks and custom events a second; past that it gets 429
/// with `Retry-After`, and the refusals are counted.
#[tokio::test]
async fn a_flood_from_one_source_is_refused_with_retry_after() {
    let riposte = Riposte::start_with(HELLO_RULES, |s| s.http.rate = Some(5)).await;
    let before = riposte
        .metric("riposte_requests_refused_total{reason=\"rate_limited\"}")
        .await;
    let mut statuses = Vec::new();
    for n in 0..8 {
        let (status, _) = riposte.post("/webhook", messages(1).to_string()).await;
        statuses.push(status);
        let (status, _) = riposte.post(&format!("/events/ping{n}"), "{}").await;
        statuses.push(status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let passed = statuses.iter().filter(|s| **s == 200 || **s == 202).count();
    // Five at once, and perhaps one more refilled while the others were sent.
    assert!((5..=7).contains(&passed), "{statuses:?}");
    let response = reqwest::Client::new()
        .post(format!("{}/webhook", riposte.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1);
    let after = riposte
        .metric("riposte_requests_refused_total{reason=\"rate_limited\"}")
        .await;
    assert!(after > before);
    // Admin and health are not rate limited.
    let (status, _) = riposte.send("GET", "/admin/jobs", &[], "").await;
    assert_eq!(status, 200);
}
