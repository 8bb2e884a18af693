//! The durable store: webhook intake, dedupe, contacts, jobs and the event log.
//!
//! The contract (`contract.rs`) is what the rest of Riposte uses, split by concern; [`open`]
//! picks the backend from the database's address. SQLite, in one file, is the embedded default.

mod contract;
pub mod copy;
mod postgres;
pub(crate) mod rows;
mod sqlite;

use std::path::Path;
use std::sync::Arc;

pub use contract::{
    AdminStore, CampaignRun, CampaignStore, ChannelFilter, ChannelHealth, Completed, Conflict,
    ContactStore, GroupActivity, Handover, Inbound, InstanceReport, IntakeStore, JobQuery,
    JobStore, Known, Lookup, MemberSeen, NewRun, Op, Outcome, Source, Store,
};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// What a stored webhook or job survives once it is committed (and the webhook answered).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// A crash or kill of the process; the operating system still writes it to disk.
    #[default]
    Process,
    /// A power loss or kernel crash too: every commit waits for the disk to flush.
    PowerLoss,
}

/// The name of one running Riposte among those sharing a database: the claims it holds are
/// its own, and only it releases them early (when it starts again).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Instance(String);

impl Instance {
    /// An instance by name.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// This machine's name, which a restarted Riposte on the same machine has again.
    pub fn of_this_machine() -> Self {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|name| name.trim().to_owned())
            .unwrap_or_default();
        Self(if name.is_empty() {
            "riposte".into()
        } else {
            name
        })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Instance {
    fn default() -> Self {
        Self::of_this_machine()
    }
}

/// How a store is opened.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    pub durability: Durability,
    /// Who this process is among those sharing the database.
    pub instance: Instance,
}

/// A failure of the database itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend refused or failed an operation; the message is the driver's.
    #[error("database error ({backend}): {message}")]
    Backend {
        backend: &'static str,
        message: String,
    },
    #[error("database migration failed: {0}")]
    Migrate(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// A write shared with other requests (a group commit) failed, or the writer stopped.
    #[error("database write failed: {0}")]
    Write(String),
    /// The address names no backend this build has.
    #[error("{0}")]
    Unsupported(String),
    /// A completion lost a race and wrote nothing (`IntakeStore::complete` answers it as
    /// [`Completed::Conflict`]).
    #[error("another instance completed or changed the same events or chats first")]
    Conflict(Box<Conflict>),
}

/// Result alias for store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Opens the database at `address`: `postgres://…` (or `postgresql://…`) for PostgreSQL;
/// `sqlite:PATH`, `sqlite://PATH` or a plain file path for SQLite.
pub async fn open(address: &str, options: OpenOptions) -> StoreResult<Arc<dyn Store>> {
    if address.starts_with("postgres://") || address.starts_with("postgresql://") {
        return Ok(Arc::new(PgStore::open(address, options).await?));
    }
    if let Some(path) = address
        .strip_prefix("sqlite://")
        .or_else(|| address.strip_prefix("sqlite:"))
    {
        return Ok(Arc::new(
            SqliteStore::open_with_options(Path::new(path), options).await?,
        ));
    }
    if let Some((scheme, _)) = address.split_once("://") {
        return Err(StoreError::Unsupported(format!(
            "no database backend for `{scheme}://` addresses; use a file path or `sqlite:PATH` (SQLite), or `postgres://user:password@host/db` (PostgreSQL)"
        )));
    }
    Ok(Arc::new(
        SqliteStore::open_with_options(Path::new(address), options).await?,
    ))
}
