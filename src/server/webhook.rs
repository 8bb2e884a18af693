//! `POST /webhook`, `/webhook/{*path}` and `POST /events/{name}`: check, store, answer.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use chrono::Utc;
use serde_json::{Value, json};

use super::{ApiError, AppState, body};
use crate::store::Source;

/// Whapi.Cloud in body mode.
pub(super) async fn whapi(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Accepted>, ApiError> {
    accept_webhook(&state, String::new(), "POST".into(), body).await
}

/// Whapi.Cloud in `path` or `method` mode: the event name is in the URL or the HTTP verb.
pub(super) async fn whapi_path(
    State(state): State<AppState>,
    Path(path): Path<String>,
    method: Method,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Accepted>, ApiError> {
    accept_webhook(&state, path, method.as_str().to_owned(), body).await
}

/// Stores a webhook body that passed its door (the rate and the secret, checked before the
/// body was read).
async fn accept_webhook(
    state: &AppState,
    path: String,
    method: String,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Accepted>, ApiError> {
    let body = read(state, body)?;
    let text = body::webhook(&body, state.doors.limits.max_items)?;
    let id = state
        .store
        .accept(Source::Webhook { path, method }, text, Utc::now())
        .await?;
    state.intake.notify_one();
    crate::metrics::WEBHOOKS_ACCEPTED.inc();
    Ok(Json(Accepted { accepted: id }))
}

/// The body, or why it could not be read in full (413 past `--max-body`).
fn read(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!(
                "body is larger than the limit of {} bytes (--max-body)",
                state.doors.limits.max_body
            ))
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    })
}

/// The answer to a stored webhook: the id it was stored under. Serialised straight from the
/// struct, as every webhook gets one.
#[derive(serde::Serialize)]
pub(super) struct Accepted {
    accepted: i64,
}

/// A custom event from another system (the token, when set, was checked at the door).
pub(super) async fn custom(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(ApiError::BadRequest(
            "event names use letters, digits, `_`, `-` and `.`".into(),
        ));
    }
    let body = read(&state, body)?;
    let text = body::custom(&body)?;
    let declared = state.rules.borrow().declared.get(&name).cloned();
    if let Some(event) = declared {
        // The body is one JSON object (checked above); a declared event must fit before it
        // is stored, so the sender hears of a mistake while it can still fix it.
        let data: Value = serde_json::from_str(text)
            .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
        let problems = event.problems(&data);
        if !problems.is_empty() {
            return Err(ApiError::InvalidEvent {
                event: name,
                problems,
            });
        }
    }
    let id = state
        .store
        .accept(Source::Custom { name }, text, Utc::now())
        .await?;
    state.intake.notify_one();
    crate::metrics::WEBHOOKS_ACCEPTED.inc();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": format!("e{id}") })),
    ))
}
