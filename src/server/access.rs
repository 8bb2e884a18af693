//! Who may use which door. Each guard runs before its handler reads the body, so a request
//! without the right secret, or over its source's rate, costs a header check and no more.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};

/// Headers a reverse proxy adds: a request carrying one came from somewhere else, whatever
/// the peer address says.
const FORWARDING: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

/// Content types a page on any site can send with a plain form or `fetch`, no preflight asked.
const CROSS_SITE_TYPES: [&str; 3] = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
];

/// `/webhook`: the source's rate, then the webhook secret when one is set.
pub(super) async fn webhook(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let secret = state.secrets.webhook.as_deref();
    let given = request.headers().get("x-riposte-secret");
    let allowed = secret.is_none_or(|secret| {
        constant_time_eq(
            given.map(|v| v.as_bytes()).unwrap_or_default(),
            secret.as_bytes(),
        )
    });
    intake_door(&state, allowed, request, next).await
}

/// `/events/*`: the source's rate, then the events token when one is set.
pub(super) async fn events(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let token = state.secrets.events.as_deref();
    let allowed = token.is_none_or(|token| bearer_is(request.headers(), token));
    intake_door(&state, allowed, request, next).await
}

/// A door where bodies come in: over the source's rate is refused first (so a flood costs the
/// least), then a request without the right credentials.
async fn intake_door(state: &AppState, allowed: bool, request: Request, next: Next) -> Response {
    if let Err(refused) = within_rate(state, &request) {
        return refused.into_response();
    }
    if !allowed {
        return ApiError::Unauthorized.into_response();
    }
    next.run(request).await
}

/// `/metrics`: the admin token when one is set, unless metrics are public.
pub(super) async fn metrics(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.secrets.admin
        && !state.doors.limits.metrics_public
        && !bearer_is(request.headers(), token)
    {
        return ApiError::Unauthorized.into_response();
    }
    next.run(request).await
}

/// `/admin/*`: the admin token when one is set; without one, only a request that is plainly
/// local. A state-changing request must also be one no page on another site could send.
pub(super) async fn admin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let with_token = match &state.secrets.admin {
        Some(token) if bearer_is(request.headers(), token) => true,
        Some(_) => return ApiError::Unauthorized.into_response(),
        None if is_local(&request) => false,
        None => return ApiError::NotLocal.into_response(),
    };
    if changes_state(request.method())
        && let Err(refused) = same_site(request.headers(), with_token)
    {
        return refused.into_response();
    }
    next.run(request).await
}

fn within_rate(state: &AppState, request: &Request) -> Result<(), ApiError> {
    let Some(limit) = &state.doors.rate else {
        return Ok(());
    };
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(
            std::net::Ipv4Addr::UNSPECIFIED.into(),
            |ConnectInfo(peer)| peer.ip(),
        );
    limit
        .take(source, tokio::time::Instant::now())
        .map_err(|retry_after| ApiError::TooMany {
            limit: limit.per_second(),
            retry_after,
        })
}

/// The token of an `Authorization: Bearer` header; the scheme's case does not matter.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

fn bearer_is(headers: &HeaderMap, token: &str) -> bool {
    constant_time_eq(bearer(headers).unwrap_or("").as_bytes(), token.as_bytes())
}

/// Whether a request without a token may use admin: from a loopback peer, through no proxy,
/// and addressed to this machine by a local name. A local reverse proxy forwards from
/// loopback too, and a DNS rebinding page reaches loopback under its own host name: the
/// headers tell those apart.
pub(super) fn is_local(request: &Request) -> bool {
    let from_loopback = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| peer.ip().to_canonical().is_loopback());
    let headers = request.headers();
    let forwarded = FORWARDING.iter().any(|name| headers.contains_key(*name));
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    from_loopback && !forwarded && host.is_some_and(is_local_host)
}

/// `localhost`, `127.0.0.1` or `[::1]`, with any port.
fn is_local_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, port)) if port.is_empty() || is_port(port) => inside,
            _ => return false,
        },
        None => match host.split_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => host,
        },
    };
    name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "::1"
}

