//! The embedded SQLite store. One writer connection (SQLite allows one writer at a time, and a
//! single connection never meets `SQLITE_BUSY` from itself) and a small pool of readers.

mod campaigns;
mod jobs;

use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use chrono::{DateTime, TimeZone, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite, Transaction};

use super::{
    CampaignRun, Durability, ChatState, Contact, ContactChange, Handoff, HandoffChange, Inbound, Job,
    JobResult, JobStatus, NewJob, NewRun, Op, Outcome, Source, Store, StoreError, StoreResult,
};

/// How long event records are kept for `/admin/events`.
const EVENT_LOG_KEEP: i64 = 7 * 24 * 3600 * 1000;
/// How long processed bodies are kept after processing.
const INBOUND_KEEP: i64 = 24 * 3600 * 1000;

fn inbound_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<Inbound> {
    let kind: String = row.try_get("source")?;
    let name: String = row.try_get("name")?;
    let source = if kind == "custom" {
        Source::Custom { name }
    } else {
        Source::Webhook {
            path: name,
            method: row.try_get("method")?,
        }
    };
    Ok(Inbound {
        id: row.try_get("id")?,
        source,
        body: row.try_get("body")?,
        received_at: time(row.try_get("received_at")?),
    })
}

/// SQLite in a single file, WAL mode; commits survive the process, or power loss too (see
/// [`Durability`]).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Bodies waiting for the next group commit.
    accepts: mpsc::Sender<Accept>,
}

/// Most bodies stored in one transaction.
const GROUP_COMMIT_MAX: usize = 512;

/// A body to store, and where to send its id once the commit is done.
#[derive(Debug)]
struct Accept {
    source: Source,
    body: String,
    at: DateTime<Utc>,
    done: oneshot::Sender<StoreResult<i64>>,
}

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date; a
    /// commit survives a crash of the process.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        Self::open_durable(path, Durability::Process).await
    }

    /// Opens the database file with the chosen guarantee for commits.
    pub async fn open_durable(path: &Path, durability: Durability) -> StoreResult<Self> {
        let synchronous = match durability {
            // In WAL mode NORMAL writes every commit to the log before answering, so a killed
            // process loses nothing; only a power loss can lose the last commits.
            Durability::Process => SqliteSynchronous::Normal,
            // FULL also waits for the disk to flush the log at every commit.
            Durability::PowerLoss => SqliteSynchronous::Full,
        };
        Self::open_with(path, synchronous).await
    }

    /// A throwaway database for rule tests: nothing waits for the disk.
    pub async fn open_scratch(path: &Path) -> StoreResult<Self> {
        Self::open_with(path, SqliteSynchronous::Off).await
    }

    async fn open_with(path: &Path, synchronous: SqliteSynchronous) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("src/store/migrations/sqlite")
            .run(&writer)
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        let (accepts, queue) = mpsc::channel(4 * GROUP_COMMIT_MAX);
        tokio::spawn(group_commit(writer.clone(), queue));
        Ok(Self {
            writer,
            reader,
            accepts,
        })
    }
}

/// Stores waiting bodies many to a transaction: a commit costs about the same for one row as
/// for hundreds, so under load every webhook waits for one commit instead of a queue of them.
/// Each caller is answered only after the commit that holds its body.
async fn group_commit(writer: SqlitePool, mut queue: mpsc::Receiver<Accept>) {
    let mut batch = Vec::with_capacity(GROUP_COMMIT_MAX);
    while queue.recv_many(&mut batch, GROUP_COMMIT_MAX).await > 0 {
        match insert_inbound(&writer, &batch).await {
            Ok(ids) => {
                for (accept, id) in batch.drain(..).zip(ids) {
                    let _ = accept.done.send(Ok(id));
                }
            }
            Err(err) => {
                let reason = err.to_string();
                for accept in batch.drain(..) {
                    let _ = accept.done.send(Err(StoreError::Write(reason.clone())));
                }
            }
        }
    }
}

