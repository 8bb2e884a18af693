//! The doors: shared secrets on the webhook, custom events, admin and metrics; admin's
//! local-only mode without a token; cross-site requests; an open webhook refused at start.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use riposte::server::{AppState, Doors, Secrets, app};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

use crate::support::{Riposte, fixture};

const RULES: &str = "rules: []";

/// Request headers, as name and value.
type Headers<'a> = &'a [(&'a str, &'a str)];

#[tokio::test]
async fn the_webhook_secret_is_required_when_set() {
    let riposte =
        Riposte::start_with(RULES, |s| s.webhook_secret = Some("s3cret-value".into())).await;
    let body = fixture("message-text-private.json").to_string();
    let (status, _) = riposte.post("/webhook", body.clone()).await;
    assert_eq!(status, 401);
    let (status, _) = riposte
        .post_with(
            "/webhook",
            &[("x-riposte-secret", "s3cret-valuX")],
            body.clone(),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = riposte
        .post_with("/webhook", &[("x-riposte-secret", "s3cret-value")], body)
        .await;
    assert_eq!(status, 200);
}

/// A wrong secret is answered as soon as the headers are in: a client that announces a large
/// body and sends none still gets its 401, so guessing costs no upload and no memory.
#[tokio::test]
async fn a_wrong_webhook_secret_is_refused_before_the_body_is_read() {
    let riposte =
        Riposte::start_with(RULES, |s| s.webhook_secret = Some("s3cret-value".into())).await;
    let addr = riposte.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-Riposte-Secret: guess\r\nContent-Length: 900000\r\n\r\n{{\"messages\":["
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 1024];
    // The server's request timeout is 10 s: an answer within 3 s did not wait for the body.
    let read = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut answer))
        .await
        .expect("answered before the body came")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

#[tokio::test]
async fn custom_events_need_the_events_token_when_set() {
    let riposte =
        Riposte::start_with(RULES, |s| s.events_token = Some("events-token".into())).await;
    let (status, _) = riposte.post("/events/order_placed", "{}").await;
    assert_eq!(status, 401);
    let (status, _) = riposte
        .post_with(
            "/events/order_placed",
            &[("authorization", "Bearer events-token")],
            "{}",
        )
        .await;
    assert_eq!(status, 202);
    let (status, _) = riposte
        .post_with(
            "/events/order_placed",
            &[("authorization", "bearer events-token")],
            "{}",
        )
        .await;
    assert_eq!(status, 202, "the scheme's case does not matter");
    let (status, answer) = riposte
        .post_with(
            "/events/bad%20name",
            &[("authorization", "Bearer events-token")],
            "{}",
        )
        .await;
    assert_eq!(status, 400, "{answer}");
}

#[tokio::test]
async fn admin_needs_the_admin_token_when_set() {
    let riposte = Riposte::start_with(RULES, |s| s.admin_token = Some("admin-token".into())).await;
    let (status, _) = riposte.post("/admin/jobs/1/retry", "").await;
    assert_eq!(status, 401);
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let (status, _) = riposte
            .post_with(
                "/admin/jobs/1/retry",
                &[("authorization", &format!("{scheme} admin-token"))],
                "",
            )
            .await;
        assert_eq!(status, 404, "{scheme}");
    }
}

/// The app, served in-process, with no admin token: what each request gets is decided by
/// where it says it comes from.
fn tokenless_app(dir: &std::path::Path, store: Arc<dyn riposte::store::Store>) -> axum::Router {
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(riposte::rules::RuleSet::empty()));
    app(AppState {
        store,
        rules: rx,
        intake: Arc::default(),
        delivery: Arc::default(),
        clock: Arc::new(riposte::clock::SystemClock),
        reloader: Arc::new(riposte::reload::Reloader::new(
            vec![dir.to_owned()],
            chrono_tz::UTC,
            Vec::new(),
            Arc::new(riposte::channels::Channels::single()),
            tx,
        )),
        secrets: Arc::new(Secrets::default()),
        doors: Arc::new(Doors::default()),
        channels: Arc::new(riposte::channels::Channels::single()),
        instances_live: Arc::default(),
        groups: None,
        console: Default::default(),
    })
}

