//! [`IntakeStore`] on SQLite: bodies stored, claimed by range, completed in one write.

use std::sync::{Arc, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::claims::Range;
use super::ops::{Completion, chat_generation};
use super::{
    SqliteStore, awaited, chat_states, claims, contacts_of, inbound_row, ms, seen, sent_of,
};
use crate::store::{
    Completed, Handover, Inbound, IntakeStore, Known, Lookup, Outcome, Source, StoreError,
    StoreResult,
};

#[async_trait]
impl IntakeStore for SqliteStore {
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

    async fn claim_inbound(
        &self,
        limit: u32,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Inbound>> {
        let taken_ahead = {
            let mut ahead = self.ahead.lock().unwrap_or_else(PoisonError::into_inner);
            ahead.asks = Some((limit, (lease_until - now).num_milliseconds().max(0)));
            ahead.claimed.take()
        };
        let claimed = match taken_ahead {
            // Claimed by the write that completed the last batch.
            Some(claimed) => Some(claimed),
            None => self.claim_now(limit, lease_until, now).await?,
        };
        match claimed {
            None => Ok(Vec::new()),
            Some((_, Some(bodies))) => Ok(bodies),
            Some((range, None)) => self.read_range(range).await,
        }
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

    async fn known(&self, lookup: Lookup, now: DateTime<Utc>) -> StoreResult<Known> {
        // One trip to the writer's thread instead of four: intake waits for each.
        self.db
            .read_now(move |conn| {
                // Every chat is read as of the current generation: one read, not one a chat.
                let generation = chat_generation(conn)?;
                let versions = lookup
                    .chats
                    .iter()
                    .map(|chat| (chat.clone(), generation))
                    .collect();
                Ok(Known {
                    seen: seen(conn, &lookup.keys, ms(now))?,
                    contacts: contacts_of(conn, &lookup.phones)?,
                    chats: chat_states(conn, &lookup.chats)?,
                    versions,
                    sent: sent_of(conn, &lookup.messages)?,
                    awaited: awaited(conn, &lookup.writing, ms(now))?,
                })
            })
            .await
    }

    async fn complete(
        &self,
        done: &[(i64, Outcome)],
        read: &[(String, u64)],
        now: DateTime<Utc>,
        handover: Option<Handover>,
    ) -> StoreResult<Completed> {
        let asks = self
            .ahead
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .asks;
        let completion = Completion::new(done, read, self.instance.as_str())?.claiming_next(asks);
        let (inbox, ahead) = (self.inbox.clone(), self.ahead.clone());
        let written = self
            .db
            .write_then(
                move |conn| completion.write(conn, ms(now), handover),
                move |(claimed, through, next)| {
                    inbox.processed_through(through);
                    // The bodies after the ones just completed are usually all in memory.
                    let next = next.map(|range| (range, inbox.take(range.first, range.last)));
                    ahead.lock().unwrap_or_else(PoisonError::into_inner).claimed = next;
                    claimed
                },
            )
            .await;
        match written {
            Ok(claimed) => Ok(Completed::Committed(claimed)),
            Err(StoreError::Conflict(conflict)) => Ok(Completed::Conflict(*conflict)),
            Err(err) => Err(err),
        }
    }
}

impl SqliteStore {
    /// Claims the next range in a write of its own, and takes its bodies from memory when they
    /// are there.
    async fn claim_now(
        &self,
        limit: u32,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(Range, Option<Vec<Inbound>>)>> {
        let instance = self.instance.as_str().to_owned();
        let inbox = self.inbox.clone();
        self.db
            .write_then(
                move |conn| claims::claim(conn, &instance, limit, ms(lease_until), ms(now)),
                // After the commit, on the writer's thread: what this process stored and intake
                // has not taken is usually all there.
                move |range| range.map(|r| (r, inbox.take(r.first, r.last))),
            )
            .await
    }

    /// The bodies of a claimed range, read from the database.
    async fn read_range(&self, range: Range) -> StoreResult<Vec<Inbound>> {
        self.db
            .read_now(move |conn| {
                let mut statement = conn.prepare_cached("SELECT id, source, name, method, body, received_at FROM inbound WHERE id BETWEEN ?1 AND ?2 ORDER BY id")?;
                let mut rows = statement.query(params![range.first, range.last])?;
                let mut found = Vec::new();
                while let Some(row) = rows.next()? {
                    found.push(inbound_row(row)?);
                }
                Ok(found)
            })
            .await
    }
}
