//! What processing decided, written: dedupe keys, contact and chat changes, jobs, conversation
//! turns and event records.
//!
//! Everything is turned into plain rows (JSON included) on the caller's thread first, so the
//! writer thread, which every webhook waits for, does nothing but write.

use rusqlite::{Connection, OptionalExtension, params};

use super::claims;
use super::jobs;
use super::ms;
use crate::store::rows::JobRow;
use crate::store::{Conflict, Handover, Op, Outcome, StoreError, StoreResult};
use crate::vocab::{ContactChange, HandoffChange, Job, Work};

/// An op ready to be written.
#[derive(Debug, Clone)]
pub(super) enum Change {
    Job(Box<JobRow>),
    Other(Op),
}

/// The ops as rows, in order.
pub(super) fn changes<'a>(ops: impl IntoIterator<Item = &'a Op>) -> StoreResult<Vec<Change>> {
    ops.into_iter()
        .map(|op| {
            Ok(match op {
                Op::Job(job) => Change::Job(Box::new(JobRow::new(job)?)),
                other => Change::Other(other.clone()),
            })
        })
        .collect()
}

/// The result of processing a batch of claimed bodies, as rows.
pub(super) struct Completion {
    seen: Vec<(String, i64)>,
    changes: Vec<Change>,
    records: Vec<String>,
    /// The first and last body completed.
    ids: Option<(i64, i64)>,
    /// Chats the batch read, with the versions it read.
    read: Vec<(String, u64)>,
    instance: String,
    /// Claim the next bodies in the same write: how many, and for how long (ms).
    claim_next: Option<(u32, i64)>,
}

/// What a completion wrote: the calls claimed on the spot, the cursor, and the bodies it
/// claimed next.
pub(super) type Written = (Vec<Job>, i64, Option<claims::Range>);

impl Completion {
    pub(super) fn new(
        done: &[(i64, Outcome)],
        read: &[(String, u64)],
        instance: &str,
    ) -> StoreResult<Self> {
        let ids = done.iter().map(|(id, _)| *id);
        Ok(Self {
            seen: done
                .iter()
                .flat_map(|(_, o)| o.seen.iter().map(|(key, until)| (key.clone(), ms(*until))))
                .collect(),
            changes: changes(done.iter().flat_map(|(_, o)| &o.ops))?,
            records: done
                .iter()
                .flat_map(|(_, o)| o.records.iter().cloned())
                .collect(),
            ids: ids.clone().min().zip(ids.max()),
            read: read.to_vec(),
            instance: instance.to_owned(),
            claim_next: None,
        })
    }

    /// Also claims up to `limit` next bodies for `lease` (ms), so the next batch needs no write
    /// of its own.
    pub(super) fn claiming_next(mut self, next: Option<(u32, i64)>) -> Self {
        self.claim_next = next;
        self
    }

    /// Writes it all and marks the bodies processed; returns the calls claimed on the spot and
    /// the new cursor. A conflict is an error, so the write is undone (see `Db::write`).
    pub(super) fn write(
        &self,
        conn: &Connection,
        now: i64,
        handover: Option<Handover>,
    ) -> StoreResult<Written> {
        let range = match self.ids {
            Some((first, last)) => match claims::held(conn, &self.instance, first, last)? {
                Some(range) => Some(range),
                None => {
                    return Err(StoreError::Conflict(Box::new(Conflict {
                        lost_claim: true,
                        ..Conflict::default()
                    })));
                }
            },
            None => None,
        };
        let mut refused = Conflict {
            changed: changed_since(conn, &self.read)?,
            ..Conflict::default()
        };
        // The unique key decides: a key whose row is there and not yet expired is taken.
        let mut remember = conn.prepare_cached(
            "INSERT INTO dedupe (key, expires_at) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
             WHERE dedupe.expires_at <= ?3",
        )?;
        for (key, until) in &self.seen {
            if remember.execute(params![key, until, now])? == 0 {
                refused.taken.push(key.clone());
            }
        }
        if refused != Conflict::default() {
            return Err(StoreError::Conflict(Box::new(refused)));
        }
        let mut claimed = Vec::new();
        for change in &self.changes {
            match (change, handover) {
                (Change::Job(row), Some(handover)) if claimed.len() < handover.limit as usize => {
                    if let Some(job) = jobs::insert_claimed(
                        conn,
                        row,
                        now,
                        ms(handover.lease_until),
                        &self.instance,
                    )? {
                        claimed.push(job);
                    }
                }
                (Change::Job(row), _) => jobs::insert(conn, row, now)?,
                (Change::Other(op), _) => apply_op(conn, op, now)?,
            }
        }
        let mut record =
            conn.prepare_cached("INSERT INTO event_log (at, record) VALUES (?1, ?2)")?;
        for text in &self.records {
            record.execute(params![now, text])?;
        }
        let through = match (range, self.ids) {
            (Some(range), Some((first, last))) => claims::complete(conn, range, first, last)?,
            _ => claims::cursor(conn)?,
        };
        let next = match self.claim_next {
            Some((limit, lease)) => claims::claim(conn, &self.instance, limit, now + lease, now)?,
            None => None,
        };
        Ok((claimed, through, next))
    }
}

