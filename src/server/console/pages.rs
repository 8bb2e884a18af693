//! The console's pages and buttons. Each reads through, or acts by calling, the admin API's
//! handler for the same thing.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use chrono::{DateTime, Utc};
use minijinja::context;
use serde::Deserialize;
use serde_json::{Value, json};

use super::session::COOKIE_NAME;
use super::{Signed, access, over_https, same_origin, view};
use crate::server::{AppState, admin};
use crate::vocab::JobId;

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
pub(super) struct Plain {
    csrf: String,
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
) -> Response {
    view::page(
        "login.html",
        context! {
            next => next_page(query.next.as_deref()),
            token_required => state.secrets.admin.is_some(),
        },
    )
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

/// `POST /ui/login`: the admin token (or, without one, a local browser) opens a session.
pub(super) async fn login(State(state): State<AppState>, request: Request) -> Response {
    let local = access::is_local(&request);
    let from_here = same_origin(&request);
    let https = over_https(request.headers());
    let Ok(Form(form)) = Form::<LoginForm>::from_request(request, &state).await else {
        return view::refused(
            StatusCode::BAD_REQUEST,
            "The sign-in form was not filled in.",
        );
    };
    if !from_here {
        return view::refused(
            StatusCode::FORBIDDEN,
            "The console refuses a sign-in sent from another site.",
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
        return view::page_with(
            StatusCode::UNAUTHORIZED,
            "login.html",
            context! { next => next, token_required => state.secrets.admin.is_some(), problem => problem },
        );
    }
    let id = state.console.open();
    let secure = if https { "; Secure" } else { "" };
    let cookie = format!("{COOKIE_NAME}={id}; Path=/ui; HttpOnly; SameSite=Strict{secure}");
    ([(SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
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

/// Searches of the event list.
#[derive(Deserialize, Default, serde::Serialize, Clone)]
pub(super) struct EventSearch {
    chat: Option<String>,
    rule: Option<String>,
    kind: Option<String>,
    text: Option<String>,
    /// Only events after this `seq` (live updates).
    after: Option<i64>,
}

impl EventSearch {
    fn is_empty(&self) -> bool {
        [&self.chat, &self.rule, &self.kind, &self.text]
            .iter()
            .all(|v| v.as_deref().is_none_or(|v| v.trim().is_empty()))
    }

    fn matches(&self, event: &Value) -> bool {
        let has = |field: &str, wanted: &Option<String>| {
            wanted.as_deref().map(str::trim).is_none_or(|w| {
                w.is_empty()
                    || event[field]
                        .as_str()
                        .is_some_and(|v| v.to_lowercase().contains(&w.to_lowercase()))
            })
        };
        let rule = self.rule.as_deref().map(str::trim).is_none_or(|w| {
            w.is_empty()
                || event["rules"].as_array().is_some_and(|rules| {
                    rules
                        .iter()
                        .any(|r| r["rule"].as_str().is_some_and(|n| n.contains(w)))
                })
        });
        let after = self
            .after
            .is_none_or(|a| event["seq"].as_i64().is_some_and(|s| s > a));
        has("chat", &self.chat)
            && has("kind", &self.kind)
            && has("text", &self.text)
            && rule
            && after
    }

    /// The search as a query string, for the live updates of the same list.
    fn query(&self) -> String {
        let mut copy = self.clone();
        copy.after = None;
        serde_urlencoded_pairs(&copy)
    }
}

fn serde_urlencoded_pairs(search: &EventSearch) -> String {
    [
        ("chat", &search.chat),
        ("rule", &search.rule),
        ("kind", &search.kind),
        ("text", &search.text),
    ]
    .iter()
    .filter_map(|(k, v)| {
        v.as_deref()
            .map(|v| format!("{k}={}", view::query_encode(v)))
    })
    .collect::<Vec<_>>()
    .join("&")
}

/// `GET /ui/events`: the event log, newest first, searchable.
pub(super) async fn events(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(search): Query<EventSearch>,
) -> Response {
    let all = recent_events(&state, 1000).await;
    let newest = all.first().and_then(|e| e["seq"].as_i64()).unwrap_or(0);
    let events: Vec<&Value> = all.iter().filter(|e| search.matches(e)).take(200).collect();
    let mut ctx = base(&signed, "Events", "Events", None);
    ctx["events"] = json!(events);
    ctx["q"] = json!(search);
    ctx["query"] = json!(search.query());
    ctx["searched"] = json!(!search.is_empty());
    ctx["newest"] = json!(newest);
    ctx["live"] = json!(true);
    render("events.html", ctx)
}

/// `GET /ui/events/live?after=SEQ`: new rows of the event list as they are recorded, as
/// server-sent events (the page's script adds them; without it the page is reloaded by hand).
pub(super) async fn events_live(
    State(state): State<AppState>,
    Query(search): Query<EventSearch>,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    let stream = async_stream(state, search);
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn async_stream(
    state: AppState,
    search: EventSearch,
) -> impl futures_util::Stream<Item = Result<SseEvent, Infallible>> {
    let start = search.after.unwrap_or(0);
    futures_util::stream::unfold(
        (state, search, start),
        |(state, mut search, after)| async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                search.after = Some(after);
                let fresh: Vec<Value> = recent_events(&state, 200)
                    .await
                    .into_iter()
                    .filter(|e| search.matches(e))
                    .collect();
                let Some(newest) = fresh.first().and_then(|e| e["seq"].as_i64()) else {
                    continue;
                };
                let rows = view::fragment(
                    "event_rows.html",
                    crate::templates::to_value(&json!({ "events": fresh })),
                );
                let event = SseEvent::default()
                    .event("rows")
                    .id(newest.to_string())
                    .data(rows.replace('\n', ""));
                return Some((Ok(event), (state, search, newest)));
            }
        },
    )
}

/// `GET /ui/events/{seq}`: one event, its body, every rule's outcome, each action.
pub(super) async fn event(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(seq): Path<i64>,
) -> Response {
    event_page(&state, &signed, seq, None).await
}

async fn event_page(
    state: &AppState,
    signed: &Signed,
    seq: i64,
    simulated: Option<String>,
) -> Response {
    let (status, Json(record)) = match admin::event(State(state.clone()), Path(seq)).await {
        Ok(found) => found,
        Err(err) => return err.into_response(),
    };
    if status == StatusCode::NOT_FOUND {
        return view::refused(StatusCode::NOT_FOUND, &format!("There is no event {seq}."));
    }
    // The jobs the event started name it by its dedupe key.
    let key = format!(
        "{}|{}|{}",
        record["channel"].as_str().unwrap_or_default(),
        record["kind"].as_str().unwrap_or_default(),
        record["id"].as_str().unwrap_or_default()
    );
    let jobs: Vec<Value> = jobs_of(state, None, 1000)
        .await
        .into_iter()
        .filter(|j| j["event"].as_str() == Some(key.as_str()))
        .collect();
    let mut ctx = base(signed, "Events", &format!("Event {seq}"), None);
    ctx["jobs"] = json!(jobs);
    ctx["record"] = record;
    ctx["seq"] = json!(seq);
    ctx["simulated"] = json!(simulated);
    render("event.html", ctx)
}

/// `POST /ui/events/{seq}/simulate`: what today's rules would do with the event.
pub(super) async fn simulate(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(seq): Path<i64>,
    Form(form): Form<Plain>,
) -> Response {
    if let Some(refused) = signed.refuse(&form.csrf) {
        return refused;
    }
    let answer = match admin::simulate(State(state.clone()), Path(seq)).await {
        Ok((_, Json(answer))) => answer,
        Err(err) => return err.into_response(),
    };
    event_page(&state, &signed, seq, Some(simulated_text(&answer))).await
}

/// The rules' outcomes of a simulation, one line per rule and action.
fn simulated_text(answer: &Value) -> String {
    let mut out = String::new();
    if let Some(why) = answer["explained"].as_str() {
        out.push_str(why);
        out.push('\n');
    }
    for rule in answer["rules"].as_array().into_iter().flatten() {
        let field = |name: &str| rule[name].as_str().unwrap_or_default().to_owned();
        out.push_str(&format!("{} {}", field("result"), field("rule")));
        for detail in ["condition", "detail", "reason", "by"] {
            if rule[detail].is_string() {
                out.push_str(&format!(": {}", field(detail)));
            }
        }
        out.push('\n');
        for action in rule["actions"].as_array().into_iter().flatten() {
            let did = match action["error"].as_str() {
                Some(error) => format!("failed: {error}"),
                None => action["effects"].to_string(),
            };
            out.push_str(&format!(
                "  {}: {did}\n",
                action["action"].as_str().unwrap_or("?")
            ));
        }
    }
    if out.is_empty() {
        out.push_str("No rule listens to this kind of event.\n");
    }
    out
}

#[derive(Deserialize, Default)]
pub(super) struct JobFilter {
    status: Option<String>,
    notice: Option<String>,
}

/// `GET /ui/jobs`: jobs, filterable by status, with Retry and Cancel.
pub(super) async fn jobs(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(filter): Query<JobFilter>,
) -> Response {
    let status = filter.status.as_deref().filter(|s| !s.is_empty());
    let jobs = jobs_of(&state, status, 300).await;
    let mut ctx = base(&signed, "Jobs", "Jobs", filter.notice.as_deref());
    ctx["jobs"] = json!(jobs);
    ctx["status"] = json!(status);
    render("jobs.html", ctx)
}

/// `POST /ui/jobs/{id}/retry`.
pub(super) async fn retry(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<i64>,
    Form(form): Form<Plain>,
) -> Response {
    if let Some(refused) = signed.refuse(&form.csrf) {
        return refused;
    }
    let done = admin::retry(State(state), Path(JobId(id))).await;
    back_to_jobs(done, &format!("Job {id} is queued again."))
}

/// `POST /ui/jobs/{id}/cancel`.
pub(super) async fn cancel(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<i64>,
    Form(form): Form<Plain>,
) -> Response {
    if let Some(refused) = signed.refuse(&form.csrf) {
        return refused;
    }
    let done = admin::cancel(State(state), Path(JobId(id))).await;
    back_to_jobs(done, &format!("Job {id} is cancelled."))
}

fn back_to_jobs(
    done: Result<(StatusCode, Json<Value>), crate::server::ApiError>,
    success: &str,
) -> Response {
    let notice = match done {
        Ok((StatusCode::OK, _)) => success.to_owned(),
        Ok((_, Json(answer))) => answer["error"].as_str().unwrap_or("Not done.").to_owned(),
        Err(err) => return err.into_response(),
    };
    Redirect::to(&format!("/ui/jobs?notice={}", view::query_encode(&notice))).into_response()
}

/// `GET /ui/campaigns`: each campaign's schedule, next fire times and runs.
pub(super) async fn campaigns(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(notice): Query<Notice>,
) -> Response {
    let Json(answer) = match admin::campaigns(State(state)).await {
        Ok(answer) => answer,
        Err(err) => return err.into_response(),
    };
    let mut campaigns = answer["campaigns"].clone();
    for campaign in campaigns.as_array_mut().into_iter().flatten() {
        for run in campaign["runs"].as_array_mut().into_iter().flatten() {
            run["funnel"] = json!(view::funnel(run));
        }
    }
    let mut ctx = base(&signed, "Campaigns", "Campaigns", notice.notice.as_deref());
    ctx["campaigns"] = campaigns;
    render("campaigns.html", ctx)
}

/// `GET /ui/campaigns/{name}/preview`: the audience size and the first ten messages.
pub(super) async fn preview(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(name): Path<String>,
) -> Response {
    let preview = match campaign_preview(&state, &name).await {
        Ok(preview) => preview,
        Err(refused) => return refused,
    };
    let mut ctx = base(&signed, "Campaigns", &format!("Preview of {name}"), None);
    ctx["preview"] = preview;
    ctx["name"] = json!(name);
    ctx["confirm"] = json!(false);
    render("campaign_preview.html", ctx)
}

/// The admin preview of a campaign, with each message as people read it.
async fn campaign_preview(state: &AppState, name: &str) -> Result<Value, Response> {
    let query = admin::PreviewQuery::of(10);
    match admin::preview_campaign(State(state.clone()), Path(name.to_owned()), Query(query)).await {
        Ok((StatusCode::OK, Json(mut preview))) => {
            for message in preview["messages"].as_array_mut().into_iter().flatten() {
                message["shown"] = json!(shown_message(&message["work"]));
            }
            Ok(preview)
        }
        Ok((status, Json(answer))) => Err(view::refused(
            status,
            answer["error"].as_str().unwrap_or("No preview."),
        )),
        Err(err) => Err(err.into_response()),
    }
}

/// A planned call as people read it: the text it sends, else the request.
fn shown_message(work: &Value) -> String {
    let body = &work["call"]["body"]["json"];
    for field in ["body", "caption", "title"] {
        if let Some(text) = body[field].as_str() {
            return text.to_owned();
        }
    }
    if body.is_null() {
        work.to_string()
    } else {
        body.to_string()
    }
}

/// `GET /ui/campaigns/{name}/run`: the confirmation, naming who would get the run.
pub(super) async fn confirm_run(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(name): Path<String>,
) -> Response {
    let preview = match campaign_preview(&state, &name).await {
        Ok(preview) => preview,
        Err(refused) => return refused,
    };
    let mut ctx = base(&signed, "Campaigns", &format!("Run {name} now?"), None);
    ctx["preview"] = preview;
    ctx["name"] = json!(name);
    ctx["confirm"] = json!(true);
    render("campaign_preview.html", ctx)
}

/// `POST /ui/campaigns/{name}/run`: the run, once confirmed.
pub(super) async fn run_now(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(name): Path<String>,
    Form(form): Form<Plain>,
) -> Response {
    if let Some(refused) = signed.refuse(&form.csrf) {
        return refused;
    }
    let notice = match admin::run_campaign(State(state), Path(name.clone())).await {
        Ok((StatusCode::ACCEPTED, Json(answer))) => format!(
            "Run {} of {name} started: {} messages planned, {} left out.",
            answer["run"], answer["planned"], answer["skipped"]
        ),
        Ok((_, Json(answer))) => answer["error"].as_str().unwrap_or("Not run.").to_owned(),
        Err(err) => return err.into_response(),
    };
    Redirect::to(&format!(
        "/ui/campaigns?notice={}",
        view::query_encode(&notice)
    ))
    .into_response()
}

/// `POST /ui/campaigns/{name}/pause`.
pub(super) async fn pause(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(name): Path<String>,
    Form(form): Form<Plain>,
) -> Response {
    if let Some(refused) = signed.refuse(&form.csrf) {
        return refused;
    }
    let done = admin::pause_campaign(State(state), Path(name.clone())).await;
    back_to_campaigns(
        done,
        &format!("{name} is paused: its fire times pass without a run."),
    )
}

/// `POST /ui/campaigns/{name}/resume`.
pub(super) async fn resume_campaign(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(name): Path<String>,
    Form(form): Form<Plain>,
) -> Response {
    if let Some(refused) = signed.refuse(&form.csrf) {
        return refused;
    }
    let done = admin::resume_campaign(State(state), Path(name.clone())).await;
    back_to_campaigns(done, &format!("{name} runs again from its next fire time."))
}

fn back_to_campaigns(
    done: Result<(StatusCode, Json<Value>), crate::server::ApiError>,
    success: &str,
) -> Response {
    let notice = match done {
        Ok((StatusCode::OK, _)) => success.to_owned(),
        Ok((_, Json(answer))) => answer["error"].as_str().unwrap_or("Not done.").to_owned(),
        Err(err) => return err.into_response(),
    };
    Redirect::to(&format!(
        "/ui/campaigns?notice={}",
        view::query_encode(&notice)
    ))
    .into_response()
}

/// `GET /ui/inbox`: chats handed to a person.
pub(super) async fn inbox(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(notice): Query<Notice>,
) -> Response {
    let Json(answer) = match admin::chats(State(state.clone())).await {
        Ok(answer) => answer,
        Err(err) => return err.into_response(),
    };
    let events = recent_events(&state, 1000).await;
    let mut handoffs = answer["handoffs"].clone();
    for handoff in handoffs.as_array_mut().into_iter().flatten() {
        // The chat's own key may carry its channel (`sales/4915...`); events name the chat.
        let chat = handoff["chat"].as_str().unwrap_or_default();
        let bare = chat.rsplit('/').next().unwrap_or(chat).to_owned();
        let mut last: Vec<&Value> = events
            .iter()
            .filter(|e| e["chat"].as_str().is_some_and(|c| c.starts_with(&bare)))
            .filter(|e| e["text"].is_string())
            .take(5)
            .collect();
        last.reverse();
        handoff["last"] = json!(last);
    }
    let mut ctx = base(&signed, "Inbox", "Inbox", notice.notice.as_deref());
    ctx["handoffs"] = handoffs;
    render("inbox.html", ctx)
}

#[derive(Deserialize)]
pub(super) struct ResumeForm {
    csrf: String,
    chat: String,
}

/// `POST /ui/inbox/resume`: the bot answers in the chat again.
pub(super) async fn resume(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Form(form): Form<ResumeForm>,
) -> Response {
    if let Some(refused) = signed.refuse(&form.csrf) {
        return refused;
    }
    if let Err(err) = admin::resume(State(state), Path(form.chat.clone())).await {
        return err.into_response();
    }
    let notice = format!("The bot answers in {} again.", form.chat);
    Redirect::to(&format!("/ui/inbox?notice={}", view::query_encode(&notice))).into_response()
}

#[derive(Deserialize)]
pub(super) struct ReplyForm {
    csrf: String,
    chat: String,
    text: String,
}

/// `POST /ui/inbox/reply`: a message to the chat as the business.
pub(super) async fn reply(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Form(form): Form<ReplyForm>,
) -> Response {
    if let Some(refused) = signed.refuse(&form.csrf) {
        return refused;
    }
    let sent = admin::send(
        State(state),
        Path(form.chat.clone()),
        Json(admin::SendBody::of(form.text)),
    )
    .await;
    let notice = match sent {
        Ok(_) => format!("Your message to {} is on its way.", form.chat),
        Err(err) => err.to_string(),
    };
    Redirect::to(&format!("/ui/inbox?notice={}", view::query_encode(&notice))).into_response()
}

#[derive(Deserialize, Default)]
pub(super) struct ContactSearch {
    q: Option<String>,
    notice: Option<String>,
}

/// `POST /ui/contacts/import` (a CSV file uploaded): what it would import; nothing written.
pub(super) async fn import_preview(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    mut form: axum::extract::Multipart,
) -> Response {
    let (mut csrf, mut csv) = (String::new(), String::new());
    while let Ok(Some(field)) = form.next_field().await {
        let name = field.name().unwrap_or_default().to_owned();
        let Ok(text) = field.text().await else {
            return view::refused(StatusCode::BAD_REQUEST, "The file is not text (UTF-8).");
        };
        match name.as_str() {
            "csrf" => csrf = text,
            "file" => csv = text,
            _ => {}
        }
    }
    if let Some(refused) = signed.refuse(&csrf) {
        return refused;
    }
    let query = admin::ImportQuery::of(true);
    let (status, Json(preview)) =
        match admin::import_contacts(State(state), Query(query), csv.clone()).await {
            Ok(answer) => answer,
            Err(err) => return err.into_response(),
        };
    let mut ctx = base(&signed, "Contacts", "Import contacts", None);
    if status != StatusCode::OK {
        ctx["problem"] = preview["error"].clone();
    }
    ctx["preview"] = preview;
    ctx["csv"] = json!(csv);
    render("contacts_import.html", ctx)
}

#[derive(Deserialize)]
pub(super) struct ImportForm {
    csrf: String,
    csv: String,
}

/// `POST /ui/contacts/import/confirm`: the import, as previewed.
pub(super) async fn import_confirm(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Form(form): Form<ImportForm>,
) -> Response {
    if let Some(refused) = signed.refuse(&form.csrf) {
        return refused;
    }
    let query = admin::ImportQuery::of(false);
    let notice = match admin::import_contacts(State(state), Query(query), form.csv).await {
        Ok((StatusCode::OK, Json(done))) => format!("{} contacts imported.", done["contacts"]),
        Ok((_, Json(answer))) => answer["error"]
            .as_str()
            .unwrap_or("Not imported.")
            .to_owned(),
        Err(err) => return err.into_response(),
    };
    Redirect::to(&format!(
        "/ui/contacts?notice={}",
        view::query_encode(&notice)
    ))
    .into_response()
}

/// `GET /ui/contacts?q=`: contacts by number, name or tag.
pub(super) async fn contacts(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(search): Query<ContactSearch>,
) -> Response {
    let query = admin::ContactQuery::of(search.q.clone());
    let Json(answer) = match admin::contacts(State(state), Query(query)).await {
        Ok(answer) => answer,
        Err(err) => return err.into_response(),
    };
    let mut ctx = base(&signed, "Contacts", "Contacts", search.notice.as_deref());
    ctx["contacts"] = answer["contacts"].clone();
    ctx["q"] = json!(search.q);
    render("contacts.html", ctx)
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
