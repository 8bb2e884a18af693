//! Number verification: which numbers of a list exist on WhatsApp, checked with Whapi.Cloud's
//! `POST /contacts` in small, paced batches. Progress is kept in the database, so an
//! interrupted run resumes where it stopped and never checks a number twice.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::delivery::RetryPolicy;
use crate::store::{Store, StoreError};
use crate::vocab::{OutboundRequest, Payload, Target};
use crate::whapi::{CallOutcome, Client};

/// How the check is paced.
#[derive(Debug, Clone)]
pub struct Pace {
    /// Numbers per request (Whapi's own checker uses 5).
    pub batch: usize,
    /// Pause between two requests (Whapi's own checker waits 10 s).
    pub every: Duration,
    /// Ask WhatsApp again instead of using Whapi's cache.
    pub force: bool,
    /// The channel to check through (`None`: the default channel).
    pub channel: Option<String>,
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            batch: 5,
            every: Duration::from_secs(10),
            force: false,
            channel: None,
        }
    }
}

/// One number's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub phone: String,
    /// `valid` or `invalid`.
    pub status: String,
    pub wa_id: Option<String>,
}

/// How far a run is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub valid: usize,
    pub resumed: usize,
}

/// Why a run stopped early; what was checked so far is kept.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Whapi.Cloud refused the check: {0}")]
    Rejected(String),
    #[error("Whapi.Cloud kept failing: {0}")]
    Unavailable(String),
    #[error("Whapi.Cloud answered something unexpected: {0}")]
    BadAnswer(String),
    #[error(
        "no token: checking numbers needs the channel's token (WHAPI_TOKEN, or the channel's token_env)"
    )]
    NoToken,
}

/// The identity of a list, so the same list resumes and a different one starts afresh.
pub fn run_id(phones: &[String]) -> String {
    let mut hash = Sha256::new();
    for phone in phones {
        hash.update(phone.as_bytes());
        hash.update(b"\n");
    }
    hash.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks every number, resuming a run of the same list; returns the results in list order.
pub async fn verify(
    store: &dyn Store,
    client: &Client,
    phones: &[String],
    pace: Pace,
    mut report: impl FnMut(Progress),
) -> Result<Vec<Checked>, VerifyError> {
    if client.is_dry(&check_request(&[], &pace)) {
        return Err(VerifyError::NoToken);
    }
    let run = run_id(phones);
    let mut known: BTreeMap<String, (String, Option<String>)> = store.verified(&run).await?;
    let todo: Vec<&String> = phones.iter().filter(|p| !known.contains_key(*p)).collect();
    let mut progress = Progress {
        done: phones.len() - todo.len(),
        total: phones.len(),
        resumed: phones.len() - todo.len(),
        ..Progress::default()
    };
    progress.valid = known.values().filter(|(s, _)| s == "valid").count();
    report(progress);
    for (i, batch) in todo.chunks(pace.batch.max(1)).enumerate() {
        if i > 0 {
            tokio::time::sleep(pace.every).await;
        }
        let results = check_batch(client, batch, &pace).await?;
        let rows: Vec<(String, String, Option<String>)> = results
            .iter()
            .map(|c| (c.phone.clone(), c.status.clone(), c.wa_id.clone()))
            .collect();
        store.record_verified(&run, &rows, Utc::now()).await?;
        for c in results {
            progress.done += 1;
            progress.valid += usize::from(c.status == "valid");
            known.insert(c.phone, (c.status, c.wa_id));
        }
        report(progress);
    }
    Ok(phones
        .iter()
        .map(|p| {
            let (status, wa_id) = known
                .get(p)
                .cloned()
                .unwrap_or_else(|| ("unknown".into(), None));
            Checked {
                phone: p.clone(),
                status,
                wa_id,
            }
        })
        .collect())
}

/// The check of `batch` through the channel `pace` names.
fn check_request(batch: &[&String], pace: &Pace) -> OutboundRequest {
    OutboundRequest {
        target: Target::Whapi,
        method: "POST".into(),
        path: "/contacts".into(),
        headers: Vec::new(),
        body: Some(Payload::Json(
            json!({ "contacts": batch, "force_check": pace.force }),
        )),
        lane: "verify".into(),
        channel: pace.channel.clone(),
        pin: None,
    }
}

async fn check_batch(
    client: &Client,
    batch: &[&String],
    pace: &Pace,
) -> Result<Vec<Checked>, VerifyError> {
    let request = check_request(batch, pace);
    let policy = RetryPolicy {
        base: Duration::from_secs(2),
        cap: Duration::from_secs(60),
        max_attempts: 6,
        max_age: Duration::from_secs(600),
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        match client.call(&request, "").await {
            CallOutcome::Delivered { body, .. } => return parse_answer(batch, &body),
            CallOutcome::Rejected { error } => return Err(VerifyError::Rejected(error)),
            CallOutcome::Retry { error, retry_after } => {
                match policy.next_delay(attempt, retry_after, rand::random::<f64>()) {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => return Err(VerifyError::Unavailable(error)),
                }
            }
        }
    }
}

/// Matches Whapi's `{contacts: [{input, status, wa_id}]}` back to the numbers asked about.
fn parse_answer(batch: &[&String], body: &str) -> Result<Vec<Checked>, VerifyError> {
    let answer: Value =
        serde_json::from_str(body).map_err(|e| VerifyError::BadAnswer(format!("{e}: {body}")))?;
    let items = answer["contacts"]
        .as_array()
        .ok_or_else(|| VerifyError::BadAnswer(format!("no `contacts` list: {body}")))?;
    let by_input: BTreeMap<&str, &Value> = items
        .iter()
        .filter_map(|i| Some((i["input"].as_str()?, i)))
        .collect();
    Ok(batch
        .iter()
        .map(|phone| {
            let item = by_input.get(phone.as_str());
            Checked {
                phone: (*phone).clone(),
                status: item
                    .and_then(|i| i["status"].as_str())
                    .unwrap_or("unknown")
                    .to_owned(),
                // The id becomes a contact's phone (`--tag`): digits only, like a sender's.
                wa_id: item
                    .and_then(|i| i["wa_id"].as_str())
                    .and_then(crate::events::phone_number),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::parse_answer;

    #[test]
    fn a_wa_id_that_is_not_digits_is_not_kept() {
        let asked = ["4915112345678".to_owned(), "4917098765432".to_owned()];
        let batch: Vec<&String> = asked.iter().collect();
        let body = r#"{"contacts":[
            {"input":"4915112345678","status":"valid","wa_id":"4915112345678"},
            {"input":"4917098765432","status":"valid","wa_id":"=cmd|' /C calc'!A0"}]}"#;
        let checked = parse_answer(&batch, body).unwrap();
        assert_eq!(checked[0].wa_id.as_deref(), Some("4915112345678"));
        assert_eq!(checked[1].wa_id, None);
    }
}