/// The generation of chat state: what a read of any chat is as of.
pub(super) fn chat_generation(conn: &Connection) -> StoreResult<u64> {
    let value: i64 = conn
        .prepare_cached("SELECT value FROM chat_generation")?
        .query_row([], |r| r.get(0))?;
    Ok(value.max(0) as u64)
}

/// A chat's version: the generation of its last change, 0 if it never changed.
fn chat_version(conn: &Connection, chat: &str) -> StoreResult<u64> {
    let version: Option<i64> = conn
        .prepare_cached("SELECT version FROM chat_state WHERE chat_id = ?1")?
        .query_row([chat], |r| r.get(0))
        .optional()?;
    Ok(version.unwrap_or(0).max(0) as u64)
}

/// The chats of `read` that changed after the version read.
fn changed_since(conn: &Connection, read: &[(String, u64)]) -> StoreResult<Vec<String>> {
    let now = chat_generation(conn)?;
    // Nothing changed anywhere since the oldest read: no chat needs looking at.
    if read.iter().all(|(_, version)| *version >= now) {
        return Ok(Vec::new());
    }
    let mut changed = Vec::new();
    for (chat, version) in read {
        if chat_version(conn, chat)? > *version {
            changed.push(chat.clone());
        }
    }
    Ok(changed)
}

/// A chat's state changed: the generation moves on, and the chat's version with it.
fn bump(conn: &Connection, chat: &str) -> StoreResult<()> {
    let generation: i64 = conn
        .prepare_cached("UPDATE chat_generation SET value = value + 1 RETURNING value")?
        .query_row([], |r| r.get(0))?;
    conn.prepare_cached(
        "INSERT INTO chat_state (chat_id, version) VALUES (?1, ?2)
         ON CONFLICT (chat_id) DO UPDATE SET version = excluded.version",
    )?
    .execute(params![chat, generation])?;
    Ok(())
}

/// Applies changes in order.
pub(super) fn apply(conn: &Connection, changes: &[Change], now: i64) -> StoreResult<()> {
    for change in changes {
        match change {
            Change::Job(row) => jobs::insert(conn, row, now)?,
            Change::Other(op) => apply_op(conn, op, now)?,
        }
    }
    Ok(())
}

