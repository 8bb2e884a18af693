//! `/admin/*`: what the engine did (events, jobs) and manual job control. Guarded by
//! `RIPOSTE_ADMIN_TOKEN`; without one, only plainly local requests are served (see `access`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::campaigns::{self, Trigger};
use crate::store::Op;
use crate::vocab::{ChatState, Contact, HandoffChange, JobId, JobStatus, Work};

#[derive(Deserialize)]
pub(super) struct Limit {
    limit: Option<u32>,
    status: Option<JobStatus>,
    channel: Option<String>,
}

impl Limit {
    /// A query for at most `limit` items, of one job status.
    pub(super) fn of(limit: u32, status: Option<JobStatus>) -> Self {
        Self {
            limit: Some(limit),
            status,
            channel: None,
        }
    }
}

/// Longest text an event shows in the list; its detail shows all of it.
const LISTED_TEXT: usize = 280;

/// `GET /admin/events?limit=N`: the most recent events and what the rules that matched did.
/// Served from the stored records alone: no webhook body is read, however large it was.
pub(super) async fn events(
    State(state): State<AppState>,
    Query(q): Query<Limit>,
) -> Result<Json<Value>, ApiError> {
    let mut events = state
        .store
        .recent_events(q.limit.unwrap_or(50).min(1000))
        .await?;
    for record in &mut events {
        summarise(record);
    }
    Ok(Json(json!({ "events": events })))
}

/// An event record as the list shows it: without what the rules saw, its text cut short.
fn summarise(record: &mut Value) {
    let Some(fields) = record.as_object_mut() else {
        return;
    };
    fields.remove("inputs");
    if let Some(Value::String(text)) = fields.get_mut("text")
        && let Some((cut, _)) = text.char_indices().nth(LISTED_TEXT)
    {
        text.truncate(cut);
        text.push('…');
    }
}

/// `GET /admin/events/{seq}`: one event, with the first condition that failed for every rule
/// of its kind that did not match.
pub(super) async fn event(
    State(state): State<AppState>,
    Path(seq): Path<i64>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Some(mut record) = state.store.event_record(seq).await? else {
        return Ok((
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no event {seq}") })),
        ));
    };
    let set = state.rules.borrow().clone();
    explain(&*state.store, &set, &mut record, false).await?;
    Ok((StatusCode::OK, Json(record)))
}

/// `POST /admin/events/{seq}/simulate`: what the rules as they are now would do with the
/// event (with the contact, chat and time it had); nothing is stored or sent.
pub(super) async fn simulate(
    State(state): State<AppState>,
    Path(seq): Path<i64>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Some(mut record) = state.store.event_record(seq).await? else {
        return Ok((
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no event {seq}") })),
        ));
    };
    let set = state.rules.borrow().clone();
    record["rules"] = json!([]);
    explain(&*state.store, &set, &mut record, true).await?;
    let rules = record["rules"].clone();
    let simulated = match record["explained"].clone() {
        Value::Bool(true) => json!({ "version": set.version, "rules": rules }),
        why => json!({ "version": set.version, "rules": [], "explained": why }),
    };
    Ok((StatusCode::OK, Json(simulated)))
}

