//! The doors: shared secrets on the webhook, custom events and admin endpoints.

use crate::support::{Riposte, fixture};

const RULES: &str = "rules: []";

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
    let (status, _) = riposte
        .post_with(
            "/admin/jobs/1/retry",
            &[("authorization", "Bearer admin-token")],
            "",
        )
        .await;
    assert_eq!(status, 404);
}

/// Without an admin token, only this machine may use `/admin`: a request from another
/// address is refused, whatever it asks.
#[tokio::test]
async fn without_an_admin_token_admin_answers_loopback_only() {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use axum::extract::ConnectInfo;
    use riposte::server::{AppState, HttpLimits, Secrets, app};
    use tower::ServiceExt;

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn riposte::store::Store> = Arc::new(
        riposte::store::SqliteStore::open(&dir.path().join("db"))
            .await
            .unwrap(),
    );
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(riposte::rules::RuleSet::empty()));
    let state = AppState {
        store,
        rules: rx,
        intake: Arc::default(),
        delivery: Arc::default(),
        clock: Arc::new(riposte::clock::SystemClock),
        reloader: Arc::new(riposte::reload::Reloader::new(
            vec![dir.path().to_owned()],
            chrono_tz::UTC,
            Vec::new(),
            tx,
        )),
        secrets: Arc::new(Secrets::default()),
    };
    let limits = HttpLimits {
        max_body: 1024,
        request_timeout: std::time::Duration::from_secs(5),
    };
    for (from, expected) in [
        ("10.1.2.3:4000", 401),
        ("127.0.0.1:4000", 200),
        ("[::1]:4000", 200),
    ] {
        let mut request = axum::http::Request::get("/admin/jobs")
            .body(axum::body::Body::empty())
            .unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(from.parse::<SocketAddr>().unwrap()));
        let response = app(state.clone(), limits).oneshot(request).await.unwrap();
        assert_eq!(response.status().as_u16(), expected, "from {from}");
    }
}
