//! The embedded SQLite store. One writer connection (SQLite allows one writer at a time, and a
//! single connection never meets `SQLITE_BUSY` from itself) and a small pool of readers.

mod campaigns;
mod jobs;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, ConnectOptions, QueryBuilder, Row, Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::{
    CampaignRun, ChatState, Contact, ContactChange, Durability, Handoff, HandoffChange, Inbound,
    Job, JobResult, JobStatus, NewJob, NewRun, Op, Outcome, Role, Source, Store, StoreError,
    StoreResult, Turn,
};

/// How long event records are kept for `/admin/events`.
const EVENT_LOG_KEEP: i64 = 7 * 24 * 3600 * 1000;
/// How long processed bodies are kept after processing.
const INBOUND_KEEP: i64 = 24 * 3600 * 1000;

/// Most parameters bound in one statement (SQLite allows 32,766; fewer keeps statements small).
pub(super) const MAX_PARAMS: usize = 1000;
/// Most values bound in one `IN (...)` list.
const IN_LIST_MAX: usize = 500;

/// `prefix` followed by the values as bound parameters and a closing parenthesis.
fn in_list(prefix: &str, values: &[String]) -> QueryBuilder<Sqlite> {
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(prefix);
    let mut list = q.separated(", ");
    for value in values {
        list.push_bind(value);
    }
    q.push(")");
    q
}

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
    /// Small writes (webhook bodies, job results) waiting for the next group commit.
    queue: mpsc::Sender<Queued>,
}

/// How often the log is copied into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// Most writes in one group commit.
const GROUP_COMMIT_MAX: usize = 512;

/// A write that waits for the next group commit, and where to send its result.
#[derive(Debug)]
enum Queued {
    /// A webhook body to store; answered with its id.
    Accept {
        source: Source,
        body: String,
        at: DateTime<Utc>,
        done: oneshot::Sender<StoreResult<i64>>,
    },
    /// The result of a job's call, and what it decided.
    Finish {
        id: i64,
        result: JobResult,
        ops: Vec<Op>,
        at: DateTime<Utc>,
        done: oneshot::Sender<StoreResult<i64>>,
    },
}

impl Queued {
    fn answer(self, result: StoreResult<i64>) {
        let (Self::Accept { done, .. } | Self::Finish { done, .. }) = self;
        // The caller may have gone (a cancelled request); its write is committed anyway.
        let _ = done.send(result);
    }
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
            // A statement this slow stalls every webhook behind it: worth a warning.
            .log_slow_statements(log::LevelFilter::Warn, Duration::from_millis(250))
            .foreign_keys(true);
        // The writer never checkpoints: a checkpoint waits for the disk, and one in the writer
        // stalls every write behind it. A second connection does it beside the writer.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            // A checkpoint waits for the disk by design; that is not worth a warning.
            .connect_with(
                options
                    .clone()
                    .log_slow_statements(log::LevelFilter::Off, Duration::ZERO),
            )
            .await?;
        sqlx::migrate!("src/store/migrations/sqlite")
            .run(&writer)
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        let (queue, queued) = mpsc::channel(4 * GROUP_COMMIT_MAX);
        tokio::spawn(group_commit(writer.clone(), checkpointer, queued));
        Ok(Self {
            writer,
            reader,
            queue,
        })
    }
}