/// Fills in, for every rule of the event's kind, the first condition that failed. Intake keeps
/// only the rules that matched (and what the rules saw); the misses are worked out here by
/// evaluating the event again against the same rules with the same contact, chat and time.
async fn explain(
    store: &dyn crate::store::Store,
    set: &crate::rules::RuleSet,
    record: &mut Value,
    current: bool,
) -> Result<(), ApiError> {
    let Some(inputs) = record.as_object_mut().and_then(|r| r.remove("inputs")) else {
        return Ok(());
    };
    let inbound = store
        .inbound(inputs["inbound"].as_i64().unwrap_or(-1))
        .await?;
    if let Some(inbound) = &inbound {
        record["body"] =
            serde_json::from_str(&inbound.body).unwrap_or_else(|_| json!(inbound.body.clone()));
    }
    if !current && record["rules_version"].as_str() != Some(set.version.as_str()) {
        record["explained"] =
            json!("the rules changed since; only the rules that matched or were held are listed");
        return Ok(());
    }
    let parsed = (
        serde_json::from_value::<Contact>(inputs["contact"].clone()),
        serde_json::from_value::<ChatState>(inputs["chat"].clone()),
        record["at"]
            .as_str()
            .map(chrono::DateTime::parse_from_rfc3339),
    );
    let (Ok(contact), Ok(chat), Some(Ok(at))) = parsed else {
        return Ok(());
    };
    let Some(inbound) = inbound else {
        record["explained"] = json!(
            "the webhook body is no longer kept; only the rules that matched or were held are listed"
        );
        return Ok(());
    };
    let (kind, id) = (record["kind"].as_str(), record["id"].as_str());
    let found = crate::intake::events_of(&inbound)
        .into_iter()
        .find(|e| Some(e.kind.to_string().as_str()) == kind && Some(e.id.as_str()) == id);
    let Some(event) = found else {
        return Ok(());
    };
    let at = at.with_timezone(&chrono::Utc);
    let evaluation = crate::engine::evaluate(set, &event, &contact, &chat, at, true);
    let traces: Vec<_> = set
        .rules
        .iter()
        .zip(evaluation.rules)
        .filter(|(rule, _)| rule.events.contains(&event.kind))
        .map(|(_, trace)| trace)
        .collect();
    record["rules"] = json!(traces);
    record["explained"] = json!(true);
    Ok(())
}

/// `GET /admin/channels`: each WhatsApp number served, with the health Whapi.Cloud last
/// reported for it.
pub(super) async fn channels(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "channels": super::channels(&state).await }))
}

/// `GET /admin/jobs?status=dead&channel=NAME&limit=N`.
pub(super) async fn jobs(
    State(state): State<AppState>,
    Query(q): Query<Limit>,
) -> Result<Json<Value>, ApiError> {
    let channel = match &q.channel {
        Some(name) => match state.channels.named(name) {
            Some(_) => Some(crate::store::ChannelFilter {
                name: name.clone(),
                is_default: state.channels.default_channel().name == *name,
            }),
            None => {
                return Err(ApiError::BadRequest(format!(
                    "unknown channel `{}` (channels: {})",
                    crate::quote::quoted(name, 64),
                    state.channels.names().join(", ")
                )));
            }
        },
        None => None,
    };
    let query = crate::store::JobQuery {
        status: q.status,
        channel,
        limit: q.limit.unwrap_or(100).min(1000),
    };
    let jobs = state.store.jobs(query).await?;
    Ok(Json(json!({ "jobs": jobs })))
}

/// `POST /admin/jobs/{id}/retry`: a dead or cancelled job goes back in the queue.
pub(super) async fn retry(
    State(state): State<AppState>,
    Path(id): Path<JobId>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if state.store.retry_job(id, state.clock.now()).await? {
        state.delivery.notify_one();
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
    Path(id): Path<JobId>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if state.store.cancel_job(id, state.clock.now()).await? {
        Ok((StatusCode::OK, Json(json!({ "cancelled": id }))))
    } else {
        Ok((
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no pending or dead job {id}") })),
        ))
    }
}

/// `GET /admin/campaigns`: every campaign with its next fire times and recent runs.
pub(super) async fn campaigns(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let set = state.rules.borrow().clone();
    let now = state.clock.now();
    let paused = state.store.paused_campaigns().await?;
    let mut list = Vec::new();
    for c in &set.campaigns {
        let paused_at = paused.iter().find(|(n, _)| *n == c.name).map(|(_, at)| *at);
        let runs = state.store.campaign_runs(Some(&c.name), 5).await?;
        let next: Vec<String> = c
            .next_fires(now, 5)
            .iter()
            .map(chrono::DateTime::to_rfc3339)
            .collect();
        list.push(json!({
            "name": c.name,
            "description": c.description,
            "enabled": c.enabled,
            "paused_at": paused_at,
            "schedule": c.schedule,
            "schedule_words": campaigns::in_words(&c.schedule),
            "timezone": c.timezone.name(),
            "rate": c.rate,
            "next": next,
            "runs": runs,
        }));
    }
    Ok(Json(json!({ "campaigns": list })))
}

#[derive(Deserialize)]
pub(super) struct PreviewQuery {
    show: Option<usize>,
}

impl PreviewQuery {
    /// Shows the first `show` messages.
    pub(super) fn of(show: usize) -> Self {
        Self { show: Some(show) }
    }
}

/// `GET /admin/campaigns/{name}/preview?show=10`: who a run now would reach and the first
/// messages rendered per recipient; nothing is planned or sent.
pub(super) async fn preview_campaign(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<PreviewQuery>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let set = state.rules.borrow().clone();
    let Some(campaign) = set.campaign(&name) else {
        return Ok((
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no campaign `{name}`") })),
        ));
    };
    let now = state.clock.now();
    let members = match campaigns::members(
        campaign,
        state.store.as_ref(),
        state.groups.as_deref(),
        now,
    )
    .await
    {
        Ok(members) => members,
        Err(campaigns::PlanError::Store(err)) => return Err(err.into()),
        Err(campaigns::PlanError::Audience(why)) => {
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "error": format!("the audience cannot be listed: {why}") })),
            ));
        }
    };
    let known = state.store.contacts().await?;
    let planned = campaigns::plan(campaign, &set.templates, &known, &members, now);
    let mut recipients: Vec<&str> = planned
        .jobs
        .iter()
        .filter_map(|j| j.contact.as_deref())
        .collect();
    recipients.dedup();
    let messages: Vec<Value> = planned
        .jobs
        .iter()
        .take(query.show.unwrap_or(10).min(100))
        .map(|job| {
            json!({
                "to": job.contact,
                "action": job.action,
                "at": job.run_at,
                "work": job.work,
                "not_sent": job.dead,
            })
        })
        .collect();
    Ok((
        StatusCode::OK,
        Json(json!({
            "campaign": campaign.name,
            "recipients": recipients.len(),
            "jobs": planned.jobs.len(),
            "left_out": planned.skipped,
            "messages": messages,
        })),
    ))
}

