//! [`IntakeStore`] on PostgreSQL: bodies claimed row by row with `FOR UPDATE SKIP LOCKED`, and
//! a batch completed in one transaction that holds the chats it read.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::people::{CHAT_LOCK, apply};
use super::{PgStore, awaited, chat_states, contacts_of, jobs, ms, seen, sent_of, time};
use crate::store::rows::JobRow;
use crate::store::{
    Completed, Conflict, Handover, Inbound, IntakeStore, Known, Lookup, Op, Outcome, Source,
    StoreResult,
};

const INBOUND_COLUMNS: &str = "id, source, name, method, body, received_at";

fn inbound_row(row: &Row) -> Inbound {
    let kind: String = row.get("source");
    let name: String = row.get("name");
    let source = if kind == "custom" {
        Source::Custom { name }
    } else {
        Source::Webhook {
            path: name,
            method: row.get("method"),
        }
    };
    Inbound {
        id: row.get("id"),
        source,
        body: row.get("body"),
        received_at: time(row.get("received_at")),
    }
}

/// The chats a webhook body is about, as their ordering lanes (so every spelling of a
/// person's chat is one): the `chat_id`, `recipient_id` or `group_id` of each item. A custom
/// event names its person in `phone`.
pub(in crate::store) fn chats_of(body: &str) -> Vec<String> {
    let Ok(serde_json::Value::Object(body)) = serde_json::from_str::<serde_json::Value>(body)
    else {
        return Vec::new();
    };
    let mut chats: Vec<String> = body
        .values()
        .filter_map(serde_json::Value::as_array)
        .flatten()
        .filter_map(|item| {
            ["chat_id", "recipient_id", "group_id"]
                .iter()
                .find_map(|key| item.get(*key)?.as_str())
        })
        .chain(body.get("phone").and_then(serde_json::Value::as_str))
        .map(|chat| crate::vocab::ChatId::new(chat).lane())
        .collect();
    chats.sort_unstable();
    chats.dedup();
    chats
}