fn is_port(text: &str) -> bool {
    text.strip_prefix(':')
        .unwrap_or(text)
        .bytes()
        .all(|b| b.is_ascii_digit())
}

fn changes_state(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// Refuses what a browser would send for a page on another site: an `Origin` that is not this
/// server's own, or, without a token, a body of a type a plain form can post.
fn same_site(headers: &HeaderMap, with_token: bool) -> Result<(), ApiError> {
    if let Some(origin) = headers.get(ORIGIN) {
        let host = headers.get(HOST).map(|v| v.as_bytes());
        if !is_own_origin(origin.as_bytes(), host) {
            let shown = crate::quote::quoted(&String::from_utf8_lossy(origin.as_bytes()), 200);
            return Err(ApiError::Forbidden(format!(
                "admin refuses a state-changing request sent from another site (Origin `{shown}`)"
            )));
        }
    }
    if with_token {
        return Ok(());
    }
    let media_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    if let Some(media_type) = media_type
        && CROSS_SITE_TYPES.contains(&media_type.as_str())
    {
        return Err(ApiError::Forbidden(format!(
            "admin refuses a `{media_type}` body without a token, as a form on any web page can send one; send no body or `application/json`"
        )));
    }
    Ok(())
}

/// Whether `Origin` names the server the request was sent to (`http` or `https`, the same
/// host and port as `Host`).
fn is_own_origin(origin: &[u8], host: Option<&[u8]>) -> bool {
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        return false;
    };
    let authority = origin
        .strip_prefix(b"http://")
        .or_else(|| origin.strip_prefix(b"https://"));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
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
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_bearer_scheme_is_matched_whatever_its_case() {
        for value in ["Bearer t0k", "bearer t0k", "BEARER  t0k", " Bearer t0k "] {
            assert_eq!(
                bearer(&headers(&[("authorization", value)])),
                Some("t0k"),
                "{value}"
            );
        }
        assert_eq!(bearer(&headers(&[("authorization", "Basic t0k")])), None);
        assert_eq!(bearer(&headers(&[("authorization", "Bearert0k")])), None);
        assert_eq!(bearer(&headers(&[])), None);
    }

    #[test]
    fn local_hosts_are_the_loopback_names_with_any_port() {
        for host in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(is_local_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "127.0.0.2",
            "[::1]x",
            "localhost:80:80",
            "::1",
            "0.0.0.0:8080",
            "",
        ] {
            assert!(!is_local_host(host), "{host}");
        }
    }

    #[test]
    fn only_the_own_origin_passes() {
        assert!(is_own_origin(
            b"http://127.0.0.1:8080",
            Some(b"127.0.0.1:8080")
        ));
        assert!(is_own_origin(
            b"https://Admin.Example",
            Some(b"admin.example")
        ));
        assert!(!is_own_origin(
            b"http://127.0.0.1:8081",
            Some(b"127.0.0.1:8080")
        ));
        assert!(!is_own_origin(b"null", Some(b"127.0.0.1:8080")));
        assert!(!is_own_origin(
            b"http://evil.example",
            Some(b"evil.example.x")
        ));
        assert!(!is_own_origin(b"http://127.0.0.1:8080", None));
    }

    #[test]
    fn form_types_need_a_token_json_and_no_body_do_not() {
        let form = headers(&[(
            "content-type",
            "Application/X-WWW-Form-Urlencoded; charset=x",
        )]);
        assert!(same_site(&form, false).is_err());
        assert!(same_site(&form, true).is_ok());
        let text = headers(&[("content-type", "text/plain")]);
        assert!(same_site(&text, false).is_err());
        assert!(same_site(&headers(&[("content-type", "application/json")]), false).is_ok());
        assert!(same_site(&headers(&[]), false).is_ok());
        let foreign = headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8080"),
        ]);
        assert!(
            same_site(&foreign, true).is_err(),
            "a token does not excuse a foreign origin"
        );
    }
}
