//! The Rules page: the files served with their problems, a file with its lines and the
//! errors at them, editing (compiled as `check` does before anything is written) and the
//! rule tests.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::pages::Plain;
use super::{Signed, view};
use crate::server::{AppState, admin};

#[derive(Deserialize, Default)]
pub(super) struct FileQuery {
    path: String,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct SaveForm {
    csrf: String,
    text: String,
}

/// `GET /ui/rules`: every rule file with its rules and problems.
pub(super) async fn list(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
) -> Response {
    rules_page(&state, &signed, None)
}

fn rules_page(state: &AppState, signed: &Signed, report: Option<String>) -> Response {
    let set = state.reloader.current();
    let last = state.reloader.last();
    let errors = last.as_ref().map(|l| l.errors.clone()).unwrap_or_default();
    let files: Vec<Value> = set
        .files
        .iter()
        .map(|f| {
            let path = f.to_string_lossy().into_owned();
            let rules = set.rules.iter().filter(|r| *r.file == **f).count();
            let problems = errors.iter().filter(|e| e.starts_with(&format!("{path}:"))).count();
            json!({ "path": path, "query": view::query_encode(&path), "rules": rules, "problems": problems })
        })
        .collect();
    let mut ctx = json!({
        "page": "Rules", "title": "Rules", "csrf": signed.csrf,
        "version": set.version, "last": last, "files": files, "report": report,
    });
    if let Some(last) = &last
        && last.result == "rejected"
    {
        ctx["problem"] = json!(format!(
            "The last reload was rejected ({} problems); the rules before it keep serving.",
            last.errors.len()
        ));
    }
    view::page("rules.html", crate::templates::to_value(&ctx))
}

/// `GET /ui/rules/file?path=FILE`: the file with line numbers and its errors at their lines.
pub(super) async fn file(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(query): Query<FileQuery>,
) -> Response {
    let Some(path) = served(&state, &query.path) else {
        return view::refused(
            StatusCode::NOT_FOUND,
            "That is not a rule file of the set served.",
        );
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) => {
            return view::refused(
                StatusCode::NOT_FOUND,
                &format!("The file cannot be read: {err}"),
            );
        }
    };
    let errors: Vec<Value> = state
        .reloader
        .last()
        .map(|l| l.errors)
        .unwrap_or_default()
        .iter()
        .filter_map(|e| located(&query.path, e))
        .collect();
    file_page(
        &signed,
        &query.path,
        &text,
        &errors,
        query.notice.as_deref(),
        StatusCode::OK,
    )
}

/// `POST /ui/rules/file?path=FILE`: saves the text when the rules compile with it.
pub(super) async fn save(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(query): Query<FileQuery>,
    Form(form): Form<SaveForm>,
) -> Response {
    if let Some(refused) = signed.refuse(&form.csrf) {
        return refused;
    }
    // Browsers send CRLF from a text area: the file keeps the line ends it is written with.
    let text = form.text.replace("\r\n", "\n");
    let saved = admin::save_rule_file(
        State(state.clone()),
        Query(admin::RuleFileQuery::of(query.path.clone())),
        text.clone(),
    )
    .await;
    match saved {
        Ok((StatusCode::OK, Json(report))) => {
            let version = report["version"].as_str().unwrap_or_default();
            let notice = format!(
                "Saved. The rules are {} and now serve version {}.",
                report["result"].as_str().unwrap_or("reloaded"),
                version.get(..12).unwrap_or(version)
            );
            let target = format!(
                "/ui/rules/file?path={}&notice={}",
                view::query_encode(&query.path),
                view::query_encode(&notice)
            );
            Redirect::to(&target).into_response()
        }
        Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(answer))) => {
            let errors: Vec<Value> = answer["problems"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let here = p["file"].as_str() == Some(query.path.as_str());
                    let message = p["message"].as_str().unwrap_or_default();
                    json!({
                        "line": if here { p["line"].clone() } else { json!(1) },
                        "column": if here { p["column"].clone() } else { json!(1) },
                        "message": if here { message.to_owned() } else {
                            format!("{}:{}: {message}", p["file"].as_str().unwrap_or("?"), p["line"])
                        },
                    })
                })
                .collect();
            let mut page = file_page(
                &signed,
                &query.path,
                &text,
                &errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            );
            *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            page
        }
        Ok((status, Json(answer))) => view::refused(
            status,
            answer["error"]
                .as_str()
                .unwrap_or("The file was not saved."),
        ),
        Err(err) => err.into_response(),
    }
}

/// `POST /ui/rules/test`: runs the rule tests and shows the report.
pub(super) async fn test(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Form(form): Form<Plain>,
) -> Response {
    if let Some(refused) = signed.refuse(&form.csrf) {
        return refused;
    }
    let Json(answer) = admin::run_tests(State(state.clone())).await;
    let report = answer["report"].as_str().unwrap_or_default().to_owned();
    rules_page(&state, &signed, Some(report))
}

/// The served rule file written `path`, if there is one (never any other file).
fn served(state: &AppState, path: &str) -> Option<std::path::PathBuf> {
    state
        .reloader
        .current()
        .files
        .iter()
        .find(|f| f.to_string_lossy() == path)
        .cloned()
}

/// A diagnostic line `FILE:LINE:COLUMN: error: MESSAGE` of `path`, as line, column, message.
fn located(path: &str, diagnostic: &str) -> Option<Value> {
    let rest = diagnostic.strip_prefix(path)?.strip_prefix(':')?;
    let mut parts = rest.splitn(3, ':');
    let line: u32 = parts.next()?.parse().ok()?;
    let column: u32 = parts.next()?.parse().ok()?;
    let message = parts.next()?.trim();
    Some(json!({ "line": line, "column": column, "message": message }))
}

fn file_page(
    signed: &Signed,
    path: &str,
    text: &str,
    errors: &[Value],
    notice: Option<&str>,
    status: StatusCode,
) -> Response {
    let lines: Vec<Value> = text
        .lines()
        .enumerate()
        .map(|(n, line)| {
            let here: Vec<&str> = errors
                .iter()
                .filter(|e| e["line"].as_u64() == Some(n as u64 + 1))
                .filter_map(|e| e["message"].as_str())
                .collect();
            json!({ "text": line, "errors": here })
        })
        .collect();
    let ctx = json!({
        "page": "Rules", "title": path, "csrf": signed.csrf, "notice": notice,
        "path": path, "query": view::query_encode(path), "text": text,
        "lines": lines, "errors": errors,
        "problem": if errors.is_empty() { Value::Null } else {
            json!(format!("{} problems: nothing was written.", errors.len()))
        },
    });
    let ctx = if status == StatusCode::OK {
        let mut ctx = ctx;
        ctx["problem"] = Value::Null;
        ctx
    } else {
        ctx
    };
    view::page_with(status, "rule_file.html", crate::templates::to_value(&ctx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diagnostic_of_the_file_is_placed_at_its_line() {
        assert_eq!(
            located(
                "rules/a.yaml",
                "rules/a.yaml:3:12: error: unknown field `txt`"
            ),
            Some(json!({"line": 3, "column": 12, "message": "error: unknown field `txt`"}))
        );
        assert_eq!(located("rules/a.yaml", "rules/b.yaml:3:12: error: x"), None);
    }
}
