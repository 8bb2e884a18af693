//! The embedded SQLite store: one file in WAL mode, written by one thread that group-commits
//! every write waiting for it (see [`db`]), read by the workers on that thread and by listings
//! on reader threads.

mod admin;
mod campaigns;
mod checkpoint;
mod claims;
mod db;
mod inbox;
mod intake;
mod jobs;
mod migrate;
mod ops;
mod people;
mod prune;
mod queue;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use self::db::Db;
use self::inbox::Inbox;
use super::{Durability, Inbound, Instance, OpenOptions, Source, StoreError, StoreResult};
use crate::vocab::{ChatState, Contact, Handoff, SentMessage};

/// How long event records are kept for `/admin/events`.
const EVENT_LOG_KEEP: i64 = 7 * 24 * 3600 * 1000;
/// Most rows one pruning write looks at: webhooks waiting for the writer wait for a short one.
const PRUNE_CHUNK: i64 = 2_000;
/// Event records, by the time each was written.
static OLD_EVENT_RECORDS: prune::Aged = prune::Aged {
    table: "event_log",
    oldest: "SELECT id, at FROM event_log ORDER BY id LIMIT ?1",
};
/// Sent messages, by the time each was sent (rows are appended in that order).
static OLD_SENT_MESSAGES: prune::Aged = prune::Aged {
    table: "sent_messages",
    oldest: "SELECT id, sent_at FROM sent_messages ORDER BY id LIMIT ?1",
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
    /// Who holds the claims this handle makes.
    instance: Instance,
    /// Bodies claimed ahead, as the last batch completed, for intake's next claim.
    ahead: Arc<Mutex<Ahead>>,
}

/// The next claim, made in the write that completed the last batch.
#[derive(Debug, Default)]
struct Ahead {
    /// How much intake claims at a time, and for how long (ms), as it last asked.
    asks: Option<(u32, i64)>,
    /// The range claimed ahead, with its bodies if this process still had them.
    claimed: Option<(claims::Range, Option<Vec<Inbound>>)>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date; a
    /// commit survives a crash of the process. Claims are made as this machine's instance.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with_options(path, OpenOptions::default()).await
    }

    /// Opens the database file with the chosen guarantee for commits, as an instance.
    pub async fn open_with_options(path: &Path, options: OpenOptions) -> StoreResult<Self> {
        let synchronous = match options.durability {
            // In WAL mode NORMAL writes every commit to the log before answering, so a killed
            // process loses nothing; only a power loss can lose the last commits.
            Durability::Process => "NORMAL",
            // FULL also waits for the disk to flush the log at every commit.
            Durability::PowerLoss => "FULL",
        };
        Self::open_with(path, synchronous, options.instance).await
    }

    /// A throwaway database for rule tests: nothing waits for the disk.
    pub async fn open_scratch(path: &Path) -> StoreResult<Self> {
        Self::open_with(path, "OFF", Instance::new("test")).await
    }

    async fn open_with(
        path: &Path,
        synchronous: &'static str,
        instance: Instance,
    ) -> StoreResult<Self> {
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
            instance,
            ahead: Arc::default(),
        })
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Backend {
            backend: "sqlite",
            message: err.to_string(),
        }
    }
}

use crate::store::rows::{event_record, parse_attrs, stored_role};

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

/// The chats among `chats` that a campaign message sent in the day before `now` awaits.
fn awaited(conn: &Connection, chats: &[String], now: i64) -> StoreResult<BTreeSet<String>> {
    let mut statement = conn.prepare_cached(
        "SELECT 1 FROM sent_messages WHERE chat = ?1 AND campaign_run IS NOT NULL
           AND replied_at IS NULL AND sent_at >= ?2 LIMIT 1",
    )?;
    let since = now - crate::store::rows::REPLY_WINDOW_MS;
    let mut found = BTreeSet::new();
    for chat in chats {
        if statement.exists(rusqlite::params![chat, since])? {
            found.insert(chat.clone());
        }
    }
    Ok(found)
}

/// The messages among `ids` that Riposte sent, by id.
fn sent_of(conn: &Connection, ids: &[String]) -> StoreResult<HashMap<String, SentMessage>> {
    let mut found = HashMap::new();
    let mut statement = conn.prepare_cached(
        "SELECT message_id, channel, chat, rule, campaign, campaign_run, text, kind, sent_at, status, options
         FROM sent_messages WHERE message_id = ?1",
    )?;
    for id in ids {
        let sent = statement
            .query_row([id], |r| {
                Ok(SentMessage {
                    id: r.get(0)?,
                    channel: r.get(1)?,
                    chat: r.get(2)?,
                    rule: r.get(3)?,
                    campaign: r.get(4)?,
                    campaign_run: r.get(5)?,
                    text: r.get(6)?,
                    kind: r.get(7)?,
                    sent_at: time(r.get(8)?),
                    status: r.get(9)?,
                    options: crate::store::rows::read_options(r.get(10)?),
                })
            })
            .optional()?;
        if let Some(sent) = sent {
            found.insert(id.clone(), sent);
        }
    }
    Ok(found)
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

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::store::{
        AdminStore, CampaignRun, CampaignStore, Completed, IntakeStore, JobStore, NewRun, Outcome,
    };
    use crate::vocab::{JobId, JobResult, NewJob, Work};

    async fn next_ids(store: &SqliteStore, limit: u32) -> Vec<(i64, String)> {
        let now = Utc::now();
        let lease = now + chrono::Duration::minutes(1);
        let batch = store.claim_inbound(limit, lease, now).await.unwrap();
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
        // Claimed, then handed out again (the claim is this instance's) from the database: the
        // same bodies each time while none of them is completed.
        for _ in 0..3 {
            assert_eq!(next_ids(&store, 2).await, bodies(&[1, 2]));
        }
        let done = |ids: &[i64]| -> Vec<(i64, Outcome)> {
            ids.iter().map(|&id| (id, Outcome::default())).collect()
        };
        let completed = store
            .complete(&done(&[1, 2]), &[], now, None)
            .await
            .unwrap();
        assert!(
            matches!(completed, Completed::Committed(_)),
            "{completed:?}"
        );
        assert_eq!(next_ids(&store, 10).await, bodies(&[3]));
        accept(4).await;
        store.complete(&done(&[3]), &[], now, None).await.unwrap();
        assert_eq!(next_ids(&store, 10).await, bodies(&[4]));
        store.complete(&done(&[4]), &[], now, None).await.unwrap();
        assert!(next_ids(&store, 10).await.is_empty());
        drop(store);

        let reopened = SqliteStore::open(&dir.path().join("db")).await.unwrap();
        assert!(next_ids(&reopened, 10).await.is_empty());
    }

    /// Every job's id, in order.
    async fn job_ids(store: &SqliteStore) -> Vec<i64> {
        let mut ids: Vec<i64> = store
            .jobs(crate::store::JobQuery {
                limit: 10_000,
                ..Default::default()
            })
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
        let claimed = store
            .claim_inbound(2, t0 + chrono::Duration::minutes(1), t0)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 2);
        store
            .complete(&[(1, outcome(1)), (2, outcome(2))], &[], t0, None)
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