/// Without an admin token, only a request that is plainly local may use `/admin`: from a
/// loopback peer, through no proxy, to a local host name. A reverse proxy on the same machine
/// (forwarding headers) or a DNS rebinding page (its own host name) is refused.
#[tokio::test]
async fn without_an_admin_token_admin_answers_plainly_local_requests_only() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn riposte::store::Store> = Arc::new(
        riposte::store::SqliteStore::open(&dir.path().join("db"))
            .await
            .unwrap(),
    );
    let app = tokenless_app(dir.path(), store);
    let cases: &[(Option<&str>, Headers<'_>, u16)] = &[
        (Some("127.0.0.1:4000"), &[("host", "127.0.0.1:8080")], 200),
        (Some("[::1]:4000"), &[("host", "[::1]:8080")], 200),
        (Some("127.0.0.1:4000"), &[("host", "localhost")], 200),
        (
            Some("[::ffff:127.0.0.1]:4000"),
            &[("host", "localhost:8080")],
            200,
        ),
        (Some("10.1.2.3:4000"), &[("host", "127.0.0.1:8080")], 401),
        (None, &[("host", "127.0.0.1:8080")], 401),
        (
            Some("127.0.0.1:4000"),
            &[("host", "riposte.example.com")],
            401,
        ),
        (
            Some("127.0.0.1:4000"),
            &[("host", "attacker.example:8080")],
            401,
        ),
        (Some("127.0.0.1:4000"), &[], 401),
        (
            Some("127.0.0.1:4000"),
            &[("host", "localhost"), ("x-forwarded-for", "203.0.113.9")],
            401,
        ),
        (
            Some("127.0.0.1:4000"),
            &[("host", "localhost"), ("x-real-ip", "203.0.113.9")],
            401,
        ),
        (
            Some("127.0.0.1:4000"),
            &[("host", "localhost"), ("forwarded", "for=203.0.113.9")],
            401,
        ),
    ];
    for (from, headers, expected) in cases {
        let mut request = axum::http::Request::get("/admin/jobs");
        for (name, value) in *headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(axum::body::Body::empty()).unwrap();
        if let Some(from) = from {
            request
                .extensions_mut()
                .insert(ConnectInfo(from.parse::<SocketAddr>().unwrap()));
        }
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(status, *expected, "from {from:?} with {headers:?}");
        if status == 401 {
            let body = String::from_utf8_lossy(&body);
            assert!(body.contains("RIPOSTE_ADMIN_TOKEN"), "{body}");
        }
    }
}

