//! The embedded SQLite store: one file in WAL mode, written by one thread that group-commits
//! every write waiting for it (see [`db`]), read by the workers on that thread and by listings
//! on reader threads.

mod campaigns;
mod checkpoint;
mod db;
mod inbox;
mod jobs;
mod migrate;
mod ops;
mod prune;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use self::db::Db;
use self::inbox::Inbox;
use self::jobs::JobRow;
use self::ops::Completion;
use super::{
    CampaignRun, Durability, Handover, Inbound, Known, Lookup, NewRun, Op, Outcome, Source, Store,
    StoreError, StoreResult,
};
use crate::vocab::{
    ChatState, Contact, Handoff, Job, JobId, JobResult, JobStatus, NewJob, Role, Turn,
};

/// Gives every claimed job back (at start: no call of this process is in flight any more).
const RELEASE_CLAIMS: &str = "UPDATE jobs SET status = 'pending', locked_until = NULL
    WHERE status IN ('pending', 'sending') AND status = 'sending'";

/// How long event records are kept for `/admin/events`.
const EVENT_LOG_KEEP: i64 = 7 * 24 * 3600 * 1000;
/// Most rows one pruning write looks at: webhooks waiting for the writer wait for a short one.
const PRUNE_CHUNK: i64 = 2_000;
/// Event records, by the time each was written.
static OLD_EVENT_RECORDS: prune::Aged = prune::Aged {
    table: "event_log",
    oldest: "SELECT id, at FROM event_log ORDER BY id LIMIT ?1",
};
/// Processed bodies, by the time each arrived.
static OLD_BODIES: prune::Aged = prune::Aged {
    table: "inbound",
    oldest: "SELECT id, received_at FROM inbound
        WHERE id <= (SELECT processed_through FROM intake_cursor) ORDER BY id LIMIT ?1",
};
/// How long jobs that were sent, skipped or cancelled are kept after they finished.
const FINISHED_JOBS_KEEP: i64 = 7 * 24 * 3600 * 1000;
/// How long processed bodies are kept after they arrived (to explain their events again).
const INBOUND_KEEP: i64 = 24 * 3600 * 1000;

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// SQLite in a single file, WAL mode; commits survive the process, or power loss too (see
/// [`Durability`]).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: Db,
    /// What this process stored, for intake to take without reading it back.
    inbox: Arc<Inbox>,
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
            Durability::Process => "NORMAL",
            // FULL also waits for the disk to flush the log at every commit.
            Durability::PowerLoss => "FULL",
        };
        Self::open_with(path, synchronous).await
    }

    /// A throwaway database for rule tests: nothing waits for the disk.
    pub async fn open_scratch(path: &Path) -> StoreResult<Self> {
        Self::open_with(path, "OFF").await
    }

    async fn open_with(path: &Path, synchronous: &'static str) -> StoreResult<Self> {
        let options = db::Options {
            path: path.to_owned(),
            synchronous,
        };
        // Opening and migrating touch the disk; keep that off the async threads.
        let db = tokio::task::spawn_blocking(move || Db::open(&options, migrate::run))
            .await
            .map_err(|e| StoreError::Write(format!("opening the database failed: {e}")))??;
        Ok(Self {
            db,
            inbox: Arc::default(),
        })
    }
}

fn stored_role(name: &str) -> StoreResult<Role> {
    Role::parse(name).ok_or_else(|| StoreError::Corrupt(format!("turn role `{name}`")))
}

/// A stored event record with its place in the log.
fn event_record(seq: i64, text: &str) -> StoreResult<serde_json::Value> {
    let mut record: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("event record {seq}: {e}")))?;
    if let Some(fields) = record.as_object_mut() {
        fields.insert("seq".into(), seq.into());
    }
    Ok(record)
}

fn inbound_row(row: &Row<'_>) -> StoreResult<Inbound> {
    let kind: String = row.get("source")?;
    let name: String = row.get("name")?;
    let source = if kind == "custom" {
        Source::Custom { name }
    } else {
        Source::Webhook {
            path: name,
            method: row.get("method")?,
        }
    };
    Ok(Inbound {
        id: row.get("id")?,
        source,
        body: row.get("body")?,
        received_at: time(row.get("received_at")?),
    })
}

