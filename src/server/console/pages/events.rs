//! The Events page: the event log, live, and one event with what the rules did.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::{Signed, view};
use super::{Plain, base, jobs_of, recent_events, render};
use crate::server::{AppState, admin};

/// Searches of the event list.
#[derive(Deserialize, Default, serde::Serialize, Clone)]
pub(in crate::server::console) struct EventSearch {
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
        query_of(&copy)
    }
}

fn query_of(search: &EventSearch) -> String {
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
pub(in crate::server::console) async fn events(
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
pub(in crate::server::console) async fn events_live(
    State(state): State<AppState>,
    Query(search): Query<EventSearch>,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    let stream = new_rows(state, search);
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn new_rows(
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
pub(in crate::server::console) async fn event(
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
pub(in crate::server::console) async fn simulate(
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
