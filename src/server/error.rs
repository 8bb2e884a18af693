//! The one error type handlers return; its response never shows internals.

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::metrics::{REFUSED, Refusal};
use crate::store::StoreError;

/// Why a request was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or wrong credentials")]
    Unauthorized,
    /// Admin without a token, asked by a request it cannot trust to be local.
    #[error(
        "admin answers only local requests while RIPOSTE_ADMIN_TOKEN is unset; set it and send `Authorization: Bearer TOKEN`"
    )]
    NotLocal,
    /// A state-changing admin request a browser page on another site could have sent.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("more than {limit} requests a second from this address; try again shortly")]
    TooMany { limit: u32, retry_after: Duration },
    /// A declared custom event whose data does not fit its declaration: each problem.
    #[error("`{event}` does not fit its declaration: {}", problems.join("; "))]
    InvalidEvent {
        event: String,
        problems: Vec<String>,
    },
    #[error("storage unavailable")]
    Store(#[from] StoreError),
}

impl ApiError {
    /// The reason `/metrics` counts this refusal under, if it is one.
    fn refusal(&self) -> Option<Refusal> {
        Some(match self {
            Self::BadRequest(_) => Refusal::BadRequest,
            Self::Unauthorized | Self::NotLocal => Refusal::Unauthorized,
            Self::Forbidden(_) => Refusal::Forbidden,
            Self::TooLarge(_) => Refusal::TooLarge,
            Self::TooMany { .. } => Refusal::RateLimited,
            Self::InvalidEvent { .. } => Refusal::InvalidEvent,
            Self::Store(_) => return None,
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(reason) = self.refusal() {
            REFUSED.inc(reason);
        }
        let status = match &self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::NotLocal => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::InvalidEvent { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Store(err) => {
                // Logged here, once, where it becomes a 5xx; Whapi will retry the webhook.
                tracing::error!("request failed: {err}");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        let mut body = json!({ "error": self.to_string() });
        if let Self::InvalidEvent { problems, .. } = &self {
            body["problems"] = json!(problems);
        }
        let mut response = (status, Json(body)).into_response();
        if let Self::TooMany { retry_after, .. } = self {
            // Whole seconds, rounded up: `Retry-After: 0` would invite an immediate retry.
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(RETRY_AFTER, seconds.max(1).into());
        }
        response
    }
}
