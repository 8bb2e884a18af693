//! The durable store: webhook intake, dedupe, contacts, jobs and the event log.
//!
//! [`Store`] is the narrow interface the rest of Riposte uses; [`SqliteStore`] is the embedded
//! default. A PostgreSQL backend implements the same trait for multi-instance deployments.

mod sqlite;

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use sqlite::SqliteStore;

use crate::actions::OutboundRequest;

/// A failure of the database itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

/// Result alias for store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// A person Riposte knows: tags and attributes set by rules or imports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub phone: String,
    pub tags: BTreeSet<String>,
    pub attrs: BTreeMap<String, String>,
}

/// A change to a contact made by a `tag`, `untag` or `set` action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactChange {
    Tag {
        phone: String,
        tag: String,
    },
    Untag {
        phone: String,
        tag: String,
    },
    Set {
        phone: String,
        key: String,
        value: String,
    },
}

impl Contact {
    /// Applies a change in memory, so later rules of the same event see it.
    pub fn apply(&mut self, change: &ContactChange) {
        match change {
            ContactChange::Tag { tag, .. } => {
                self.tags.insert(tag.clone());
            }
            ContactChange::Untag { tag, .. } => {
                self.tags.remove(tag);
            }
            ContactChange::Set { key, value, .. } => {
                self.attrs.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Where a stored body came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A Whapi.Cloud webhook; `path` is what followed `/webhook/`.
    Webhook { path: String, method: String },
    /// `POST /events/{name}`.
    Custom { name: String },
}

/// A body accepted with a 2xx and not yet processed.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub id: i64,
    pub source: Source,
    pub body: String,
    pub received_at: DateTime<Utc>,
}

/// A job to be created: one outbound call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewJob {
    pub rule: String,
    pub action: String,
    pub event: String,
    pub request: OutboundRequest,
    pub run_at: DateTime<Utc>,
}

/// What processing one stored body decided, committed atomically.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Dedupe keys of the events processed, with how long each is remembered.
    pub seen: Vec<(String, DateTime<Utc>)>,
    pub contact_changes: Vec<ContactChange>,
    pub jobs: Vec<NewJob>,
    /// One JSON record per event: kind, id and each rule's result.
    pub records: Vec<serde_json::Value>,
}

/// The state of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Pending,
    Sending,
    Done,
    Dead,
    Cancelled,
}

impl JobStatus {
    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Done => "done",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> StoreResult<Self> {
        Ok(match s {
            "pending" => Self::Pending,
            "sending" => Self::Sending,
            "done" => Self::Done,
            "dead" => Self::Dead,
            "cancelled" => Self::Cancelled,
            other => return Err(StoreError::Corrupt(format!("job status `{other}`"))),
        })
    }
}

/// A stored job.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: i64,
    pub rule: String,
    pub action: String,
    pub event: String,
    pub request: OutboundRequest,
    pub status: JobStatus,
    /// Calls made so far (including the one in flight for a claimed job).
    pub attempts: u32,
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// How a claimed job ended this time.
#[derive(Debug, Clone)]
pub enum JobResult {
    Done { response: String },
    Retry { at: DateTime<Utc>, error: String },
    Dead { error: String },
}

/// The embedded or external database behind Riposte.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a body durably and returns its id; a 2xx may be answered once this returns.
    async fn accept(&self, source: Source, body: &str, at: DateTime<Utc>) -> StoreResult<i64>;
    /// Stored bodies not processed yet, oldest first.
    async fn unprocessed(&self, limit: u32) -> StoreResult<Vec<Inbound>>;
    /// Which of these dedupe keys were already processed and are still remembered.
    async fn seen(&self, keys: &[String], now: DateTime<Utc>) -> StoreResult<BTreeSet<String>>;
    /// A contact's tags and attributes (empty if unknown).
    async fn contact(&self, phone: &str) -> StoreResult<Contact>;
    /// Commits everything processing one body decided and marks it processed, atomically.
    async fn complete(
        &self,
        inbound: i64,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Claims due jobs, at most one per ordering lane, for `lease`; returns them claimed.
    async fn claim_jobs(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Job>>;
    /// Records how a claimed job ended.
    async fn finish_job(&self, id: i64, result: &JobResult, now: DateTime<Utc>) -> StoreResult<()>;
    /// When the next pending job is due, if any.
    async fn next_job_due(&self) -> StoreResult<Option<DateTime<Utc>>>;
    /// Jobs, newest first, optionally of one status.
    async fn jobs(&self, status: Option<JobStatus>, limit: u32) -> StoreResult<Vec<Job>>;
    /// Puts a dead or cancelled job back in the queue; false if no such job.
    async fn retry_job(&self, id: i64, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Cancels a pending job; false if no such pending job.
    async fn cancel_job(&self, id: i64) -> StoreResult<bool>;
    /// Most recent event records, newest first.
    async fn recent_events(&self, limit: u32) -> StoreResult<Vec<serde_json::Value>>;
    /// Forgets dedupe keys past their time and old event records.
    async fn prune(&self, now: DateTime<Utc>) -> StoreResult<()>;
    /// Whether the database answers and accepts writes.
    async fn ready(&self) -> StoreResult<()>;
}
