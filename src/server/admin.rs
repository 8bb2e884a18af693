//! `/admin/*`: what the engine did (events, jobs) and manual job control. Guarded by
//! `RIPOSTE_ADMIN_TOKEN`; without one, only clients on the loopback interface are served.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::webhook::constant_time_eq;
use super::{ApiError, AppState};
use crate::store::JobStatus;

/// Lets a request through when it carries the admin token, or when no token is configured
/// and it comes from this machine.
pub(super) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let allowed = match &state.secrets.admin {
        Some(token) => {
            let given = request
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            constant_time_eq(given.as_bytes(), token.as_bytes())
        }
        None => request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_none_or(|ConnectInfo(addr)| addr.ip().is_loopback()),
    };
    if allowed {
        next.run(request).await
    } else {
        ApiError::Unauthorized.into_response()
    }
}

#[derive(Deserialize)]
pub(super) struct Limit {
    limit: Option<u32>,
    status: Option<JobStatus>,
}

/// `GET /admin/events?limit=N`: the most recent events and what each rule made of them.
pub(super) async fn events(
    State(state): State<AppState>,
    Query(q): Query<Limit>,
) -> Result<Json<Value>, ApiError> {
    let events = state
        .store
        .recent_events(q.limit.unwrap_or(50).min(1000))
        .await?;
    Ok(Json(json!({ "events": events })))
}

/// `GET /admin/jobs?status=dead&limit=N`.
pub(super) async fn jobs(
    State(state): State<AppState>,
    Query(q): Query<Limit>,
) -> Result<Json<Value>, ApiError> {
    let jobs = state
        .store
        .jobs(q.status, q.limit.unwrap_or(100).min(1000))
        .await?;
    Ok(Json(json!({ "jobs": jobs })))
}

/// `POST /admin/jobs/{id}/retry`: a dead or cancelled job goes back in the queue.
pub(super) async fn retry(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if state.store.retry_job(id, Utc::now()).await? {
        Ok((StatusCode::OK, Json(json!({ "retried": id }))))
    } else {
        Ok((
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no dead or cancelled job {id}") })),
        ))
    }
}

/// `DELETE /admin/jobs/{id}`: a pending job is cancelled.
pub(super) async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if state.store.cancel_job(id).await? {
        Ok((StatusCode::OK, Json(json!({ "cancelled": id }))))
    } else {
        Ok((
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no pending job {id}") })),
        ))
    }
}