/// `POST /admin/campaigns/{name}/pause`: the campaign's fire times pass without a run.
pub(super) async fn pause_campaign(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    pause_or_resume(&state, name, true).await
}

/// `POST /admin/campaigns/{name}/resume`: the campaign runs at its next fire time again (the
/// fire times it missed while paused are not sent).
pub(super) async fn resume_campaign(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    pause_or_resume(&state, name, false).await
}

async fn pause_or_resume(
    state: &AppState,
    name: String,
    paused: bool,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if state.rules.borrow().campaign(&name).is_none() {
        return Ok((
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no campaign `{name}`") })),
        ));
    }
    state
        .store
        .set_campaign_paused(&name, paused, state.clock.now())
        .await?;
    Ok((
        StatusCode::OK,
        Json(json!({ "campaign": name, "paused": paused })),
    ))
}

/// `POST /admin/campaigns/{name}/run`: a run now, outside the schedule.
pub(super) async fn run_campaign(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let set = state.rules.borrow().clone();
    let Some(campaign) = set.campaign(&name) else {
        return Ok((
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no campaign `{name}`") })),
        ));
    };
    let now = state.clock.now();
    let launched = campaigns::launch(
        state.store.as_ref(),
        &set,
        campaign,
        now,
        Trigger::Manual,
        now,
        state.groups.as_deref(),
    )
    .await;
    let launched = match launched {
        Ok(launched) => launched,
        Err(campaigns::PlanError::Store(err)) => return Err(err.into()),
        Err(campaigns::PlanError::Audience(why)) => {
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "error": format!("the run was not planned: {why}") })),
            ));
        }
    };
    match launched {
        Some((run, planned, skipped)) => {
            state.delivery.notify_one();
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "run": run, "planned": planned, "skipped": skipped })),
            ))
        }
        None => Ok((
            StatusCode::CONFLICT,
            Json(json!({ "error": "a run for this instant exists already" })),
        )),
    }
}

/// `GET /admin/chats`: chats a human has now.
pub(super) async fn chats(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let handoffs = state.store.handoffs(state.clock.now()).await?;
    Ok(Json(json!({ "handoffs": handoffs })))
}

#[derive(Deserialize)]
pub(super) struct SendBody {
    text: String,
}

impl SendBody {
    /// A message of `text`.
    pub(super) fn of(text: String) -> Self {
        Self { text }
    }
}