async fn insert_inbound(writer: &SqlitePool, batch: &[Accept]) -> StoreResult<Vec<i64>> {
    let mut tx = writer.begin().await?;
    let mut ids = Vec::with_capacity(batch.len());
    for accept in batch {
        let (kind, name, method) = match &accept.source {
            Source::Webhook { path, method } => ("webhook", path.as_str(), method.as_str()),
            Source::Custom { name } => ("custom", name.as_str(), "POST"),
        };
        let id = sqlx::query("INSERT INTO inbound (source, name, method, body, received_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(kind)
            .bind(name)
            .bind(method)
            .bind(&accept.body)
            .bind(ms(accept.at))
            .execute(&mut *tx)
            .await?
            .last_insert_rowid();
        ids.push(id);
    }
    tx.commit().await?;
    Ok(ids)
}

#[async_trait]
impl Store for SqliteStore {
    async fn accept(&self, source: Source, body: &str, at: DateTime<Utc>) -> StoreResult<i64> {
        let (done, id) = oneshot::channel();
        let accept = Accept {
            source,
            body: body.to_owned(),
            at,
            done,
        };
        let closed = || StoreError::Write("the database writer has stopped".into());
        self.accepts.send(accept).await.map_err(|_| closed())?;
        id.await.map_err(|_| closed())?
    }

    async fn unprocessed(&self, limit: u32) -> StoreResult<Vec<Inbound>> {
        let rows = sqlx::query("SELECT id, source, name, method, body, received_at FROM inbound WHERE processed_at IS NULL ORDER BY id LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(inbound_row).collect()
    }

    async fn inbound(&self, id: i64) -> StoreResult<Option<Inbound>> {
        let row = sqlx::query(
            "SELECT id, source, name, method, body, received_at FROM inbound WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(inbound_row).transpose()
    }

    async fn seen(&self, keys: &[String], now: DateTime<Utc>) -> StoreResult<BTreeSet<String>> {
        let mut seen = BTreeSet::new();
        for chunk in keys.chunks(500) {
            let mut q: QueryBuilder<Sqlite> =
                QueryBuilder::new("SELECT key FROM dedupe WHERE expires_at > ");
            q.push_bind(ms(now)).push(" AND key IN (");
            let mut list = q.separated(", ");
            for key in chunk {
                list.push_bind(key);
            }
            q.push(")");
            for row in q.build().fetch_all(&self.reader).await? {
                seen.insert(row.try_get("key")?);
            }
        }
        Ok(seen)
    }

    async fn contact(&self, phone: &str) -> StoreResult<Contact> {
        let mut contact = Contact {
            phone: phone.to_owned(),
            ..Contact::default()
        };
        if phone.is_empty() {
            return Ok(contact);
        }
        if let Some(row) = sqlx::query("SELECT attrs FROM contacts WHERE phone = $1")
            .bind(phone)
            .fetch_optional(&self.reader)
            .await?
        {
            contact.attrs = parse_attrs(&row.try_get::<String, _>("attrs")?)?;
        }
        for row in sqlx::query("SELECT tag FROM contact_tags WHERE phone = $1")
            .bind(phone)
            .fetch_all(&self.reader)
            .await?
        {
            contact.tags.insert(row.try_get("tag")?);
        }
        Ok(contact)
    }

    async fn complete(&self, done: &[(i64, Outcome)], now: DateTime<Utc>) -> StoreResult<()> {
        let now_ms = ms(now);
        let mut tx = self.writer.begin().await?;
        for (inbound, outcome) in done {
            for (key, expires) in &outcome.seen {
                sqlx::query("INSERT INTO dedupe (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at")
                    .bind(key)
                    .bind(ms(*expires))
                    .execute(&mut *tx)
                    .await?;
            }
            for op in &outcome.ops {
                apply_op(&mut tx, op, now).await?;
            }
            for record in &outcome.records {
                sqlx::query("INSERT INTO event_log (at, record) VALUES ($1, $2)")
                    .bind(now_ms)
                    .bind(record.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("UPDATE inbound SET processed_at = $1 WHERE id = $2")
                .bind(now_ms)
                .bind(inbound)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn apply(&self, ops: &[Op], now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        for op in ops {
            apply_op(&mut tx, op, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn chat_state(&self, chat: &str) -> StoreResult<ChatState> {
        let mut state = ChatState::default();
        if chat.is_empty() {
            return Ok(state);
        }
        let row = sqlx::query("SELECT handoff_until, resume_on, handoff_rule, handoff_since FROM chat_state WHERE chat_id = $1 AND handoff_until IS NOT NULL")
            .bind(chat)
            .fetch_optional(&self.reader)
            .await?;
        if let Some(row) = row {
            state.handoff = Some(Handoff {
                chat: chat.to_owned(),
                until: time(row.try_get("handoff_until")?),
                since: time(
                    row.try_get::<Option<i64>, _>("handoff_since")?
                        .unwrap_or_default(),
                ),
                resume_on: row.try_get("resume_on")?,
                rule: row
                    .try_get::<Option<String>, _>("handoff_rule")?
                    .unwrap_or_default(),
            });
        }
        for row in sqlx::query("SELECT rule, fired_at FROM rule_fires WHERE chat_id = $1")
            .bind(chat)
            .fetch_all(&self.reader)
            .await?
        {
            state
                .fired
                .insert(row.try_get("rule")?, time(row.try_get("fired_at")?));
        }
        Ok(state)
    }

    async fn handoffs(&self, now: DateTime<Utc>) -> StoreResult<Vec<Handoff>> {
        let rows = sqlx::query("SELECT chat_id, handoff_until, resume_on, handoff_rule, handoff_since FROM chat_state WHERE handoff_until > $1 ORDER BY handoff_since")
            .bind(ms(now))
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Handoff {
                    chat: row.try_get("chat_id")?,
                    until: time(row.try_get("handoff_until")?),
                    since: time(
                        row.try_get::<Option<i64>, _>("handoff_since")?
                            .unwrap_or_default(),
                    ),
                    resume_on: row.try_get("resume_on")?,
                    rule: row
                        .try_get::<Option<String>, _>("handoff_rule")?
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn contacts(&self) -> StoreResult<Vec<Contact>> {
        let mut contacts: std::collections::BTreeMap<String, Contact> =
            std::collections::BTreeMap::new();
        for row in sqlx::query("SELECT phone, attrs FROM contacts")
            .fetch_all(&self.reader)
            .await?
        {
            let phone: String = row.try_get("phone")?;
            let attrs = parse_attrs(&row.try_get::<String, _>("attrs")?)?;
            contacts.insert(
                phone.clone(),
                Contact {
                    phone,
                    attrs,
                    ..Contact::default()
                },
            );
        }
        for row in sqlx::query("SELECT phone, tag FROM contact_tags")
            .fetch_all(&self.reader)
            .await?
        {
            let phone: String = row.try_get("phone")?;
            let entry = contacts.entry(phone.clone()).or_insert_with(|| Contact {
                phone,
                ..Contact::default()
            });
            entry.tags.insert(row.try_get("tag")?);
        }
        Ok(contacts.into_values().collect())
    }

    async fn campaign_checked(&self, name: &str) -> StoreResult<Option<DateTime<Utc>>> {
        campaigns::checked(&self.reader, name).await
    }

    async fn set_campaign_checked(&self, name: &str, at: DateTime<Utc>) -> StoreResult<()> {
        campaigns::set_checked(&self.writer, name, at).await
    }

    async fn start_campaign_run(
        &self,
        run: &NewRun,
        jobs: &[NewJob],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<i64>> {
        campaigns::start_run(&self.writer, run, jobs, now).await
    }

    async fn campaign_runs(
        &self,
        campaign: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<CampaignRun>> {
        campaigns::runs(&self.reader, campaign, limit).await
    }

    async fn verified(
        &self,
        run: &str,
    ) -> StoreResult<std::collections::BTreeMap<String, (String, Option<String>)>> {
        let rows = sqlx::query("SELECT phone, status, wa_id FROM verifications WHERE run = $1")
            .bind(run)
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("phone")?,
                    (r.try_get("status")?, r.try_get("wa_id")?),
                ))
            })
            .collect()
    }

    async fn record_verified(
        &self,
        run: &str,
        checked: &[(String, String, Option<String>)],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        for (phone, status, wa_id) in checked {
            sqlx::query(
                "INSERT INTO verifications (run, phone, status, wa_id, checked_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (run, phone) DO UPDATE SET status = excluded.status, wa_id = excluded.wa_id, checked_at = excluded.checked_at",
            )
            .bind(run)
            .bind(phone)
            .bind(status)
            .bind(wa_id)
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_jobs(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Job>> {
        let rows = sqlx::query(AssertSqlSafe(jobs::claim_sql()))
            .bind(ms(now))
            .bind(ms(lease_until))
            .bind(i64::from(limit))
            .fetch_all(&self.writer)
            .await?;
        let mut claimed = rows
            .iter()
            .map(jobs::job_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        claimed.sort_by_key(|j| j.id);
        Ok(claimed)
    }

    async fn release_claims(&self) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'pending', locked_until = NULL WHERE status = 'sending'",
        )
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    async fn finish_job(&self, id: i64, result: &JobResult, now: DateTime<Utc>) -> StoreResult<()> {
        let query = match result {
            JobResult::Done { response } => sqlx::query("UPDATE jobs SET status = 'done', response = $2, last_error = NULL, locked_until = NULL, updated_at = $3 WHERE id = $1").bind(id).bind(response).bind(ms(now)),
            JobResult::Retry { at, error } => sqlx::query("UPDATE jobs SET status = 'pending', run_at = $2, last_error = $3, locked_until = NULL, updated_at = $4 WHERE id = $1").bind(id).bind(ms(*at)).bind(error).bind(ms(now)),
            JobResult::Dead { error } => sqlx::query("UPDATE jobs SET status = 'dead', last_error = $2, locked_until = NULL, updated_at = $3 WHERE id = $1").bind(id).bind(error).bind(ms(now)),
            JobResult::Skipped { reason } => sqlx::query("UPDATE jobs SET status = 'skipped', last_error = $2, locked_until = NULL, updated_at = $3 WHERE id = $1").bind(id).bind(reason).bind(ms(now)),
        };
        query.execute(&self.writer).await?;
        Ok(())
    }

    async fn next_job_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        // Two single-index lookups; one MIN over a CASE read every open job.
        let row = sqlx::query("SELECT MIN(due) AS due FROM (SELECT MIN(run_at) AS due FROM jobs WHERE status = 'pending' UNION ALL SELECT MIN(locked_until) FROM jobs WHERE status = 'sending')")
            .fetch_one(&self.reader)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("due")?.map(time))
    }

    async fn jobs(&self, status: Option<JobStatus>, limit: u32) -> StoreResult<Vec<Job>> {
        let sql = format!(
            "SELECT {} FROM jobs WHERE ($1 IS NULL OR status = $1) ORDER BY id DESC LIMIT $2",
            jobs::JOB_COLUMNS
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(status.map(JobStatus::as_str))
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(jobs::job_from_row).collect()
    }

    async fn job(&self, id: i64) -> StoreResult<Option<Job>> {
        let sql = format!("SELECT {} FROM jobs WHERE id = $1", jobs::JOB_COLUMNS);
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(jobs::job_from_row).transpose()
    }

    async fn retry_job(&self, id: i64, now: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE jobs SET status = 'pending', run_at = $2, attempts = 0, updated_at = $2 WHERE id = $1 AND status IN ('dead', 'cancelled', 'skipped')")
            .bind(id)
            .bind(ms(now))
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn cancel_job(&self, id: i64) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE jobs SET status = 'cancelled', locked_until = NULL WHERE id = $1 AND status IN ('pending', 'dead')").bind(id).execute(&self.writer).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn recent_events(&self, limit: u32) -> StoreResult<Vec<serde_json::Value>> {
        let rows = sqlx::query("SELECT record FROM event_log ORDER BY id DESC LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                let text: String = row.try_get("record")?;
                serde_json::from_str(&text)
                    .map_err(|e| StoreError::Corrupt(format!("event record: {e}")))
            })
            .collect()
    }

    async fn prune(&self, now: DateTime<Utc>) -> StoreResult<()> {
        let now = ms(now);
        sqlx::query("DELETE FROM dedupe WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.writer)
            .await?;
        sqlx::query("DELETE FROM event_log WHERE at < $1")
            .bind(now - EVENT_LOG_KEEP)
            .execute(&self.writer)
            .await?;
        sqlx::query("DELETE FROM inbound WHERE processed_at IS NOT NULL AND processed_at < $1")
            .bind(now - INBOUND_KEEP)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn ready(&self) -> StoreResult<()> {
        // Taking the write lock proves the file is writable, not just readable.
        let mut conn = self.writer.acquire().await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        sqlx::query("ROLLBACK").execute(&mut *conn).await?;
        Ok(())
    }
}

fn parse_attrs(text: &str) -> StoreResult<std::collections::BTreeMap<String, String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("contact attrs: {e}")))
}

async fn apply_op(
    tx: &mut Transaction<'_, Sqlite>,
    op: &Op,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    match op {
        Op::Contact(change) => apply_change(tx, change, ms(now)).await,
        Op::Job(job) => jobs::insert(tx, job, now).await.map(drop),
        Op::Cancel { key } => jobs::cancel_key(tx, key, now).await,
        Op::Handoff(change) => apply_handoff(tx, change, now).await,
        Op::Fired { rule, chat, at } => {
            sqlx::query("INSERT INTO rule_fires (rule, chat_id, fired_at) VALUES ($1, $2, $3) ON CONFLICT (rule, chat_id) DO UPDATE SET fired_at = excluded.fired_at")
                .bind(rule)
                .bind(chat)
                .bind(ms(*at))
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
    }
}

async fn apply_handoff(
    tx: &mut Transaction<'_, Sqlite>,
    change: &HandoffChange,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    match change {
        HandoffChange::Start {
            chat,
            until,
            resume_on,
            rule,
        } => {
            sqlx::query(
                "INSERT INTO chat_state (chat_id, handoff_until, resume_on, handoff_rule, handoff_since) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (chat_id) DO UPDATE SET handoff_until = excluded.handoff_until, resume_on = excluded.resume_on,
                   handoff_rule = excluded.handoff_rule, handoff_since = excluded.handoff_since",
            )
            .bind(chat)
            .bind(ms(*until))
            .bind(resume_on)
            .bind(rule)
            .bind(ms(now))
            .execute(&mut **tx)
            .await?;
        }
        HandoffChange::End { chat } => {
            sqlx::query("UPDATE chat_state SET handoff_until = NULL, resume_on = NULL, handoff_rule = NULL, handoff_since = NULL WHERE chat_id = $1")
                .bind(chat)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

async fn apply_change(
    tx: &mut Transaction<'_, Sqlite>,
    change: &ContactChange,
    now: i64,
) -> StoreResult<()> {
    match change {
        ContactChange::Tag { phone, tag } => {
            sqlx::query("INSERT INTO contact_tags (phone, tag, added_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING").bind(phone).bind(tag).bind(now).execute(&mut **tx).await?;
        }
        ContactChange::Untag { phone, tag } => {
            sqlx::query("DELETE FROM contact_tags WHERE phone = $1 AND tag = $2")
                .bind(phone)
                .bind(tag)
                .execute(&mut **tx)
                .await?;
        }
        ContactChange::Set { phone, key, value } => {
            sqlx::query(
                "INSERT INTO contacts (phone, attrs, updated_at) VALUES ($1, json_object($2, $3), $4)
                 ON CONFLICT (phone) DO UPDATE SET attrs = json_set(attrs, '$.' || json_quote($2), $3), updated_at = $4",
            )
            .bind(phone)
            .bind(key)
            .bind(value)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}
