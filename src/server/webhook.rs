//! `POST /webhook`, `/webhook/{*path}` and `POST /events/{name}`: check, store, answer.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use chrono::Utc;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::store::Source;

/// Whapi.Cloud in body mode.
pub(super) async fn whapi(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Accepted>, ApiError> {
    accept_webhook(&state, &headers, String::new(), "POST".into(), &body).await
}

/// Whapi.Cloud in `path` or `method` mode: the event name is in the URL or the HTTP verb.
pub(super) async fn whapi_path(
    State(state): State<AppState>,
    Path(path): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Accepted>, ApiError> {
    accept_webhook(&state, &headers, path, method.as_str().to_owned(), &body).await
}

async fn accept_webhook(
    state: &AppState,
    headers: &HeaderMap,
    path: String,
    method: String,
    body: &[u8],
) -> Result<Json<Accepted>, ApiError> {
    if let Some(secret) = &state.secrets.webhook {
        let given = headers
            .get("x-riposte-secret")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !constant_time_eq(given, secret.as_bytes()) {
            return Err(ApiError::Unauthorized);
        }
    }
    let text = json_object(body)?;
    let id = state
        .store
        .accept(Source::Webhook { path, method }, text, Utc::now())
        .await?;
    state.intake.notify_one();
    crate::metrics::WEBHOOKS_ACCEPTED.inc();
    Ok(Json(Accepted { accepted: id }))
}

/// The answer to a stored webhook: the id it was stored under. Serialised straight from the
/// struct, as every webhook gets one.
#[derive(serde::Serialize)]
pub(super) struct Accepted {
    accepted: i64,
}

/// A custom event from another system.
pub(super) async fn custom(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if let Some(token) = &state.secrets.events {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
            return Err(ApiError::Unauthorized);
        }
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(ApiError::BadRequest(
            "event names use letters, digits, `_`, `-` and `.`".into(),
        ));
    }
    let text = if body.iter().all(u8::is_ascii_whitespace) {
        "{}"
    } else {
        json_object(&body)?
    };
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

/// The body as text if it is one JSON object; otherwise a one-line reason.
fn json_object(body: &[u8]) -> Result<&str, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::BadRequest(format!("body is not UTF-8 (byte {})", e.valid_up_to()))
    })?;
    match serde_json::from_str::<Shape>(text) {
        Ok(Shape("an object")) => Ok(text),
        Ok(Shape(other)) => Err(ApiError::BadRequest(format!(
            "body must be a JSON object, got {other}"
        ))),
        Err(err) => Err(ApiError::BadRequest(format!(
            "body is not valid JSON: {err}"
        ))),
    }
}

/// What kind of JSON value a body is. Reading it checks the whole body but builds nothing:
/// intake parses it again anyway, so the answer to the webhook need not wait for a tree.
struct Shape(&'static str);

impl<'de> serde::Deserialize<'de> for Shape {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};

        struct Kind;

        impl<'de> Visitor<'de> for Kind {
            type Value = Shape;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Shape("an object"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Shape("an array"))
            }
            fn visit_unit<E>(self) -> Result<Shape, E> {
                Ok(Shape("null"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape("a number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape("a string"))
            }
        }

        d.deserialize_any(Kind)
    }
}

/// Compares secrets without leaking, through timing, how much of a guess was right.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, &byte) in b.iter().enumerate() {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ byte);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(body: &str) -> String {
        match json_object(body.as_bytes()) {
            Ok(text) => format!("ok: {text}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn only_a_json_object_is_accepted_and_the_reason_names_what_came() {
        let body = r#"{"messages":[{"id":"a","text":{"body":"\u00e9 [1, {}]"}}],"n":1.5e3}"#;
        assert_eq!(reason(body), format!("ok: {body}"));
        for (body, got) in [
            ("[1, 2]", "an array"),
            ("\"hi\"", "a string"),
            ("42", "a number"),
            ("-1.5", "a number"),
            ("true", "a boolean"),
            ("null", "null"),
        ] {
            assert_eq!(
                reason(body),
                format!("body must be a JSON object, got {got}")
            );
        }
        assert!(reason(r#"{"a": }"#).starts_with("body is not valid JSON: "));
        assert!(reason(r#"{"a": 1} {}"#).starts_with("body is not valid JSON: trailing"));
    }
}