/// `POST /admin/chats/{chat_id}/send` `{"text": ...}`: a text message to the chat as the
/// business, through the same delivery as the rules' sends (paced, retried, in the chat's
/// order, on the chat's channel).
pub(super) async fn send(
    State(state): State<AppState>,
    Path(chat): Path<String>,
    Json(body): Json<SendBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let text = body.text.trim();
    if text.is_empty() {
        return Err(ApiError::BadRequest("the message is empty".into()));
    }
    // A chat of another channel than the default is known as `CHANNEL/chat`.
    let (channel, to) = match chat.split_once('/') {
        Some((channel, to)) if state.channels.named(channel).is_some() => (channel, to),
        _ => (crate::vocab::DEFAULT_CHANNEL, chat.as_str()),
    };
    if to.is_empty() || to.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(ApiError::BadRequest(format!(
            "`{}` is not a chat id",
            crate::quote::quoted(&chat, 64)
        )));
    }
    let mut request = crate::vocab::OutboundRequest::text_message(to, text);
    request.through(channel);
    let now = state.clock.now();
    let job = crate::vocab::NewJob::action(
        "console",
        "send",
        &format!("console:{chat}"),
        Work::Call(request),
        now,
    );
    state.store.apply(&[Op::Job(Box::new(job))], now).await?;
    state.delivery.notify_one();
    Ok((StatusCode::ACCEPTED, Json(json!({ "queued": chat }))))
}

/// `POST /admin/chats/{chat_id}/resume`: the bot answers in this chat again.
pub(super) async fn resume(
    State(state): State<AppState>,
    Path(chat): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let op = Op::Apply(Work::Handoff(HandoffChange::End { chat: chat.clone() }));
    state.store.apply(&[op], state.clock.now()).await?;
    Ok(Json(json!({ "resumed": chat })))
}

#[derive(Deserialize)]
pub(super) struct ContactQuery {
    q: Option<String>,
    limit: Option<usize>,
}

impl ContactQuery {
    /// A search for `q` (every contact when `None`).
    pub(super) fn of(q: Option<String>) -> Self {
        Self { q, limit: None }
    }
}

/// `GET /admin/contacts?q=TEXT`: contacts whose number, name or a tag contains `TEXT`.
pub(super) async fn contacts(
    State(state): State<AppState>,
    Query(query): Query<ContactQuery>,
) -> Result<Json<Value>, ApiError> {
    let wanted = query.q.unwrap_or_default().trim().to_lowercase();
    let all = state.store.contacts().await?;
    let found: Vec<&Contact> = all
        .iter()
        .filter(|c| {
            wanted.is_empty()
                || c.phone.contains(&wanted)
                || c.tags.iter().any(|t| t.to_lowercase().contains(&wanted))
                || c.attrs
                    .get("name")
                    .is_some_and(|n| n.to_lowercase().contains(&wanted))
        })
        .take(query.limit.unwrap_or(100).min(1000))
        .collect();
    Ok(Json(json!({ "contacts": found })))
}

#[derive(Deserialize, Default)]
pub(super) struct ImportQuery {
    /// Only say what would be imported.
    #[serde(default)]
    dry_run: bool,
    /// A tag every imported contact also gets.
    tag: Option<String>,
}

impl ImportQuery {
    /// An import (or, with `dry_run`, its preview).
    pub(super) fn of(dry_run: bool) -> Self {
        Self { dry_run, tag: None }
    }
}

/// `POST /admin/contacts/import?dry_run=true` with a CSV body (a `phone` column, `tags` as
/// `a;b`, other columns as attributes): the contacts it holds, and unless `dry_run` they are
/// written. `422` when the CSV cannot be read; nothing is written then.
pub(super) async fn import_contacts(
    State(state): State<AppState>,
    Query(query): Query<ImportQuery>,
    csv: String,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let rows = match crate::campaigns::read_csv_from("the CSV", csv.as_bytes()) {
        Ok(rows) => rows,
        Err(why) => {
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "error": why })),
            ));
        }
    };
    let import = crate::campaigns::contact_import(rows, query.tag.as_deref());
    if !query.dry_run {
        for chunk in import.ops.chunks(5000) {
            state.store.apply(chunk, state.clock.now()).await?;
        }
    }
    let sample: Vec<&Contact> = import.contacts.iter().take(20).collect();
    Ok((
        StatusCode::OK,
        Json(json!({
            "contacts": import.contacts.len(),
            "skipped": import.skipped,
            "sample": sample,
            "written": !query.dry_run,
        })),
    ))
}

#[derive(Deserialize)]
pub(super) struct RuleFileQuery {
    path: String,
}