/// Commits waiting writes many to a transaction: a commit costs about the same for one row as
/// for hundreds, so under load every webhook and every job result waits for one commit instead
/// of a queue of them. Each caller is answered only after the commit that holds its write.
async fn group_commit(
    writer: SqlitePool,
    checkpointer: SqlitePool,
    mut queue: mpsc::Receiver<Queued>,
) {
    let mut batch = Vec::with_capacity(GROUP_COMMIT_MAX);
    let mut checkpoint = tokio::time::interval(CHECKPOINT_EVERY);
    checkpoint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut checkpointing: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        tokio::select! {
            received = queue.recv_many(&mut batch, GROUP_COMMIT_MAX) => {
                if received == 0 {
                    return;
                }
            }
            _ = checkpoint.tick() => {
                if checkpointing.as_ref().is_none_or(tokio::task::JoinHandle::is_finished) {
                    let pool = checkpointer.clone();
                    checkpointing = Some(tokio::spawn(async move {
                        // PASSIVE copies what no reader still needs and never blocks the writer.
                        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                            tracing::warn!("database checkpoint failed: {err}");
                        }
                    }));
                }
                continue;
            }
        }
        match write_batch(&writer, &batch).await {
            Ok(results) => {
                for (queued, result) in batch.drain(..).zip(results) {
                    queued.answer(Ok(result));
                }
            }
            Err(err) => {
                let reason = err.to_string();
                for queued in batch.drain(..) {
                    queued.answer(Err(StoreError::Write(reason.clone())));
                }
            }
        }
    }
}

async fn write_batch(writer: &SqlitePool, batch: &[Queued]) -> StoreResult<Vec<i64>> {
    let mut tx = writer.begin().await?;
    let accepts: Vec<(usize, &Source, &String, i64)> = batch
        .iter()
        .enumerate()
        .filter_map(|(i, q)| match q {
            Queued::Accept {
                source, body, at, ..
            } => Some((i, source, body, ms(*at))),
            Queued::Finish { .. } => None,
        })
        .collect();
    let mut results = vec![0; batch.len()];
    for chunk in accepts.chunks(MAX_PARAMS / 5) {
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO inbound (source, name, method, body, received_at) ");
        q.push_values(chunk, |mut row, (_, source, body, at)| {
            let (kind, name, method) = match source {
                Source::Webhook { path, method } => ("webhook", path.as_str(), method.as_str()),
                Source::Custom { name } => ("custom", name.as_str(), "POST"),
            };
            row.push_bind(kind)
                .push_bind(name)
                .push_bind(method)
                .push_bind(body.as_str())
                .push_bind(*at);
        });
        q.push(" RETURNING id");
        // Rows of one statement get increasing ids in the order they are listed, whatever
        // order RETURNING gives them back in.
        let mut ids: Vec<i64> = q
            .build()
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.try_get("id"))
            .collect::<Result<_, _>>()?;
        ids.sort_unstable();
        for ((i, ..), id) in chunk.iter().zip(ids) {
            results[*i] = id;
        }
    }
    // Calls that simply succeeded, the bulk under load, are marked done a few hundred per
    // statement; the rest one by one, with what they decided.
    let mut done: Vec<(i64, &str)> = Vec::new();
    let mut done_at = None;
    for (i, queued) in batch.iter().enumerate() {
        if let Queued::Finish {
            id,
            result,
            ops,
            at,
            ..
        } = queued
        {
            results[i] = *id;
            if let (JobResult::Done { response }, true) = (result, ops.is_empty()) {
                done.push((*id, response));
                done_at = Some(done_at.map_or(*at, |t: DateTime<Utc>| t.max(*at)));
                continue;
            }
            jobs::finish(&mut tx, *id, result, *at).await?;
            if !ops.is_empty() {
                apply_ops(&mut tx, &ops.iter().collect::<Vec<_>>(), *at).await?;
            }
        }
    }
    if let Some(at) = done_at {
        jobs::finish_done(&mut tx, &done, at).await?;
    }
    tx.commit().await?;
    Ok(results)
}

