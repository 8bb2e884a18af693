//! Shared secrets on the webhook, custom events and admin endpoints.

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