impl RuleFileQuery {
    /// The rule file written `path`.
    pub(super) fn of(path: String) -> Self {
        Self { path }
    }
}

/// `PUT /admin/rules/file?path=FILE`: replaces a rule file of the set with the body, when the
/// rules compile with it (the same compile and checks as a reload); then reloads. `422` with
/// every problem, and nothing written, when they do not.
pub(super) async fn save_rule_file(
    State(state): State<AppState>,
    Query(query): Query<RuleFileQuery>,
    text: String,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let set = state.reloader.current();
    let Some(path) = set
        .files
        .iter()
        .find(|f| f.to_string_lossy() == query.path)
        .cloned()
    else {
        return Ok((
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "not a rule file of the set served" })),
        ));
    };
    if let Err(problems) = state.reloader.check_edit(path.clone(), text.clone()).await {
        let problems: Vec<Value> = problems
            .iter()
            .map(|d| json!({"file": d.file, "line": d.line, "column": d.column, "message": d.message, "severity": format!("{:?}", d.severity).to_lowercase()}))
            .collect();
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(
                json!({ "error": "the rules do not compile with this file; nothing was written", "problems": problems }),
            ),
        ));
    }
    if let Err(err) = replace_file(&path, &text) {
        tracing::error!("cannot write rule file {}: {err}", path.display());
        return Ok((
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": format!("cannot write the file: {err}") })),
        ));
    }
    let report = state.reloader.reload("admin").await;
    Ok((StatusCode::OK, Json(json!(report))))
}

/// Writes `text` to `path` all at once: a reader (the file watcher, a reload) sees the old
/// file or the new one, never half of it.
fn replace_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// `POST /admin/rules/test`: runs the rule tests of the folders served; the report as text,
/// as `riposte test` prints it.
pub(super) async fn run_tests(State(state): State<AppState>) -> Json<Value> {
    let files = crate::ruletest::find(state.reloader.paths());
    let mut report = String::new();
    let (passed, failed) = crate::ruletest::run_files(&files, |line| {
        report.push_str(line);
        report.push('\n');
    })
    .await;
    Json(json!({ "passed": passed, "failed": failed, "files": files.len(), "report": report }))
}

/// `GET /admin/rules`: the loaded set (version, files, rules, campaigns) and the last reload.
pub(super) async fn rules(State(state): State<AppState>) -> Json<Value> {
    let set = state.reloader.current();
    let rules: Vec<Value> = set
        .rules
        .iter()
        .map(|r| json!({"name": r.name, "file": &*r.file, "line": r.line, "events": r.events.iter().map(ToString::to_string).collect::<Vec<_>>(), "enabled": r.enabled, "shadow": r.shadow}))
        .collect();
    let campaigns: Vec<&str> = set.campaigns.iter().map(|c| c.name.as_str()).collect();
    // Instances sharing the database, each with the rule set it serves: a rollout has
    // converged when every live one shows the same version.
    let now = state.clock.now();
    let instances: Vec<Value> = match state.store.instances().await {
        Ok(list) => list
            .into_iter()
            .map(|i| {
                let live = now - i.seen_at < chrono::Duration::from_std(crate::serve::HEARTBEAT * 3).unwrap_or_default();
                json!({"name": i.name, "version": i.rules_version, "rules": i.rules, "started_at": i.started_at, "seen_at": i.seen_at, "live": live})
            })
            .collect(),
        Err(err) => {
            tracing::error!("cannot read the instances: {err}");
            Vec::new()
        }
    };
    Json(json!({
        "version": set.version,
        "instances": instances,
        "files": set.files,
        "rules": rules,
        "campaigns": campaigns,
        "calendars": set.calendars.keys().collect::<Vec<_>>(),
        "last_reload": state.reloader.last(),
    }))
}

/// `POST /admin/reload`: reload now; `200` with the report, `422` if the rules do not compile.
pub(super) async fn reload(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let report = state.reloader.reload("admin").await;
    let status = if report.result == "rejected" {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    (status, Json(json!(report)))
}

/// `GET /admin/jobs/{id}`: one job, to inspect a dead letter.
pub(super) async fn job(
    State(state): State<AppState>,
    Path(id): Path<JobId>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    Ok(match state.store.job(id).await? {
        Some(job) => (StatusCode::OK, Json(json!(job))),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no job {id}") })),
        ),
    })
}