impl SqliteStore {
    /// Hands a write to the group commit and waits for the commit that holds it.
    async fn queue(
        &self,
        write: impl FnOnce(oneshot::Sender<StoreResult<i64>>) -> Queued,
    ) -> StoreResult<i64> {
        let (done, result) = oneshot::channel();
        let closed = || StoreError::Write("the database writer has stopped".into());
        self.queue.send(write(done)).await.map_err(|_| closed())?;
        result.await.map_err(|_| closed())?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn accept(&self, source: Source, body: &str, at: DateTime<Utc>) -> StoreResult<i64> {
        let body = body.to_owned();
        self.queue(|done| Queued::Accept {
            source,
            body,
            at,
            done,
        })
        .await
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
        // Rows of the same kind go in as one statement per few hundred: a statement costs far
        // more to hand to SQLite than a row costs to insert.
        let seen: Vec<(&String, i64)> = done
            .iter()
            .flat_map(|(_, o)| o.seen.iter().map(|(key, expires)| (key, ms(*expires))))
            .collect();
        for chunk in seen.chunks(IN_LIST_MAX / 2) {
            let mut q: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO dedupe (key, expires_at) ");
            q.push_values(chunk, |mut row, (key, expires)| {
                row.push_bind(*key).push_bind(*expires);
            });
            q.push(" ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at");
            q.build().execute(&mut *tx).await?;
        }
        let ops: Vec<&Op> = done.iter().flat_map(|(_, o)| &o.ops).collect();
        apply_ops(&mut tx, &ops, now).await?;
        let records: Vec<String> = done
            .iter()
            .flat_map(|(_, o)| o.records.iter().map(ToString::to_string))
            .collect();
        for chunk in records.chunks(IN_LIST_MAX / 2) {
            let mut q: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO event_log (at, record) ");
            q.push_values(chunk, |mut row, record| {
                row.push_bind(now_ms).push_bind(record);
            });
            q.build().execute(&mut *tx).await?;
        }
        for chunk in done.chunks(IN_LIST_MAX) {
            let mut q: QueryBuilder<Sqlite> =
                QueryBuilder::new("UPDATE inbound SET processed_at = ");
            q.push_bind(now_ms).push(" WHERE id IN (");
            let mut list = q.separated(", ");
            for (id, _) in chunk {
                list.push_bind(*id);
            }
            q.push(")");
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn apply(&self, ops: &[Op], now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        apply_ops(&mut tx, &ops.iter().collect::<Vec<_>>(), now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn contacts_of(&self, phones: &[String]) -> StoreResult<HashMap<String, Contact>> {
        let mut found: HashMap<String, Contact> = HashMap::new();
        let new = |phone: &str| Contact {
            phone: phone.to_owned(),
            ..Contact::default()
        };
        for chunk in phones.chunks(IN_LIST_MAX) {
            for row in in_list("SELECT phone, attrs FROM contacts WHERE phone IN (", chunk)
                .build()
                .fetch_all(&self.reader)
                .await?
            {
                let phone: String = row.try_get("phone")?;
                let attrs = parse_attrs(&row.try_get::<String, _>("attrs")?)?;
                found
                    .entry(phone.clone())
                    .or_insert_with(|| new(&phone))
                    .attrs = attrs;
            }
            for row in in_list(
                "SELECT phone, tag FROM contact_tags WHERE phone IN (",
                chunk,
            )
            .build()
            .fetch_all(&self.reader)
            .await?
            {
                let phone: String = row.try_get("phone")?;
                let contact = found.entry(phone.clone()).or_insert_with(|| new(&phone));
                contact.tags.insert(row.try_get("tag")?);
            }
        }
        Ok(found)
    }

    async fn chat_states(&self, chats: &[String]) -> StoreResult<HashMap<String, ChatState>> {
        let mut found: HashMap<String, ChatState> = HashMap::new();
        for chunk in chats.chunks(IN_LIST_MAX) {
            let sql = "SELECT chat_id, handoff_until, resume_on, handoff_rule, handoff_since FROM chat_state WHERE handoff_until IS NOT NULL AND chat_id IN (";
            for row in in_list(sql, chunk).build().fetch_all(&self.reader).await? {
                let handoff = handoff_row(&row)?;
                let chat = handoff.chat.clone();
                found.entry(chat).or_default().handoff = Some(handoff);
            }
            let sql = "SELECT chat_id, rule, fired_at FROM rule_fires WHERE chat_id IN (";
            for row in in_list(sql, chunk).build().fetch_all(&self.reader).await? {
                let chat: String = row.try_get("chat_id")?;
                found
                    .entry(chat)
                    .or_default()
                    .fired
                    .insert(row.try_get("rule")?, time(row.try_get("fired_at")?));
            }
        }
        Ok(found)
    }

    async fn handoffs(&self, now: DateTime<Utc>) -> StoreResult<Vec<Handoff>> {
        let rows = sqlx::query("SELECT chat_id, handoff_until, resume_on, handoff_rule, handoff_since FROM chat_state WHERE handoff_until > $1 ORDER BY handoff_since")
            .bind(ms(now))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(handoff_row).collect()
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

    async fn finish_job_with(
        &self,
        id: i64,
        result: &JobResult,
        ops: Vec<Op>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let result = result.clone();
        self.queue(|done| Queued::Finish {
            id,
            result,
            ops,
            at: now,
            done,
        })
        .await?;
        Ok(())
    }

    async fn turns(&self, chat: &str, limit: u32) -> StoreResult<Vec<Turn>> {
        let rows = sqlx::query(
            "SELECT role, text, at FROM turns WHERE chat_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(chat)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        let mut turns = rows
            .iter()
            .map(|row| {
                Ok(Turn {
                    chat: chat.to_owned(),
                    role: Role::parse(&row.try_get::<String, _>("role")?)?,
                    text: row.try_get("text")?,
                    at: time(row.try_get("at")?),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        turns.reverse();
        Ok(turns)
    }

    async fn forget_turns(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM turns WHERE at < $1")
            .bind(ms(before))
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn ai_fallbacks(&self, chat: &str) -> StoreResult<u32> {
        let count: Option<i64> =
            sqlx::query_scalar("SELECT fallbacks FROM ai_chats WHERE chat_id = $1")
                .bind(chat)
                .fetch_optional(&self.reader)
                .await?;
        Ok(count.unwrap_or_default().clamp(0, i64::from(u32::MAX)) as u32)
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

/// A `chat_state` row's handoff (`chat_id, handoff_until, resume_on, handoff_rule, handoff_since`).
fn handoff_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<Handoff> {
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
}

fn parse_attrs(text: &str) -> StoreResult<std::collections::BTreeMap<String, String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("contact attrs: {e}")))
}

/// Applies ops in order; a run of jobs goes in as one statement.
async fn apply_ops(
    tx: &mut Transaction<'_, Sqlite>,
    ops: &[&Op],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let mut jobs: Vec<NewJob> = Vec::new();
    for op in ops {
        if let Op::Job(job) = op {
            jobs.push((**job).clone());
            continue;
        }
        jobs::insert_many(tx, &std::mem::take(&mut jobs), now).await?;
        apply_op(tx, op, now).await?;
    }
    jobs::insert_many(tx, &jobs, now).await
}

async fn apply_op(
    tx: &mut Transaction<'_, Sqlite>,
    op: &Op,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    match op {
        Op::Contact(change) => apply_change(tx, change, ms(now)).await,
        Op::Job(job) => jobs::insert(tx, job, now).await,
        Op::Cancel { key } => jobs::cancel_key(tx, key, now).await,
        Op::Handoff(change) => apply_handoff(tx, change, now).await,
        Op::Turn(turn) => {
            sqlx::query("INSERT INTO turns (chat_id, role, text, at) VALUES ($1, $2, $3, $4)")
                .bind(&turn.chat)
                .bind(turn.role.as_str())
                .bind(&turn.text)
                .bind(ms(turn.at))
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
        Op::AiFallbacks { chat, count } => {
            sqlx::query("INSERT INTO ai_chats (chat_id, fallbacks) VALUES ($1, $2) ON CONFLICT (chat_id) DO UPDATE SET fallbacks = excluded.fallbacks")
                .bind(chat)
                .bind(i64::from(*count))
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
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
