//! [`IntakeStore`] on SQLite: bodies stored, claimed by range, completed in one write.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::ops::{Completion, chat_version};
use super::{SqliteStore, chat_states, claims, contacts_of, inbound_row, ms, seen};
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
        let instance = self.instance.as_str().to_owned();
        let inbox = self.inbox.clone();
        let claimed = self
            .db
            .write_then(
                move |conn| claims::claim(conn, &instance, limit, ms(lease_until), ms(now)),
                // After the commit, on the writer's thread: what this process stored and intake
                // has not taken is usually all there.
                move |range| range.map(|r| (r, inbox.take(r.first, r.last))),
            )
            .await?;
        match claimed {
            None => Ok(Vec::new()),
            Some((_, Some(bodies))) => Ok(bodies),
            Some((range, None)) => {
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
                let mut versions = std::collections::HashMap::with_capacity(lookup.chats.len());
                for chat in &lookup.chats {
                    versions.insert(chat.clone(), chat_version(conn, chat)?);
                }
                Ok(Known {
                    seen: seen(conn, &lookup.keys, ms(now))?,
                    contacts: contacts_of(conn, &lookup.phones)?,
                    chats: chat_states(conn, &lookup.chats)?,
                    versions,
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
        let completion = Completion::new(done, read, self.instance.as_str())?;
        let inbox = self.inbox.clone();
        let written = self
            .db
            .write_then(
                move |conn| completion.write(conn, ms(now), handover),
                move |(claimed, through)| {
                    inbox.processed_through(through);
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