/// A `chat_state` row's handoff (`chat_id, handoff_until, resume_on, handoff_rule, handoff_since`).
fn handoff_row(row: &Row<'_>) -> StoreResult<Handoff> {
    Ok(Handoff {
        chat: row.get("chat_id")?,
        until: time(row.get("handoff_until")?),
        since: time(
            row.get::<_, Option<i64>>("handoff_since")?
                .unwrap_or_default(),
        ),
        resume_on: row.get("resume_on")?,
        rule: row
            .get::<_, Option<String>>("handoff_rule")?
            .unwrap_or_default(),
    })
}

fn parse_attrs(text: &str) -> StoreResult<BTreeMap<String, String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("contact attrs: {e}")))
}

/// The contacts of these phones that have tags or attributes.
fn seen(conn: &Connection, keys: &[String], now: i64) -> StoreResult<BTreeSet<String>> {
    let mut statement =
        conn.prepare_cached("SELECT 1 FROM dedupe WHERE key = ?1 AND expires_at > ?2")?;
    let mut seen = BTreeSet::new();
    for key in keys {
        if statement.exists(params![key, now])? {
            seen.insert(key.clone());
        }
    }
    Ok(seen)
}

fn contacts_of(conn: &Connection, phones: &[String]) -> StoreResult<HashMap<String, Contact>> {
    let mut found: HashMap<String, Contact> = HashMap::new();
    let mut attrs = conn.prepare_cached("SELECT attrs FROM contacts WHERE phone = ?1")?;
    let mut tags = conn.prepare_cached("SELECT tag FROM contact_tags WHERE phone = ?1")?;
    for phone in phones {
        let mut contact = Contact {
            phone: phone.clone(),
            ..Contact::default()
        };
        let mut known = false;
        if let Some(text) = attrs
            .query_row([phone], |r| r.get::<_, String>(0))
            .optional()?
        {
            contact.attrs = parse_attrs(&text)?;
            known = true;
        }
        let mut rows = tags.query([phone])?;
        while let Some(row) = rows.next()? {
            contact.tags.insert(row.get(0)?);
            known = true;
        }
        if known {
            found.insert(phone.clone(), contact);
        }
    }
    Ok(found)
}

fn chat_states(conn: &Connection, chats: &[String]) -> StoreResult<HashMap<String, ChatState>> {
    let mut found: HashMap<String, ChatState> = HashMap::new();
    let mut handoffs = conn.prepare_cached("SELECT chat_id, handoff_until, resume_on, handoff_rule, handoff_since FROM chat_state WHERE chat_id = ?1 AND handoff_until IS NOT NULL")?;
    let mut fires =
        conn.prepare_cached("SELECT rule, fired_at FROM rule_fires WHERE chat_id = ?1")?;
    for chat in chats {
        let mut state = ChatState::default();
        let mut known = false;
        let mut rows = handoffs.query([chat])?;
        if let Some(row) = rows.next()? {
            state.handoff = Some(handoff_row(row)?);
            known = true;
        }
        let mut rows = fires.query([chat])?;
        while let Some(row) = rows.next()? {
            state.fired.insert(row.get(0)?, time(row.get(1)?));
            known = true;
        }
        if known {
            found.insert(chat.clone(), state);
        }
    }
    Ok(found)
}