fn apply_op(conn: &Connection, op: &Op, now: i64) -> StoreResult<()> {
    match op {
        Op::Apply(Work::Contact(change)) => apply_contact(conn, change, now)?,
        Op::Apply(Work::Cancel { key }) => jobs::cancel_key(conn, key, now)?,
        Op::Apply(Work::Handoff(change)) => apply_handoff(conn, change, now)?,
        Op::Apply(work @ (Work::Call(_) | Work::Ai(_) | Work::Lookup(_))) => {
            return Err(StoreError::Corrupt(format!(
                "a call is a job, it cannot be applied: {work:?}"
            )));
        }
        Op::Job(job) => jobs::insert(conn, &JobRow::new(job)?, now)?,
        Op::Turn(turn) => {
            conn.prepare_cached(
                "INSERT INTO turns (chat_id, role, text, at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                turn.chat,
                turn.role.as_str(),
                turn.text,
                ms(turn.at)
            ])?;
        }
        Op::AiFallbacks { chat, count } => {
            conn.prepare_cached("INSERT INTO ai_chats (chat_id, fallbacks) VALUES (?1, ?2) ON CONFLICT (chat_id) DO UPDATE SET fallbacks = excluded.fallbacks")?
                .execute(params![chat, i64::from(*count)])?;
        }
        Op::ChannelHealth(health) => {
            conn.prepare_cached("INSERT INTO channel_health (name, status, detail, at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET status = excluded.status, detail = excluded.detail, at = excluded.at WHERE excluded.at >= channel_health.at")?
                .execute(params![health.name, health.status, health.detail, ms(health.at)])?;
        }
        Op::Fired { rule, chat, at } => {
            conn.prepare_cached("INSERT INTO rule_fires (rule, chat_id, fired_at) VALUES (?1, ?2, ?3) ON CONFLICT (rule, chat_id) DO UPDATE SET fired_at = excluded.fired_at")?
                .execute(params![rule, chat, ms(*at)])?;
            bump(conn, chat)?;
        }
        Op::Sent(sent) => {
            // A status can come before the send's result is recorded: it is not lost, the
            // row then starts at that status.
            conn.prepare_cached(
                "INSERT INTO sent_messages (message_id, channel, chat, rule, campaign, campaign_run, text, kind, sent_at, status, options)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (message_id) DO NOTHING",
            )?
            .execute(params![
                sent.id,
                sent.channel,
                sent.chat,
                sent.rule,
                sent.campaign,
                sent.campaign_run,
                sent.text,
                sent.kind,
                ms(sent.sent_at),
                sent.status,
                crate::store::rows::stored_options(&sent.options),
            ])?;
        }
        Op::Status(status) => {
            if let Some(stage) = crate::vocab::sent::stage(&status.status) {
                let sql = format!(
                    "UPDATE sent_messages SET status = ?2, status_at = ?3
                     WHERE message_id = ?1 AND {} < ?4",
                    crate::store::rows::STAGE_OF_STATUS
                );
                conn.prepare_cached(&sql)?.execute(params![
                    status.id,
                    status.status,
                    ms(status.at),
                    stage
                ])?;
            }
        }
        Op::GroupActivity {
            group,
            phone,
            at,
            joined,
        } => {
            let at = ms(*at);
            // The group's watch starts the first time any of its events is seen.
            conn.prepare_cached("INSERT INTO group_activity (group_id, phone, joined_at) VALUES (?1, '', ?2) ON CONFLICT DO NOTHING")?
                .execute(params![group, at])?;
            let sql = if *joined {
                "INSERT INTO group_activity (group_id, phone, joined_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (group_id, phone) DO UPDATE SET joined_at = MAX(COALESCE(joined_at, 0), excluded.joined_at)"
            } else {
                "INSERT INTO group_activity (group_id, phone, posted_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (group_id, phone) DO UPDATE SET posted_at = MAX(COALESCE(posted_at, 0), excluded.posted_at)"
            };
            conn.prepare_cached(sql)?
                .execute(params![group, phone, at])?;
        }
        Op::Replied { chat, at } => {
            conn.prepare_cached(
                "UPDATE sent_messages SET replied_at = ?2
                 WHERE chat = ?1 AND campaign_run IS NOT NULL AND replied_at IS NULL
                   AND sent_at >= ?3 AND sent_at <= ?2",
            )?
            .execute(params![
                chat,
                ms(*at),
                ms(*at) - crate::store::rows::REPLY_WINDOW_MS
            ])?;
        }
    }
    Ok(())
}

fn apply_handoff(conn: &Connection, change: &HandoffChange, now: i64) -> StoreResult<()> {
    match change {
        HandoffChange::Start {
            chat,
            until,
            resume_on,
            rule,
        } => {
            conn.prepare_cached(
                "INSERT INTO chat_state (chat_id, handoff_until, resume_on, handoff_rule, handoff_since) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (chat_id) DO UPDATE SET handoff_until = excluded.handoff_until, resume_on = excluded.resume_on,
                   handoff_rule = excluded.handoff_rule, handoff_since = excluded.handoff_since",
            )?
            .execute(params![chat, ms(*until), resume_on, rule, now])?;
            bump(conn, chat)?;
        }
        HandoffChange::End { chat } => {
            conn.prepare_cached("UPDATE chat_state SET handoff_until = NULL, resume_on = NULL, handoff_rule = NULL, handoff_since = NULL WHERE chat_id = ?1")?
                .execute([chat])?;
            bump(conn, chat)?;
        }
    }
    Ok(())
}

