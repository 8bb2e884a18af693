//! Rows as both backends write them: what is turned into text (JSON) before a write, so the
//! write itself only writes, and the readings of stored text both backends share.

use std::collections::BTreeMap;

use crate::store::{StoreError, StoreResult};
use chrono::{TimeZone, Utc};

use crate::vocab::{Job, JobId, JobKind, JobStatus, NewJob, Role, RuleName, Work};

/// A job as it is written: its JSON made on the caller's thread, so the writer only writes.
#[derive(Debug, Clone)]
pub(crate) struct JobRow {
    pub(crate) lane: String,
    pub(crate) channel: Option<String>,
    pub(crate) kind: &'static str,
    pub(crate) rule: String,
    pub(crate) action: String,
    pub(crate) event: String,
    pub(crate) work: String,
    pub(crate) status: &'static str,
    /// Unix milliseconds.
    pub(crate) run_at: i64,
    pub(crate) key: Option<String>,
    pub(crate) contact: Option<String>,
    pub(crate) unless: Option<String>,
    pub(crate) vars: Option<String>,
    pub(crate) campaign_run: Option<i64>,
    pub(crate) error: Option<String>,
    /// The work of a call that may be claimed as it is written, kept so the claimed job
    /// need not be read back.
    pub(crate) ready: Option<Work>,
}

impl JobRow {
    pub(crate) fn new(job: &NewJob) -> StoreResult<Self> {
        let (status, error) = match &job.dead {
            Some(reason) => ("dead", Some(reason.clone())),
            None => ("pending", None),
        };
        Ok(Self {
            lane: job.lane(),
            channel: job.work.channel().map(str::to_owned),
            kind: job.kind.as_str(),
            rule: job.rule.to_string(),
            action: job.action.clone(),
            event: job.event.clone(),
            work: job
                .work
                .to_stored()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            status,
            run_at: job.run_at.timestamp_millis(),
            key: job.key.clone(),
            contact: job.contact.clone(),
            unless: job.unless.as_ref().map(ToString::to_string),
            vars: job.vars.as_ref().map(ToString::to_string),
            campaign_run: job.campaign_run,
            error,
            ready: (job.kind == JobKind::Action
                && job.key.is_none()
                && job.dead.is_none()
                && job.unless.is_none()
                && job.vars.is_none()
                && matches!(job.work, Work::Call(_)))
            .then(|| job.work.clone()),
        })
    }
}

impl JobRow {
    /// The job as written claimed, with its new id, at `now` (ms): what a claim returns.
    pub(crate) fn claimed(&self, id: i64, now: i64, work: &Work) -> StoreResult<Job> {
        let time = |ms: i64| Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
        Ok(Job {
            id: JobId(id),
            kind: stored_kind(self.kind)?,
            rule: RuleName::new(self.rule.as_str()),
            action: self.action.clone(),
            event: self.event.clone(),
            work: work.clone(),
            status: JobStatus::Sending,
            attempts: 1,
            run_at: time(self.run_at),
            key: None,
            contact: self.contact.clone(),
            unless: None,
            vars: None,
            campaign_run: self.campaign_run,
            last_error: None,
            response: None,
            created_at: time(now),
        })
    }
}

/// A job kind as stored.
pub(crate) fn stored_kind(kind: &str) -> StoreResult<JobKind> {
    JobKind::parse(kind).ok_or_else(|| StoreError::Corrupt(format!("job kind `{kind}`")))
}

/// A conversation role as stored.
pub(crate) fn stored_role(name: &str) -> StoreResult<Role> {
    Role::parse(name).ok_or_else(|| StoreError::Corrupt(format!("turn role `{name}`")))
}

/// A contact's attributes as stored (a JSON object of strings).
pub(crate) fn parse_attrs(text: &str) -> StoreResult<BTreeMap<String, String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("contact attrs: {e}")))
}

/// A stored event record with its place in the log.
pub(crate) fn event_record(seq: i64, text: &str) -> StoreResult<serde_json::Value> {
    let mut record: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("event record {seq}: {e}")))?;
    if let Some(fields) = record.as_object_mut() {
        fields.insert("seq".into(), seq.into());
    }
    Ok(record)
}

/// Stored JSON text of a job column, read back.
pub(crate) fn json_text(
    name: &str,
    text: Option<String>,
) -> StoreResult<Option<serde_json::Value>> {
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("job {name}: {e}")))
    })
    .transpose()
}

/// The stage number of the status a sent message is at, in SQL (see [`crate::vocab::sent::stage`]).
pub(super) const STAGE_OF_STATUS: &str = "CASE status WHEN 'sent' THEN 1 WHEN 'failed' THEN 2 \
     WHEN 'delivered' THEN 3 WHEN 'read' THEN 4 WHEN 'played' THEN 5 ELSE 1 END";

/// How long what became of a sent message is kept (statuses, replies, a campaign's funnel).
pub(super) const SENT_KEPT_MS: i64 = 90 * 24 * 3600 * 1000;

/// The campaign messages a chat's reply answers: those sent to it in the day before.
pub(super) const REPLY_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// A poll's options as stored (a JSON list), or none.
pub(super) fn stored_options(options: &[String]) -> Option<String> {
    (!options.is_empty()).then(|| serde_json::to_string(options).unwrap_or_default())
}

/// A poll's stored options.
pub(super) fn read_options(stored: Option<String>) -> Vec<String> {
    stored
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}
