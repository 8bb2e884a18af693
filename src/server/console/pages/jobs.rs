//! The Jobs page: jobs by status, Retry and Cancel.

use crate::vocab::JobId;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::{Extension, Form};
use serde::Deserialize;
use serde_json::json;

use super::super::Signed;
use super::{Plain, back_to, base, jobs_of, render};
use crate::server::{AppState, admin};

#[derive(Deserialize, Default)]
pub(in crate::server::console) struct JobFilter {
    status: Option<String>,
    notice: Option<String>,
}

/// `GET /ui/jobs`: jobs, filterable by status, with Retry and Cancel.
pub(in crate::server::console) async fn jobs(
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
pub(in crate::server::console) async fn retry(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<i64>,
    Form(form): Form<Plain>,
) -> Response {
    if let Some(refused) = signed.refuse(&form.csrf) {
        return refused;
    }
    let done = admin::retry(State(state), Path(JobId(id))).await;
    back_to("/ui/jobs", done, &format!("Job {id} is queued again."))
}

/// `POST /ui/jobs/{id}/cancel`.
pub(in crate::server::console) async fn cancel(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<i64>,
    Form(form): Form<Plain>,
) -> Response {
    if let Some(refused) = signed.refuse(&form.csrf) {
        return refused;
    }
    let done = admin::cancel(State(state), Path(JobId(id))).await;
    back_to("/ui/jobs", done, &format!("Job {id} is cancelled."))
}