fn apply_contact(conn: &Connection, change: &ContactChange, now: i64) -> StoreResult<()> {
    match change {
        ContactChange::Tag { phone, tag } => {
            conn.prepare_cached("INSERT INTO contact_tags (phone, tag, added_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")?
                .execute(params![phone, tag, now])?;
        }
        ContactChange::Untag { phone, tag } => {
            conn.prepare_cached("DELETE FROM contact_tags WHERE phone = ?1 AND tag = ?2")?
                .execute(params![phone, tag])?;
        }
        ContactChange::Set { phone, key, value } => {
            conn.prepare_cached(
                "INSERT INTO contacts (phone, attrs, updated_at) VALUES (?1, json_object(?2, ?3), ?4)
                 ON CONFLICT (phone) DO UPDATE SET attrs = json_set(attrs, '$.' || json_quote(?2), ?3), updated_at = ?4",
            )?
            .execute(params![phone, key, value, now])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use crate::store::{
        Completed, Handover, IntakeStore, JobStore, Op, Outcome, Source, SqliteStore,
    };
    use crate::vocab::{JobResult, JobStatus, NewJob, OutboundRequest, Target, Work};

    fn reply(lane: &str, n: u32) -> Op {
        let request = OutboundRequest {
            target: Target::Whapi,
            method: "POST".into(),
            path: "/messages/text".into(),
            headers: Vec::new(),
            body: None,
            lane: lane.into(),
            channel: None,
            pin: None,
        };
        let now = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap();
        Op::Job(Box::new(NewJob::action(
            "r",
            &format!("reply {n}"),
            &format!("e{n}"),
            Work::Call(request),
            now,
        )))
    }

    /// Stores a body, claims it and completes it with `outcome`; the calls handed over.
    async fn complete_one(
        store: &SqliteStore,
        outcome: Outcome,
        now: chrono::DateTime<Utc>,
        handover: Option<Handover>,
    ) -> Vec<crate::vocab::Job> {
        let source = Source::Custom { name: "e".into() };
        let id = store.accept(source, "{}", now).await.unwrap();
        let claimed = store
            .claim_inbound(1, now + Duration::seconds(60), now)
            .await
            .unwrap();
        assert_eq!(claimed[0].id, id);
        match store
            .complete(&[(id, outcome)], &[], now, handover)
            .await
            .unwrap()
        {
            Completed::Committed(jobs) => jobs,
            Completed::Conflict(conflict) => panic!("{conflict:?}"),
        }
    }

    async fn claimed_actions(store: &SqliteStore, now: chrono::DateTime<Utc>) -> Vec<String> {
        let lease = now + Duration::seconds(120);
        let jobs = store.claim_jobs(now, lease, 10).await.unwrap();
        jobs.into_iter().map(|j| j.action).collect()
    }

    #[tokio::test]
    async fn calls_are_claimed_as_written_only_where_a_claim_would_take_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).await.unwrap();
        let now = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap();
        let handover = Some(Handover {
            lease_until: now + Duration::seconds(120),
            limit: 2,
        });
        let outcome = Outcome {
            ops: vec![
                reply("chat:a", 1),
                reply("chat:a", 2),
                reply("chat:b", 3),
                reply("chat:c", 4),
            ],
            ..Outcome::default()
        };
        let claimed = complete_one(&store, outcome, now, handover).await;
        // The second call of chat a waits for the first; the limit leaves chat c's call too.
        let actions: Vec<&str> = claimed.iter().map(|j| j.action.as_str()).collect();
        assert_eq!(actions, ["reply 1", "reply 3"]);
        assert!(
            claimed
                .iter()
                .all(|j| j.status == JobStatus::Sending && j.attempts == 1)
        );
        let stored = store.job(claimed[0].id).await.unwrap().unwrap();
        assert_eq!(stored.status, JobStatus::Sending);
        assert_eq!(stored.work, claimed[0].work);

        let next = claimed_actions(&store, now).await;
        assert_eq!(
            next,
            ["reply 4"],
            "chat a is busy until its first call ends"
        );
        store
            .finish_job(
                claimed[0].id,
                &JobResult::Done {
                    response: String::new(),
                },
                now,
            )
            .await
            .unwrap();
        let next = claimed_actions(&store, now).await;
        assert_eq!(next, ["reply 2"]);

        // A chat with a call waiting for a retry gets nothing claimed past it.
        store
            .finish_job(
                claimed[1].id,
                &JobResult::Retry {
                    at: now + Duration::seconds(30),
                    error: "503".into(),
                },
                now,
            )
            .await
            .unwrap();
        let outcome = Outcome {
            ops: vec![reply("chat:b", 5)],
            ..Outcome::default()
        };
        let claimed = complete_one(&store, outcome, now, handover).await;
        assert!(claimed.is_empty(), "{claimed:?}");
    }
}
