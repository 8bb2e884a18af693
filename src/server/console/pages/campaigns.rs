//! The Campaigns page: schedules, runs and their funnels, Preview, Run now, Pause and Resume.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use serde_json::{Value, json};

use super::super::{Signed, view};
use super::{Notice, Plain, back_to, base, render};
use crate::server::{AppState, admin};

/// `GET /ui/campaigns`: each campaign's schedule, next fire times and runs.
pub(in crate::server::console) async fn campaigns(
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
pub(in crate::server::console) async fn preview(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(name): Path<String>,
) -> Response {
    preview_page(&state, &signed, name, false).await
}

/// The preview, as itself or as the confirmation of a run now (`confirm`).
async fn preview_page(state: &AppState, signed: &Signed, name: String, confirm: bool) -> Response {
    let preview = match campaign_preview(state, &name).await {
        Ok(preview) => preview,
        Err(refused) => return refused,
    };
    let title = if confirm {
        format!("Run {name} now?")
    } else {
        format!("Preview of {name}")
    };
    let mut ctx = base(signed, "Campaigns", &title, None);
    ctx["preview"] = preview;
    ctx["name"] = json!(name);
    ctx["confirm"] = json!(confirm);
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
pub(in crate::server::console) async fn confirm_run(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(name): Path<String>,
) -> Response {
    preview_page(&state, &signed, name, true).await
}

/// `POST /ui/campaigns/{name}/run`: the run, once confirmed.
pub(in crate::server::console) async fn run_now(
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
pub(in crate::server::console) async fn pause(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(name): Path<String>,
    Form(form): Form<Plain>,
) -> Response {
    if let Some(refused) = signed.refuse(&form.csrf) {
        return refused;
    }
    let done = admin::pause_campaign(State(state), Path(name.clone())).await;
    back_to(
        "/ui/campaigns",
        done,
        &format!("{name} is paused: its fire times pass without a run."),
    )
}

/// `POST /ui/campaigns/{name}/resume`.
pub(in crate::server::console) async fn resume_campaign(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(name): Path<String>,
    Form(form): Form<Plain>,
) -> Response {
    if let Some(refused) = signed.refuse(&form.csrf) {
        return refused;
    }
    let done = admin::resume_campaign(State(state), Path(name.clone())).await;
    back_to(
        "/ui/campaigns",
        done,
        &format!("{name} runs again from its next fire time."),
    )
}
