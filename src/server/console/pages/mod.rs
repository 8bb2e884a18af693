//! The console's pages and buttons. Each reads through, or acts by calling, the admin API's
//! handler for the same thing.

mod campaigns;
mod events;
mod jobs;
mod people;

pub(super) use campaigns::*;
pub(super) use events::*;
pub(super) use jobs::*;
pub(super) use people::*;

use axum::extract::{FromRequest, Query, Request, State};
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use chrono::{DateTime, Utc};
use minijinja::context;
use serde::Deserialize;
use serde_json::{Value, json};

use super::session::{self, COOKIE_NAME, LOGIN_COOKIE};
use super::{Signed, access, over_https, same_origin, view};
use crate::server::{AppState, admin};

/// The common context of a signed-in page.
fn base(signed: &Signed, page: &str, title: &str, notice: Option<&str>) -> Value {
    json!({ "page": page, "title": title, "csrf": signed.csrf, "notice": notice })
}

fn render(template: &str, ctx: Value) -> Response {
    view::page(template, crate::templates::to_value(&ctx))
}

/// `?notice=` on a page a button sent the browser back to.
#[derive(Deserialize, Default)]
pub(super) struct Notice {
    notice: Option<String>,
}

/// A form that carries only the CSRF token.
#[derive(Deserialize)]
pub(in crate::server::console) struct Plain {
    pub(in crate::server::console) csrf: String,
}

#[derive(Deserialize, Default)]
pub(super) struct LoginQuery {
    next: Option<String>,
}

/// Where to go after signing in: only a console page, never another site.
fn next_page(next: Option<&str>) -> &str {
    next.filter(|n| n.starts_with("/ui") && !n.starts_with("/ui/login") && !n.contains("//"))
        .unwrap_or("/ui")
}

/// `GET /ui/login`.
pub(super) async fn login_form(
    State(state): State<AppState>,
    Query(query): Query<LoginQuery>,
    headers: axum::http::HeaderMap,
) -> Response {
    let next = next_page(query.next.as_deref()).to_owned();
    login_page(&state, StatusCode::OK, &next, None, over_https(&headers))
}