/// A page in the operator's browser cannot drive admin: a state-changing request with a
/// foreign `Origin`, or with a body type a plain form can send, is refused.
#[tokio::test]
async fn admin_refuses_state_changes_a_page_on_another_site_could_send() {
    let riposte = Riposte::start(RULES).await;
    let own = riposte.url.clone();
    let refused: &[(&str, &str, Headers<'_>)] = &[
        (
            "POST",
            "/admin/reload",
            &[("origin", "http://evil.example")],
        ),
        ("POST", "/admin/reload", &[("origin", "null")]),
        (
            "DELETE",
            "/admin/jobs/1",
            &[("origin", "http://localhost:1")],
        ),
        ("POST", "/admin/reload", &[("content-type", "text/plain")]),
        (
            "POST",
            "/admin/campaigns/x/run",
            &[("content-type", "application/x-www-form-urlencoded")],
        ),
        (
            "POST",
            "/admin/chats/1/resume",
            &[("content-type", "multipart/form-data; boundary=x")],
        ),
    ];
    for (method, path, headers) in refused {
        let (status, answer) = riposte.send(method, path, headers, "").await;
        assert_eq!(status, 403, "{method} {path} {headers:?}: {answer}");
    }
    let allowed: &[(&str, &str, Headers<'_>)] = &[
        ("POST", "/admin/reload", &[]),
        (
            "POST",
            "/admin/reload",
            &[("content-type", "application/json")],
        ),
        ("POST", "/admin/reload", &[("origin", own.as_str())]),
        // Reading is not changing: a foreign origin may not read the answer anyway.
        ("GET", "/admin/jobs", &[("origin", "http://evil.example")]),
    ];
    for (method, path, headers) in allowed {
        let (status, answer) = riposte.send(method, path, headers, "").await;
        assert_eq!(status, 200, "{method} {path} {headers:?}: {answer}");
    }
}

#[tokio::test]
async fn a_valid_token_allows_form_types_but_never_a_foreign_origin() {
    let riposte = Riposte::start_with(RULES, |s| s.admin_token = Some("admin-token".into())).await;
    let token = ("authorization", "Bearer admin-token");
    let (status, _) = riposte
        .send(
            "POST",
            "/admin/reload",
            &[token, ("content-type", "text/plain")],
            "",
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = riposte
        .send(
            "POST",
            "/admin/reload",
            &[token, ("origin", "https://evil.example")],
            "",
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn metrics_need_the_admin_token_when_one_is_set() {
    let riposte = Riposte::start_with(RULES, |s| s.admin_token = Some("admin-token".into())).await;
    let (status, _) = riposte.send("GET", "/metrics", &[], "").await;
    assert_eq!(status, 401);
    let (status, text) = riposte
        .send(
            "GET",
            "/metrics",
            &[("authorization", "bearer admin-token")],
            "",
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        text.as_str()
            .unwrap()
            .contains("riposte_requests_refused_total{reason=\"unauthorized\"}")
    );

    let public = Riposte::start_with(RULES, |s| {
        s.admin_token = Some("admin-token".into());
        s.http.metrics_public = true;
    })
    .await;
    let (status, _) = public.send("GET", "/metrics", &[], "").await;
    assert_eq!(status, 200, "--metrics-public");
    let open = Riposte::start(RULES).await;
    let (status, _) = open.send("GET", "/metrics", &[], "").await;
    assert_eq!(status, 200, "no token set, nothing to require");
}

/// Runs `riposte serve` until it exits or says it is listening (then stops it); its exit code
/// (`None` when it was listening) and what it wrote to standard error.
fn serve_until_listening(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/r.yaml"), RULES).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_riposte"))
        .arg("serve")
        .args(["--rules", "rules", "--db", "r.db", "--no-watch"])
        .args(args)
        .current_dir(dir.path())
        .env_remove("RIPOSTE_WEBHOOK_SECRET")
        .env_remove("RIPOSTE_INSECURE_OPEN_WEBHOOK")
        .env_remove("WHAPI_TOKEN")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stderr = String::new();
    // Ends at the exit (end of output) or at the line that says the server is up.
    let listening = loop {
        match lines.next() {
            Some(Ok(line)) => {
                stderr.push_str(&line);
                stderr.push('\n');
                if line.contains("listening on") {
                    break true;
                }
            }
            _ => break false,
        }
    };
    if listening {
        child.kill().unwrap();
        child.wait().unwrap();
        return (None, stderr);
    }
    (child.wait().unwrap().code(), stderr)
}

#[test]
fn serve_refuses_a_webhook_open_to_the_network_without_a_secret() {
    let (code, stderr) = serve_until_listening(&["--listen", "0.0.0.0:0"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    for needed in [
        "RIPOSTE_WEBHOOK_SECRET",
        "X-Riposte-Secret",
        "Whapi.Cloud",
        "--insecure-open-webhook",
    ] {
        assert!(stderr.contains(needed), "`{needed}` missing from: {stderr}");
    }
}

#[test]
fn an_open_webhook_starts_when_asked_for_and_says_so() {
    for (args, env) in [
        (
            &["--listen", "0.0.0.0:0", "--insecure-open-webhook"][..],
            &[][..],
        ),
        (
            &["--listen", "0.0.0.0:0"][..],
            &[("RIPOSTE_INSECURE_OPEN_WEBHOOK", "1")][..],
        ),
    ] {
        let (code, stderr) = serve_until_listening(args, env);
        assert_eq!(code, None, "still serving: {stderr}");
        assert!(
            stderr.contains("WARN") && stderr.contains("INSECURE"),
            "{stderr}"
        );
    }
    let (code, stderr) = serve_until_listening(
        &["--listen", "0.0.0.0:0"],
        &[("RIPOSTE_WEBHOOK_SECRET", "s3cret")],
    );
    assert_eq!(code, None, "a secret opens the door: {stderr}");
    assert!(!stderr.contains("RIPOSTE_WEBHOOK_SECRET"), "{stderr}");
}

#[test]
fn on_loopback_without_a_secret_serve_starts_with_a_warning() {
    let (code, stderr) = serve_until_listening(&["--listen", "127.0.0.1:0"], &[]);
    assert_eq!(code, None, "still serving: {stderr}");
    assert!(
        stderr.contains("WARN") && stderr.contains("RIPOSTE_WEBHOOK_SECRET is not set"),
        "{stderr}"
    );
}
