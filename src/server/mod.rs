//! The HTTP surface: webhook intake, custom events, health. Handlers only check, store and
//! answer; all processing happens in the workers after the answer.

mod access;
mod admin;
mod body;
mod console;
mod error;
pub mod listen;
mod rate;
mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::{Notify, watch};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use body::MAX_DEPTH;
pub use console::Sessions;
pub use error::ApiError;
pub use rate::RateLimit;

use crate::clock::Clock;
use crate::reload::Reloader;
use crate::rules::RuleSet;
use crate::store::Store;

/// What handlers share: cheap handles only.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub rules: watch::Receiver<Arc<RuleSet>>,
    /// Woken after a body is stored so intake picks it up at once.
    pub intake: Arc<Notify>,
    /// Woken after jobs are written outside intake (a manual campaign run, a retry).
    pub delivery: Arc<Notify>,
    pub clock: Arc<dyn Clock>,
    pub reloader: Arc<Reloader>,
    pub secrets: Arc<Secrets>,
    /// The limits every request is held to, and the per-source rate.
    pub doors: Arc<Doors>,
    /// The WhatsApp numbers served.
    pub channels: Arc<crate::channels::Channels>,
    /// Instances alive on the database, this one included, as this one last counted.
    pub instances_live: Arc<std::sync::atomic::AtomicU32>,
    /// Lists a group's members for a campaign run now (`None`: runs with such an audience
    /// are refused).
    pub groups: Option<Arc<dyn crate::campaigns::GroupDirectory>>,
    /// Browsers signed in to the console.
    pub console: Arc<Sessions>,
}

/// Shared secrets that guard the endpoints; never logged.
#[derive(Default)]
pub struct Secrets {
    /// Required in `X-Riposte-Secret` on `/webhook` when set.
    pub webhook: Option<String>,
    /// Required as `Authorization: Bearer` on `/events/*` when set.
    pub events: Option<String>,
    /// Required as `Authorization: Bearer` on `/admin/*` when set; unset, loopback only.
    pub admin: Option<String>,
}

/// Limits of the HTTP layer.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Largest request body in bytes; larger bodies get 413.
    pub max_body: usize,
    /// Longest time one request may take, body included.
    pub request_timeout: Duration,
    /// Items (messages, statuses, participants...) one webhook body may hold; more get 413.
    pub max_items: usize,
    /// Requests a second one source may make to `/webhook` and `/events`; `None` for no limit.
    pub rate: Option<u32>,
    /// `/metrics` answers without the admin token.
    pub metrics_public: bool,
    /// Slow and idle connections, and how many there may be.
    pub connections: listen::ConnectionLimits,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_body: 10 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            max_items: 1000,
            rate: Some(2000),
            metrics_public: false,
            connections: listen::ConnectionLimits {
                header_timeout: Duration::from_secs(10),
                idle_timeout: Duration::from_secs(60),
                max_connections: 1024,
            },
        }
    }
}

/// The limits in force, with the state they need.
#[derive(Debug)]
pub struct Doors {
    pub limits: HttpLimits,
    rate: Option<RateLimit>,
}

impl Doors {
    /// Doors with these limits and empty rate buckets.
    pub fn new(limits: HttpLimits) -> Self {
        Self {
            limits,
            rate: limits.rate.map(RateLimit::new),
        }
    }
}

impl Default for Doors {
    fn default() -> Self {
        Self::new(HttpLimits::default())
    }
}

