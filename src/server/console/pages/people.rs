//! The Inbox (chats a person has) and Contacts (search, CSV import) pages.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::{Signed, view};
use super::{Notice, base, recent_events, render};
use crate::server::{AppState, admin};

/// `GET /ui/inbox`: chats handed to a person.
pub(in crate::server::console) async fn inbox(
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
pub(in crate::server::console) struct ResumeForm {
    csrf: String,
    chat: String,
}

/// `POST /ui/inbox/resume`: the bot answers in the chat again.
pub(in crate::server::console) async fn resume(
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
pub(in crate::server::console) struct ReplyForm {
    csrf: String,
    chat: String,
    text: String,
}

/// `POST /ui/inbox/reply`: a message to the chat as the business.
pub(in crate::server::console) async fn reply(
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
pub(in crate::server::console) struct ContactSearch {
    q: Option<String>,
    notice: Option<String>,
}

/// `POST /ui/contacts/import` (a CSV file uploaded): what it would import; nothing written.
pub(in crate::server::console) async fn import_preview(
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
pub(in crate::server::console) struct ImportForm {
    csrf: String,
    csv: String,
}

/// `POST /ui/contacts/import/confirm`: the import, as previewed.
pub(in crate::server::console) async fn import_confirm(
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
pub(in crate::server::console) async fn contacts(
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
