//! The console at `/ui`: HTML pages rendered on the server for the people who run the
//! business. Every page reads through the admin API's own handlers and every button calls one,
//! so the console and `/admin/*` cannot disagree.
//!
//! Sign-in takes the admin token and opens a session (an HttpOnly, SameSite=Strict cookie);
//! every form carries the session's CSRF token. Without an admin token configured the console,
//! like the admin API, answers only plainly local requests. Pages work without JavaScript; the
//! one script (served from here, never fetched elsewhere) only adds live updates.

mod pages;
mod rules;
mod session;
mod view;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, HOST, ORIGIN};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{Next, from_fn_with_state, map_response};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

pub use session::Sessions;

use super::AppState;
use super::access;

/// The console's routes, guarded, with its security headers.
pub(super) fn routes(state: AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .route("/ui", get(pages::overview))
        .route("/ui/events", get(pages::events))
        .route("/ui/events/live", get(pages::events_live))
        .route("/ui/events/{seq}", get(pages::event))
        .route("/ui/events/{seq}/simulate", post(pages::simulate))
        .route("/ui/jobs", get(pages::jobs))
        .route("/ui/jobs/{id}/retry", post(pages::retry))
        .route("/ui/jobs/{id}/cancel", post(pages::cancel))
        .route("/ui/campaigns", get(pages::campaigns))
        .route("/ui/campaigns/{name}/preview", get(pages::preview))
        .route("/ui/campaigns/{name}/pause", post(pages::pause))
        .route("/ui/campaigns/{name}/resume", post(pages::resume_campaign))
        .route(
            "/ui/campaigns/{name}/run",
            get(pages::confirm_run).post(pages::run_now),
        )
        .route("/ui/inbox", get(pages::inbox))
        .route("/ui/inbox/resume", post(pages::resume))
        .route("/ui/inbox/reply", post(pages::reply))
        .route("/ui/contacts", get(pages::contacts))
        .route("/ui/contacts/import", post(pages::import_preview))
        .route("/ui/contacts/import/confirm", post(pages::import_confirm))
        .route("/ui/rules", get(rules::list))
        .route("/ui/rules/file", get(rules::file).post(rules::save))
        .route("/ui/rules/test", post(rules::test))
        .route("/ui/logout", post(pages::logout))
        .route_layer(from_fn_with_state(state.clone(), guard));
    Router::new()
        .merge(signed_in)
        .route("/ui/login", get(pages::login_form).post(pages::login))
        .route("/ui/assets/console.css", get(view::stylesheet))
        .route("/ui/assets/console.js", get(view::script))
        .layer(map_response(security_headers))
}

/// Who is signed in, for the handlers: the session id and its CSRF token.
#[derive(Debug, Clone)]
pub(super) struct Signed {
    id: String,
    csrf: String,
}

impl Signed {
    /// The refusal of a form whose CSRF token is not this session's; `None` lets it in.
    fn refuse(&self, given: &str) -> Option<Response> {
        (!access::constant_time_eq(given.as_bytes(), self.csrf.as_bytes())).then(|| {
            view::refused(
                StatusCode::FORBIDDEN,
                "This form is out of date or did not come from the console. Go back, reload the page and try again.",
            )
        })
    }
}

/// Lets a request in when its browser is signed in (else sends it to sign in, and back), and
/// a form only from the console's own pages.
async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if state.secrets.admin.is_none() && !access::is_local(&request) {
        return view::refused(StatusCode::UNAUTHORIZED, NOT_LOCAL);
    }
    let Some((id, session)) = state.console.find(request.headers()) else {
        let back = request
            .uri()
            .path_and_query()
            .map_or("/ui", |p| p.as_str())
            .to_owned();
        let target = format!("/ui/login?next={}", view::query_encode(&back));
        return Redirect::to(&target).into_response();
    };
    if request.method() == Method::POST && !same_origin(&request) {
        return view::refused(
            StatusCode::FORBIDDEN,
            "The console refuses a form sent from another site.",
        );
    }
    request.extensions_mut().insert(Signed {
        id,
        csrf: session.csrf,
    });
    next.run(request).await
}

const NOT_LOCAL: &str = "The console answers only this machine while RIPOSTE_ADMIN_TOKEN is unset. Set the token to sign in from elsewhere.";

/// A form posted from a page of this server, as far as the browser says: an `Origin` (sent
/// with every form post by current browsers) must name this host.
fn same_origin(request: &Request) -> bool {
    let Some(origin) = request.headers().get(ORIGIN) else {
        return true;
    };
    let host = request.headers().get(HOST).map(HeaderValue::as_bytes);
    let origin = origin.as_bytes();
    let bare = origin
        .strip_prefix(b"http://")
        .or_else(|| origin.strip_prefix(b"https://"));
    matches!((bare, host), (Some(bare), Some(host)) if bare == host)
}

/// Whether the browser reached us over HTTPS (through a proxy that says so): the cookie is
/// then marked `Secure`.
fn over_https(request_headers: &axum::http::HeaderMap) -> bool {
    let proto = request_headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let forwarded = request_headers
        .get("forwarded")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("proto=https"));
    proto || forwarded
}

/// No inline script or style, nothing from elsewhere, no framing.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if !headers.contains_key(CONTENT_TYPE) {
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
    }
    response
}