/// The router with every endpoint and layer.
pub fn app(state: AppState) -> Router {
    let limits = state.doors.limits;
    let admin = Router::new()
        .route("/admin/events", get(admin::events))
        .route("/admin/jobs", get(admin::jobs))
        .route("/admin/jobs/{id}/retry", post(admin::retry))
        .route("/admin/jobs/{id}", get(admin::job).delete(admin::cancel))
        .route("/admin/campaigns", get(admin::campaigns))
        .route("/admin/campaigns/{name}/run", post(admin::run_campaign))
        .route("/admin/campaigns/{name}/pause", post(admin::pause_campaign))
        .route(
            "/admin/campaigns/{name}/resume",
            post(admin::resume_campaign),
        )
        .route(
            "/admin/campaigns/{name}/preview",
            get(admin::preview_campaign),
        )
        .route("/admin/chats", get(admin::chats))
        .route("/admin/rules", get(admin::rules))
        .route("/admin/channels", get(admin::channels))
        .route("/admin/reload", post(admin::reload))
        .route("/admin/chats/{chat_id}/resume", post(admin::resume))
        .route("/admin/chats/{chat_id}/send", post(admin::send))
        .route("/admin/events/{seq}", get(admin::event))
        .route("/admin/events/{seq}/simulate", post(admin::simulate))
        .route("/admin/contacts", get(admin::contacts))
        .route("/admin/contacts/import", post(admin::import_contacts))
        .route(
            "/admin/rules/file",
            axum::routing::put(admin::save_rule_file),
        )
        .route("/admin/rules/test", post(admin::run_tests))
        .route_layer(from_fn_with_state(state.clone(), access::admin));
    // Each guard runs before its handler reads the body.
    let webhooks = Router::new()
        .route("/webhook", post(webhook::whapi))
        .route("/webhook/{*path}", any(webhook::whapi_path))
        .route_layer(from_fn_with_state(state.clone(), access::webhook));
    let events = Router::new()
        .route("/events/{name}", post(webhook::custom))
        .route_layer(from_fn_with_state(state.clone(), access::events));
    let metrics = Router::new()
        .route("/metrics", get(metrics))
        .route_layer(from_fn_with_state(state.clone(), access::metrics));
    Router::new()
        .merge(admin)
        .merge(console::routes(state.clone()))
        .merge(webhooks)
        .merge(events)
        .merge(metrics)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
        // Order, innermost first: size limit on the body, then timeout, then panics become
        // 500s, and tracing outermost so it sees the final status.
        .layer(DefaultBodyLimit::max(limits.max_body))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http())
}

async fn metrics(
    State(state): State<AppState>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let set = state.rules.borrow().clone();
    let open = state
        .store
        .open_jobs_by_channel()
        .await
        .unwrap_or_else(|err| {
            tracing::error!("cannot count open jobs for /metrics: {err}");
            Vec::new()
        });
    let default = state.channels.default_channel().name.as_str();
    let mut queue: Vec<(String, u64)> = state
        .channels
        .list()
        .iter()
        .map(|c| (c.name.clone(), 0))
        .collect();
    for (channel, count) in open {
        let name = channel.as_deref().unwrap_or(default);
        match queue.iter_mut().find(|(n, _)| n == name) {
            Some((_, depth)) => *depth += count,
            None => queue.push((name.to_owned(), count)),
        }
    }
    let body = crate::metrics::render(set.rules.len(), set.campaigns.len(), &queue);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let rules = state.rules.borrow().clone();
    match state.store.ready().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({
                "ready": true,
                "rules": rules.rules.len(),
                "version": rules.version,
                "instances_live": state.instances_live.load(std::sync::atomic::Ordering::Relaxed),
                "channels": channels(&state).await,
            })),
        ),
        Err(err) => {
            tracing::error!("not ready: {err}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "ready": false, "error": "database unavailable" })),
            )
        }
    }
}

/// Each channel with the health Whapi.Cloud last reported for it (`unknown` before any).
pub(crate) async fn channels(state: &AppState) -> serde_json::Value {
    let health = state.store.channel_health().await.unwrap_or_else(|err| {
        tracing::error!("cannot read channel health: {err}");
        Vec::new()
    });
    let list: Vec<serde_json::Value> = state
        .channels
        .list()
        .iter()
        .map(|c| {
            let last = health.iter().find(|h| h.name == c.name);
            json!({
                "name": c.name,
                "id": c.id,
                "status": last.map_or("unknown", |h| h.status.as_str()),
                "detail": last.and_then(|h| h.detail.as_deref()),
                "since": last.map(|h| h.at),
            })
        })
        .collect();
    serde_json::Value::Array(list)
}

/// Binds the listener; split from serving so callers learn the port before requests flow.
pub async fn bind(addr: &str) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