#[async_trait]
impl Store for SqliteStore {
    async fn accept(&self, source: Source, body: &str, at: DateTime<Utc>) -> StoreResult<i64> {
        // One copy of the body, written by the write and then kept for intake.
        let kept = Arc::new(Inbound {
            id: 0,
            source,
            body: body.to_owned(),
            received_at: at,
        });
        let inbox = self.inbox.clone();
        let stored = kept.clone();
        self.db
            .write_then(
                move |conn| {
                    let (kind, name, method) = match &stored.source {
                        Source::Webhook { path, method } => {
                            ("webhook", path.as_str(), method.as_str())
                        }
                        Source::Custom { name } => ("custom", name.as_str(), "POST"),
                    };
                    conn.prepare_cached("INSERT INTO inbound (source, name, method, body, received_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
                        .execute(params![kind, name, method, stored.body, ms(at)])?;
                    Ok(conn.last_insert_rowid())
                },
                move |id| {
                    // The write, which held the other reference, is dropped by now.
                    let inbound = Arc::try_unwrap(kept).unwrap_or_else(|shared| (*shared).clone());
                    inbox.stored(Inbound { id, ..inbound });
                    id
                },
            )
            .await
    }

    async fn unprocessed(&self, limit: u32) -> StoreResult<Vec<Inbound>> {
        if let Some(batch) = self.inbox.take(limit) {
            return Ok(batch);
        }
        let inbox = self.inbox.clone();
        self.db
            .read_now(move |conn| {
                let through: i64 = conn
                    .prepare_cached("SELECT processed_through FROM intake_cursor")?
                    .query_row([], |r| r.get(0))?;
                let mut statement = conn.prepare_cached("SELECT id, source, name, method, body, received_at FROM inbound WHERE id > ?1 ORDER BY id LIMIT ?2")?;
                let mut rows = statement.query(params![through, i64::from(limit)])?;
                let mut found = Vec::new();
                while let Some(row) = rows.next()? {
                    found.push(inbound_row(row)?);
                }
                // On the writer's thread, so no commit comes between this read and the inbox.
                inbox.processed_through(through);
                Ok(found)
            })
            .await
    }

    async fn inbound(&self, id: i64) -> StoreResult<Option<Inbound>> {
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT id, source, name, method, body, received_at FROM inbound WHERE id = ?1",
                )?;
                let mut rows = statement.query([id])?;
                rows.next()?.map(inbound_row).transpose()
            })
            .await
    }

    async fn seen(&self, keys: &[String], now: DateTime<Utc>) -> StoreResult<BTreeSet<String>> {
        let keys = keys.to_vec();
        self.db
            .read_now(move |conn| seen(conn, &keys, ms(now)))
            .await
    }

    async fn known(&self, lookup: Lookup, now: DateTime<Utc>) -> StoreResult<Known> {
        // One trip to the writer's thread instead of three: intake waits for each.
        self.db
            .read_now(move |conn| {
                Ok(Known {
                    seen: seen(conn, &lookup.keys, ms(now))?,
                    contacts: contacts_of(conn, &lookup.phones)?,
                    chats: chat_states(conn, &lookup.chats)?,
                })
            })
            .await
    }

    async fn contact(&self, phone: &str) -> StoreResult<Contact> {
        let phone = phone.to_owned();
        if phone.is_empty() {
            return Ok(Contact::default());
        }
        self.db
            .read_now(move |conn| {
                let mut found = contacts_of(conn, std::slice::from_ref(&phone))?;
                Ok(found.remove(&phone).unwrap_or(Contact {
                    phone,
                    ..Contact::default()
                }))
            })
            .await
    }

    async fn complete(
        &self,
        done: &[(i64, Outcome)],
        now: DateTime<Utc>,
        handover: Option<Handover>,
    ) -> StoreResult<Vec<Job>> {
        let completion = Completion::new(done)?;
        let last = done.iter().map(|(id, _)| *id).max();
        let inbox = self.inbox.clone();
        self.db
            .write_then(
                move |conn| completion.write(conn, ms(now), handover),
                move |claimed| {
                    if let Some(last) = last {
                        inbox.processed_through(last);
                    }
                    claimed
                },
            )
            .await
    }

    async fn apply(&self, ops: &[Op], now: DateTime<Utc>) -> StoreResult<()> {
        let changes = ops::changes(ops)?;
        self.db
            .write(move |conn| ops::apply(conn, &changes, ms(now)))
            .await
    }

    async fn contacts_of(&self, phones: &[String]) -> StoreResult<HashMap<String, Contact>> {
        let phones = phones.to_vec();
        self.db
            .read_now(move |conn| contacts_of(conn, &phones))
            .await
    }

    async fn chat_states(&self, chats: &[String]) -> StoreResult<HashMap<String, ChatState>> {
        let chats = chats.to_vec();
        self.db
            .read_now(move |conn| chat_states(conn, &chats))
            .await
    }

    async fn handoffs(&self, now: DateTime<Utc>) -> StoreResult<Vec<Handoff>> {
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached("SELECT chat_id, handoff_until, resume_on, handoff_rule, handoff_since FROM chat_state WHERE handoff_until > ?1 ORDER BY handoff_since")?;
                let mut rows = statement.query([ms(now)])?;
                let mut found = Vec::new();
                while let Some(row) = rows.next()? {
                    found.push(handoff_row(row)?);
                }
                Ok(found)
            })
            .await
    }

    async fn contacts(&self) -> StoreResult<Vec<Contact>> {
        self.db
            .read(|conn| {
                let mut contacts: BTreeMap<String, Contact> = BTreeMap::new();
                let mut statement = conn.prepare_cached("SELECT phone, attrs FROM contacts")?;
                let mut rows = statement.query([])?;
                while let Some(row) = rows.next()? {
                    let phone: String = row.get(0)?;
                    let attrs = parse_attrs(&row.get::<_, String>(1)?)?;
                    contacts.insert(
                        phone.clone(),
                        Contact {
                            phone,
                            attrs,
                            ..Contact::default()
                        },
                    );
                }
                let mut statement = conn.prepare_cached("SELECT phone, tag FROM contact_tags")?;
                let mut rows = statement.query([])?;
                while let Some(row) = rows.next()? {
                    let phone: String = row.get(0)?;
                    let entry = contacts.entry(phone.clone()).or_insert_with(|| Contact {
                        phone,
                        ..Contact::default()
                    });
                    entry.tags.insert(row.get(1)?);
                }
                Ok(contacts.into_values().collect())
            })
            .await
    }

    async fn campaign_checked(&self, name: &str) -> StoreResult<Option<DateTime<Utc>>> {
        let name = name.to_owned();
        self.db
            .read_now(move |conn| campaigns::checked(conn, &name))
            .await
    }

    async fn set_campaign_checked(&self, name: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let name = name.to_owned();
        self.db
            .write(move |conn| campaigns::set_checked(conn, &name, ms(at)))
            .await
    }

    async fn start_campaign_run(
        &self,
        run: &NewRun,
        jobs: &[NewJob],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<i64>> {
        let run = run.clone();
        // A campaign's rows are many and independent; the writer only inserts them.
        let mut rows = crate::parallel::map(jobs, 2_000, |_, job| JobRow::new(job))
            .into_iter()
            .collect::<StoreResult<Vec<_>>>()?;
        self.db
            .write(move |conn| campaigns::start_run(conn, &run, &mut rows, ms(now)))
            .await
    }

    async fn campaign_runs(
        &self,
        campaign: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<CampaignRun>> {
        let campaign = campaign.map(str::to_owned);
        self.db
            .read(move |conn| campaigns::runs(conn, campaign.as_deref(), limit))
            .await
    }

    async fn verified(&self, run: &str) -> StoreResult<BTreeMap<String, (String, Option<String>)>> {
        let run = run.to_owned();
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT phone, status, wa_id FROM verifications WHERE run = ?1",
                )?;
                let mut rows = statement.query([run])?;
                let mut found = BTreeMap::new();
                while let Some(row) = rows.next()? {
                    found.insert(row.get(0)?, (row.get(1)?, row.get(2)?));
                }
                Ok(found)
            })
            .await
    }

    async fn record_verified(
        &self,
        run: &str,
        checked: &[(String, String, Option<String>)],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let run = run.to_owned();
        let checked = checked.to_vec();
        self.db
            .write(move |conn| {
                let mut statement = conn.prepare_cached(
                    "INSERT INTO verifications (run, phone, status, wa_id, checked_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (run, phone) DO UPDATE SET status = excluded.status, wa_id = excluded.wa_id, checked_at = excluded.checked_at",
                )?;
                for (phone, status, wa_id) in &checked {
                    statement.execute(params![run, phone, status, wa_id, ms(now)])?;
                }
                Ok(())
            })
            .await
    }

    async fn claim_jobs(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Job>> {
        self.db
            .write(move |conn| jobs::claim(conn, ms(now), ms(lease_until), limit))
            .await
    }

    async fn release_claims(&self) -> StoreResult<u64> {
        self.db
            .write(|conn| {
                let released = conn.execute(RELEASE_CLAIMS, [])?;
                Ok(released as u64)
            })
            .await
    }

    async fn finish_job_with(
        &self,
        id: JobId,
        result: &JobResult,
        ops: Vec<Op>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (id, result) = (id.0, result.clone());
        let changes = ops::changes(&ops)?;
        self.db
            .write(move |conn| {
                jobs::finish(conn, id, &result, ms(now))?;
                ops::apply(conn, &changes, ms(now))?;
                jobs::lane_has_due(conn, id, ms(now))
            })
            .await
    }

    async fn turns(&self, chat: &str, limit: u32) -> StoreResult<Vec<Turn>> {
        let chat = chat.to_owned();
        self.db
            .read_now(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT role, text, at FROM turns WHERE chat_id = ?1 ORDER BY id DESC LIMIT ?2",
                )?;
                let mut rows = statement.query(params![chat, i64::from(limit)])?;
                let mut turns = Vec::new();
                while let Some(row) = rows.next()? {
                    turns.push(Turn {
                        chat: chat.clone(),
                        role: stored_role(&row.get::<_, String>(0)?)?,
                        text: row.get(1)?,
                        at: time(row.get(2)?),
                    });
                }
                turns.reverse();
                Ok(turns)
            })
            .await
    }

    async fn forget_turns(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        self.db
            .write(move |conn| {
                let forgotten = conn
                    .prepare_cached("DELETE FROM turns WHERE at < ?1")?
                    .execute([ms(before)])?;
                Ok(forgotten as u64)
            })
            .await
    }

    async fn ai_fallbacks(&self, chat: &str) -> StoreResult<u32> {
        let chat = chat.to_owned();
        self.db
            .read_now(move |conn| {
                let count: Option<i64> = conn
                    .prepare_cached("SELECT fallbacks FROM ai_chats WHERE chat_id = ?1")?
                    .query_row([chat], |r| r.get(0))
                    .optional()?;
                Ok(count.unwrap_or_default().clamp(0, i64::from(u32::MAX)) as u32)
            })
            .await
    }

    async fn next_job_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.db.read_now(jobs::next_due).await
    }

    async fn jobs(&self, status: Option<JobStatus>, limit: u32) -> StoreResult<Vec<Job>> {
        self.db
            .read(move |conn| jobs::list(conn, status, limit))
            .await
    }

    async fn job(&self, id: JobId) -> StoreResult<Option<Job>> {
        self.db.read(move |conn| jobs::one(conn, id.0)).await
    }

    async fn retry_job(&self, id: JobId, now: DateTime<Utc>) -> StoreResult<bool> {
        let id = id.0;
        self.db
            .write(move |conn| {
                let changed = conn.prepare_cached("UPDATE jobs SET status = 'pending', run_at = ?2, attempts = 0, updated_at = ?2 WHERE id = ?1 AND status IN ('dead', 'cancelled', 'skipped')")?
                    .execute(params![id, ms(now)])?;
                Ok(changed == 1)
            })
            .await
    }

    async fn cancel_job(&self, id: JobId, now: DateTime<Utc>) -> StoreResult<bool> {
        let id = id.0;
        self.db
            .write(move |conn| {
                // The time starts the week a cancelled job is kept, and can be retried, for.
                let changed = conn.prepare_cached("UPDATE jobs SET status = 'cancelled', locked_until = NULL, updated_at = ?2 WHERE id = ?1 AND status IN ('pending', 'dead')")?
                    .execute(params![id, ms(now)])?;
                Ok(changed == 1)
            })
            .await
    }

    async fn recent_events(&self, limit: u32) -> StoreResult<Vec<serde_json::Value>> {
        self.db
            .read(move |conn| {
                let mut statement = conn
                    .prepare_cached("SELECT id, record FROM event_log ORDER BY id DESC LIMIT ?1")?;
                let mut rows = statement.query([i64::from(limit)])?;
                let mut records = Vec::new();
                while let Some(row) = rows.next()? {
                    records.push(event_record(row.get(0)?, &row.get::<_, String>(1)?)?);
                }
                Ok(records)
            })
            .await
    }

    async fn event_record(&self, seq: i64) -> StoreResult<Option<serde_json::Value>> {
        self.db
            .read(move |conn| {
                let text: Option<String> = conn
                    .prepare_cached("SELECT record FROM event_log WHERE id = ?1")?
                    .query_row([seq], |row| row.get(0))
                    .optional()?;
                text.map(|text| event_record(seq, &text)).transpose()
            })
            .await
    }

    async fn prune(&self, now: DateTime<Utc>) -> StoreResult<()> {
        let now = ms(now);
        self.db
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM dedupe WHERE expires_at <= ?1")?
                    .execute([now])?;
                Ok(())
            })
            .await?;
        // A chunk per write, so the writer's other work goes on between two of them.
        for (aged, keep) in [
            (&OLD_EVENT_RECORDS, EVENT_LOG_KEEP),
            (&OLD_BODIES, INBOUND_KEEP),
        ] {
            while self
                .db
                .write(move |conn| prune::prune_oldest(conn, aged, now - keep))
                .await?
            {}
        }
        let mut after = Some(0);
        while let Some(from) = after {
            after = self
                .db
                .write(move |conn| jobs::prune_finished(conn, from, now - FINISHED_JOBS_KEEP))
                .await?;
        }
        Ok(())
    }

    async fn ready(&self) -> StoreResult<()> {
        // A write, however empty, proves the file takes the write lock, not just reads.
        self.db.write(|_| Ok(())).await
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::vocab::Work;

    async fn next_ids(store: &SqliteStore, limit: u32) -> Vec<(i64, String)> {
        let batch = store.unprocessed(limit).await.unwrap();
        batch.into_iter().map(|i| (i.id, i.body)).collect()
    }

    fn bodies(ids: &[i64]) -> Vec<(i64, String)> {
        ids.iter()
            .map(|&id| (id, format!(r#"{{"n":{id}}}"#)))
            .collect()
    }

    #[tokio::test]
    async fn a_body_is_given_to_intake_again_until_its_batch_is_completed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).await.unwrap();
        let now = Utc::now();
        let accept = |n: i64| {
            let store = store.clone();
            async move {
                let body = format!(r#"{{"n":{n}}}"#);
                let id = store
                    .accept(Source::Custom { name: "e".into() }, &body, now)
                    .await
                    .unwrap();
                assert_eq!(id, n);
            }
        };
        for n in 1..=3 {
            accept(n).await;
        }
        // Taken from the database, then from memory, then from the database again: the
        // same bodies each time while none of them is completed.
        for _ in 0..3 {
            assert_eq!(next_ids(&store, 2).await, bodies(&[1, 2]));
        }
        let done = |ids: &[i64]| -> Vec<(i64, Outcome)> {
            ids.iter().map(|&id| (id, Outcome::default())).collect()
        };
        store.complete(&done(&[1, 2]), now, None).await.unwrap();
        assert_eq!(next_ids(&store, 10).await, bodies(&[3]));
        accept(4).await;
        store.complete(&done(&[3]), now, None).await.unwrap();
        assert_eq!(next_ids(&store, 10).await, bodies(&[4]));
        store.complete(&done(&[4]), now, None).await.unwrap();
        assert!(next_ids(&store, 10).await.is_empty());
        drop(store);

        let reopened = SqliteStore::open(&dir.path().join("db")).await.unwrap();
        assert!(next_ids(&reopened, 10).await.is_empty());
    }

    /// Every job's id, in order.
    async fn job_ids(store: &SqliteStore) -> Vec<i64> {
        let mut ids: Vec<i64> = store
            .jobs(None, 10_000)
            .await
            .unwrap()
            .iter()
            .map(|j| j.id.0)
            .collect();
        ids.sort_unstable();
        ids
    }

    #[tokio::test]
    async fn finished_jobs_are_pruned_a_week_after_they_finished_and_their_run_keeps_its_counts() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).await.unwrap();
        let t0 = Utc::now();
        let day = chrono::Duration::days(1);
        // More jobs than one pruning write looks at, so pruning goes on from chunk to chunk.
        let jobs: Vec<NewJob> = (0..2_500)
            .map(|n| {
                let work = Work::Cancel {
                    key: format!("k{n}"),
                };
                NewJob::action("rule", "cancel", "event", work, t0)
            })
            .collect();
        let run = NewRun {
            campaign: "promo".into(),
            fire_at: t0,
            trigger: "manual".into(),
            skipped: 7,
        };
        store.start_campaign_run(&run, &jobs, t0).await.unwrap();
        let ids = job_ids(&store).await;
        let (dead, pending, recent, skipped) = (ids[0], ids[1], ids[2], ids[3]);
        // Died at the start, cancelled by an operator two days later: kept a week from then.
        let cancelled = ids[4];
        let mut finishing = tokio::task::JoinSet::new();
        for &id in &ids {
            let (store, at) = (store.clone(), if id == recent { t0 + day * 2 } else { t0 });
            let result = match id {
                _ if id == dead || id == cancelled => JobResult::Dead {
                    error: "gone".into(),
                },
                _ if id == skipped => JobResult::Skipped {
                    reason: "opted out".into(),
                },
                _ if id == pending => continue,
                _ => JobResult::Done {
                    response: "{}".into(),
                },
            };
            finishing.spawn(async move { store.finish_job(JobId(id), &result, at).await.unwrap() });
        }
        finishing.join_all().await;
        assert!(
            store
                .cancel_job(JobId(cancelled), t0 + day * 2)
                .await
                .unwrap()
        );
        let counts = |runs: Vec<CampaignRun>| {
            let r = &runs[0];
            (r.planned, r.sent, r.skipped, r.failed, r.pending)
        };
        let before = counts(store.campaign_runs(None, 5).await.unwrap());
        assert_eq!(before, (2_500, 2_496, 9, 1, 1));

        store.prune(t0 + day * 7).await.unwrap();
        assert_eq!(
            job_ids(&store).await.len(),
            2_500,
            "none finished a week ago"
        );
        store.prune(t0 + day * 8).await.unwrap();
        let left = job_ids(&store).await;
        let mut kept = vec![dead, pending, recent, cancelled];
        kept.sort_unstable();
        assert_eq!(
            left, kept,
            "the dead, the pending and the ones finished six days ago stay"
        );
        assert_eq!(counts(store.campaign_runs(None, 5).await.unwrap()), before);
    }

    #[tokio::test]
    async fn processed_bodies_and_event_records_are_pruned_by_age_unprocessed_bodies_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).await.unwrap();
        let t0 = Utc::now();
        for n in 1..=3 {
            let body = format!(r#"{{"n":{n}}}"#);
            store
                .accept(Source::Custom { name: "e".into() }, &body, t0)
                .await
                .unwrap();
        }
        let outcome = |n: i64| Outcome {
            records: vec![format!(r#"{{"n":{n}}}"#)],
            ..Outcome::default()
        };
        store
            .complete(&[(1, outcome(1)), (2, outcome(2))], t0, None)
            .await
            .unwrap();
        assert_eq!(store.recent_events(10).await.unwrap().len(), 2);

        store.prune(t0 + chrono::Duration::hours(23)).await.unwrap();
        assert!(store.inbound(1).await.unwrap().is_some(), "kept for a day");
        store.prune(t0 + chrono::Duration::hours(25)).await.unwrap();
        assert!(store.inbound(1).await.unwrap().is_none());
        assert!(store.inbound(2).await.unwrap().is_none());
        assert!(
            store.inbound(3).await.unwrap().is_some(),
            "not processed yet"
        );
        assert_eq!(
            store.recent_events(10).await.unwrap().len(),
            2,
            "kept for a week"
        );
        store.prune(t0 + chrono::Duration::days(8)).await.unwrap();
        assert!(store.recent_events(10).await.unwrap().is_empty());
        assert!(store.inbound(3).await.unwrap().is_some());
    }
}