/// The sign-in page, with a fresh CSRF token in the form and in a cookie of its own: a
/// sign-in counts only when the two agree (a form on another site cannot read the cookie).
fn login_page(
    state: &AppState,
    status: StatusCode,
    next: &str,
    problem: Option<&str>,
    https: bool,
) -> Response {
    let token = session::random_token();
    let secure = if https { "; Secure" } else { "" };
    let cookie =
        format!("{LOGIN_COOKIE}={token}; Path=/ui/login; HttpOnly; SameSite=Strict{secure}");
    let page = view::page_with(
        status,
        "login.html",
        context! {
            next => next,
            token_required => state.secrets.admin.is_some(),
            problem => problem,
            csrf => token,
        },
    );
    ([(SET_COOKIE, cookie)], page).into_response()
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/login`: the admin token (or, without one, a local browser) opens a session.
pub(super) async fn login(State(state): State<AppState>, request: Request) -> Response {
    let local = access::is_local(&request);
    let from_here = same_origin(&request);
    let https = over_https(request.headers());
    let expected = session::cookie(request.headers(), LOGIN_COOKIE).map(str::to_owned);
    let Ok(Form(form)) = Form::<LoginForm>::from_request(request, &state).await else {
        return view::refused(
            StatusCode::BAD_REQUEST,
            "The sign-in form was not filled in.",
        );
    };
    let same_form = expected.is_some_and(|expected| {
        access::constant_time_eq(form.csrf.as_bytes(), expected.as_bytes())
    });
    if !from_here || !same_form {
        return view::refused(
            StatusCode::FORBIDDEN,
            "This sign-in did not come from the console's sign-in page. Reload it and try again.",
        );
    }
    let allowed = match &state.secrets.admin {
        Some(token) => access::constant_time_eq(form.token.as_bytes(), token.as_bytes()),
        None => local,
    };
    let next = next_page(form.next.as_deref()).to_owned();
    if !allowed {
        let problem = if state.secrets.admin.is_some() {
            "That is not the admin token."
        } else {
            super::NOT_LOCAL
        };
        return login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            &next,
            Some(problem),
            https,
        );
    }
    let id = state.console.open();
    let secure = if https { "; Secure" } else { "" };
    let cookie = format!("{COOKIE_NAME}={id}; Path=/ui; HttpOnly; SameSite=Strict{secure}");
    let spent = format!("{LOGIN_COOKIE}=; Path=/ui/login; HttpOnly; SameSite=Strict; Max-Age=0");
    // Two cookies: headers given as an array replace each other, appended ones do not.
    (
        axum::response::AppendHeaders([(SET_COOKIE, cookie), (SET_COOKIE, spent)]),
        Redirect::to(&next),
    )
        .into_response()
}

/// `POST /ui/logout`.
pub(super) async fn logout(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Form(form): Form<Plain>,
) -> Response {
    if let Some(refused) = signed.refuse(&form.csrf) {
        return refused;
    }
    state.console.close(&signed.id);
    let expired = format!("{COOKIE_NAME}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(SET_COOKIE, expired)], Redirect::to("/ui/login")).into_response()
}

/// `GET /ui`: health, the rule set, queues, channels, and activity charts.
pub(super) async fn overview(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
) -> Response {
    let Json(rules) = admin::rules(State(state.clone())).await;
    let mut channels = crate::server::channels(&state).await;
    let open = state.store.open_jobs_by_channel().await.unwrap_or_default();
    let default = state.channels.default_channel().name.clone();
    if let Value::Array(list) = &mut channels {
        for c in list.iter_mut() {
            let name = c["name"].as_str().unwrap_or_default().to_owned();
            let count: u64 = open
                .iter()
                .filter(|(ch, _)| ch.as_deref().unwrap_or(&default) == name)
                .map(|(_, n)| n)
                .sum();
            c["open"] = json!(count);
        }
    }
    let dead = jobs_of(&state, Some("dead"), 1000).await.len();
    let now = state.clock.now();
    let events: Vec<DateTime<Utc>> = recent_events(&state, 1000)
        .await
        .iter()
        .filter_map(|e| e["at"].as_str()?.parse().ok())
        .collect();
    let sends: Vec<DateTime<Utc>> = jobs_of(&state, Some("done"), 1000)
        .await
        .iter()
        .filter_map(|j| j["run_at"].as_str()?.parse().ok())
        .collect();
    let charts = json!({
        "events_hour": view::bars("Events per minute over the last hour", &per_slot(&events, now, 60, 60)),
        "sends_hour": view::bars("Sends per minute over the last hour", &per_slot(&sends, now, 60, 60)),
        "events_day": view::bars("Events per hour over the last day", &per_slot(&events, now, 3600, 24)),
        "sends_day": view::bars("Sends per hour over the last day", &per_slot(&sends, now, 3600, 24)),
    });
    let mut ctx = base(&signed, "Overview", "Overview", None);
    ctx["health"] = json!(match state.store.ready().await {
        Ok(()) => "ready",
        Err(_) => "database unavailable",
    });
    ctx["rules"] = rules;
    ctx["channels"] = channels;
    ctx["dead"] = json!(dead);
    ctx["charts"] = charts;
    render("overview.html", ctx)
}

/// Counts of `times` in each of `slots` slots of `width` seconds ending at `now`, oldest first.
fn per_slot(times: &[DateTime<Utc>], now: DateTime<Utc>, width: i64, slots: usize) -> Vec<u64> {
    let mut counts = vec![0; slots];
    for t in times {
        let age = (now - *t).num_seconds();
        if age < 0 {
            continue;
        }
        let slot = usize::try_from(age / width).unwrap_or(usize::MAX);
        if slot < slots {
            counts[slots - 1 - slot] += 1;
        }
    }
    counts
}

async fn recent_events(state: &AppState, limit: u32) -> Vec<Value> {
    let query = admin::Limit::of(limit, None);
    match admin::events(State(state.clone()), Query(query)).await {
        Ok(Json(v)) => v["events"].as_array().cloned().unwrap_or_default(),
        Err(err) => {
            tracing::error!("console: cannot read events: {err}");
            Vec::new()
        }
    }
}

async fn jobs_of(state: &AppState, status: Option<&str>, limit: u32) -> Vec<Value> {
    let status = status.and_then(|s| serde_json::from_value(json!(s)).ok());
    let query = admin::Limit::of(limit, status);
    match admin::jobs(State(state.clone()), Query(query)).await {
        Ok(Json(v)) => v["jobs"].as_array().cloned().unwrap_or_default(),
        Err(err) => {
            tracing::error!("console: cannot read jobs: {err}");
            Vec::new()
        }
    }
}

/// Back to `page` after a button, with what became of it: `success` when the admin handler
/// answered 200 (or 202), else its error.
fn back_to(
    page: &str,
    done: Result<(StatusCode, Json<Value>), crate::server::ApiError>,
    success: &str,
) -> Response {
    let notice = match done {
        Ok((StatusCode::OK | StatusCode::ACCEPTED, _)) => success.to_owned(),
        Ok((_, Json(answer))) => answer["error"].as_str().unwrap_or("Not done.").to_owned(),
        Err(err) => return err.into_response(),
    };
    Redirect::to(&format!("{page}?notice={}", view::query_encode(&notice))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_only_goes_on_to_console_pages() {
        assert_eq!(
            next_page(Some("/ui/jobs?status=dead")),
            "/ui/jobs?status=dead"
        );
        for elsewhere in [
            "https://evil.example/",
            "//evil.example",
            "/admin/jobs",
            "/ui//evil",
            "/ui/login",
        ] {
            assert_eq!(next_page(Some(elsewhere)), "/ui", "{elsewhere}");
        }
    }

    #[test]
    fn counts_fall_in_their_slot_oldest_first() {
        let now: DateTime<Utc> = "2026-03-02T10:00:00Z".parse().unwrap();
        let times = [
            now - chrono::Duration::seconds(30),
            now - chrono::Duration::seconds(90),
            now - chrono::Duration::hours(2),
        ];
        assert_eq!(per_slot(&times, now, 60, 3), vec![0, 1, 1]);
    }
}