#[async_trait]
impl IntakeStore for PgStore {
    async fn accept(&self, source: Source, body: &str, at: DateTime<Utc>) -> StoreResult<i64> {
        let (kind, name, method) = match &source {
            Source::Webhook { path, method } => ("webhook", path.as_str(), method.as_str()),
            Source::Custom { name } => ("custom", name.as_str(), "POST"),
        };
        let chats = chats_of(body);
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "WITH body AS (
                    INSERT INTO inbound (source, name, method, body, received_at) VALUES ($1, $2, $3, $4, $5) RETURNING id),
                 chats AS (
                    INSERT INTO inbound_chats (chat, inbound_id) SELECT c, body.id FROM body, unnest($6::text[]) AS c)
                 SELECT id FROM body",
            )
            .await?;
        let row = client
            .query_one(&statement, &[&kind, &name, &method, &body, &ms(at), &chats])
            .await?;
        Ok(row.get(0))
    }

    async fn claim_inbound(
        &self,
        limit: u32,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Inbound>> {
        let client = self.client().await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [
            &self.instance.as_str(),
            &ms(lease_until),
            &ms(now),
            &i64::from(limit),
        ];
        // What this instance held when it stopped comes first, with its lease renewed.
        let held = client
            .prepare_cached(&format!(
                "UPDATE inbound SET lease_until = $2
                 WHERE id IN (
                    SELECT id FROM inbound
                    WHERE processed_at IS NULL AND claimed_by = $1 AND $3::bigint IS NOT NULL
                    ORDER BY id LIMIT $4
                    FOR UPDATE)
                 RETURNING {INBOUND_COLUMNS}"
            ))
            .await?;
        let mut rows = client.query(&held, &params).await?;
        if rows.is_empty() {
            let fresh = client
                .prepare_cached(&format!(
                    "UPDATE inbound SET claimed_by = $1, lease_until = $2
                     WHERE id IN (
                        SELECT i.id FROM inbound i
                        WHERE i.processed_at IS NULL AND (i.lease_until IS NULL OR i.lease_until <= $3)
                          AND NOT EXISTS (
                            SELECT 1 FROM inbound_chats mine
                            JOIN inbound_chats earlier
                              ON earlier.chat = mine.chat AND earlier.inbound_id < mine.inbound_id
                            WHERE mine.inbound_id = i.id)
                        ORDER BY i.id LIMIT $4
                        FOR UPDATE SKIP LOCKED)
                     RETURNING {INBOUND_COLUMNS}"
                ))
                .await?;
            rows = client.query(&fresh, &params).await?;
        }
        let mut bodies: Vec<Inbound> = rows.iter().map(inbound_row).collect();
        bodies.sort_by_key(|b| b.id);
        Ok(bodies)
    }

    async fn inbound(&self, id: i64) -> StoreResult<Option<Inbound>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {INBOUND_COLUMNS} FROM inbound WHERE id = $1"),
                &[&id],
            )
            .await?;
        Ok(row.as_ref().map(inbound_row))
    }

    async fn known(&self, lookup: Lookup, now: DateTime<Utc>) -> StoreResult<Known> {
        let client = self.client().await?;
        let mut versions: HashMap<String, u64> =
            lookup.chats.iter().map(|c| (c.clone(), 0)).collect();
        if !lookup.chats.is_empty() {
            for row in client
                .query(
                    "SELECT chat_id, version FROM chat_state WHERE chat_id = ANY($1)",
                    &[&lookup.chats],
                )
                .await?
            {
                versions.insert(row.get(0), row.get::<_, i64>(1).max(0) as u64);
            }
        }
        Ok(Known {
            seen: seen(&client, &lookup.keys, ms(now)).await?,
            contacts: contacts_of(&client, &lookup.phones).await?,
            chats: chat_states(&client, &lookup.chats).await?,
            versions,
            sent: sent_of(&client, &lookup.messages).await?,
            awaited: awaited(&client, &lookup.writing, ms(now)).await?,
        })
    }

    async fn complete(
        &self,
        done: &[(i64, Outcome)],
        read: &[(String, u64)],
        now: DateTime<Utc>,
        handover: Option<Handover>,
    ) -> StoreResult<Completed> {
        let now = ms(now);
        let instance = self.instance.as_str();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let ids: Vec<i64> = done.iter().map(|(id, _)| *id).collect();
        if !ids.is_empty() {
            let held: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM (SELECT id FROM inbound
                       WHERE id = ANY($1) AND claimed_by = $2 AND processed_at IS NULL FOR UPDATE) held",
                    &[&ids, &instance],
                )
                .await?
                .get(0);
            if held != ids.len() as i64 {
                return Ok(Completed::Conflict(Conflict {
                    lost_claim: true,
                    ..Conflict::default()
                }));
            }
        }
        // The chats read are held, in one order, until the commit: a change to one of them
        // waits for this completion, and one made before it shows as a newer version.
        let mut chats: Vec<&(String, u64)> = read.iter().collect();
        chats.sort();
        chats.dedup_by(|a, b| a.0 == b.0);
        let mut refused = Conflict::default();
        if !chats.is_empty() {
            let names: Vec<&str> = chats.iter().map(|(c, _)| c.as_str()).collect();
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext(c)) FROM unnest($2::text[]) AS c ORDER BY hashtext(c)",
                &[&CHAT_LOCK, &names],
            )
            .await?;
            let now_versions: HashMap<String, i64> = tx
                .query(
                    "SELECT chat_id, version FROM chat_state WHERE chat_id = ANY($1)",
                    &[&names],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            for (chat, version) in &chats {
                let current = now_versions.get(chat).copied().unwrap_or(0).max(0) as u64;
                if current > *version {
                    refused.changed.push(chat.clone());
                }
            }
        }
        // The primary key decides: a key whose row is there and not yet expired is taken.
        let mut keys: Vec<(&str, i64)> = done
            .iter()
            .flat_map(|(_, o)| o.seen.iter().map(|(k, until)| (k.as_str(), ms(*until))))
            .collect();
        keys.sort();
        keys.dedup_by(|a, b| a.0 == b.0);
        if !keys.is_empty() {
            let (names, untils): (Vec<&str>, Vec<i64>) = keys.iter().copied().unzip();
            let statement = tx
                .prepare_cached(
                    "INSERT INTO dedupe (key, expires_at) SELECT * FROM unnest($1::text[], $2::bigint[])
                     ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
                     WHERE dedupe.expires_at <= $3
                     RETURNING key",
                )
                .await?;
            let taken_by_us: BTreeSet<String> = tx
                .query(&statement, &[&names, &untils, &now])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            refused.taken = names
                .iter()
                .filter(|k| !taken_by_us.contains(**k))
                .map(|k| (*k).to_owned())
                .collect();
        }
        if refused != Conflict::default() {
            // Dropping the transaction rolls it back: nothing of this batch is written.
            return Ok(Completed::Conflict(refused));
        }
        let ops: Vec<&Op> = done.iter().flat_map(|(_, o)| &o.ops).collect();
        // With a hand-over, the jobs are written here (claimed when they may be), in order.
        let rows: Vec<Option<JobRow>> = ops
            .iter()
            .map(|op| match op {
                Op::Job(job) if handover.is_some() => JobRow::new(job).map(Some),
                _ => Ok(None),
            })
            .collect::<StoreResult<_>>()?;
        let mut hand = match handover {
            Some(h) => Some(
                jobs::HandOver::prepare(
                    &tx,
                    rows.iter().flatten(),
                    now,
                    ms(h.lease_until),
                    h.limit as usize,
                )
                .await?,
            ),
            None => None,
        };
        for (op, row) in ops.iter().zip(&rows) {
            match (row, hand.as_mut()) {
                (Some(row), Some(hand)) => hand.insert(&tx, row, now, instance).await?,
                _ => apply(&tx, std::slice::from_ref(*op), now).await?,
            }
        }
        let claimed = hand.map(|h| h.claimed).unwrap_or_default();
        let records: Vec<&str> = done
            .iter()
            .flat_map(|(_, o)| o.records.iter().map(String::as_str))
            .collect();
        if !records.is_empty() {
            tx.execute(
                "INSERT INTO event_log (at, record) SELECT $1, r FROM unnest($2::text[]) WITH ORDINALITY AS t(r, n) ORDER BY n",
                &[&now, &records],
            )
            .await?;
        }
        if !ids.is_empty() {
            tx.execute(
                "UPDATE inbound SET processed_at = $1, claimed_by = NULL, lease_until = NULL WHERE id = ANY($2)",
                &[&now, &ids],
            )
            .await?;
            tx.execute(
                "DELETE FROM inbound_chats WHERE inbound_id = ANY($1)",
                &[&ids],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Completed::Committed(claimed))
    }
}
