//! [`AdminStore`] on PostgreSQL: the event log, channel health and the upkeep, pruned a chunk
//! at a time so no statement holds many rows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{PRUNE_CHUNK, PgStore, jobs, ms, time};
use crate::store::rows::event_record;
use crate::store::{AdminStore, ChannelHealth, InstanceReport, StoreResult};

/// How long event records are kept for `/admin/events`.
const EVENT_LOG_KEEP: i64 = 7 * 24 * 3600 * 1000;
/// How long jobs that were sent, skipped or cancelled are kept after they finished.
const FINISHED_JOBS_KEEP: i64 = 7 * 24 * 3600 * 1000;
/// How long processed bodies are kept after they arrived (to explain their events again).
const INBOUND_KEEP: i64 = 24 * 3600 * 1000;

#[async_trait]
impl AdminStore for PgStore {
    async fn recent_events(&self, limit: u32) -> StoreResult<Vec<serde_json::Value>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, record FROM event_log ORDER BY id DESC LIMIT $1",
                &[&i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| event_record(r.get(0), r.get(1)))
            .collect()
    }

    async fn event_record(&self, seq: i64) -> StoreResult<Option<serde_json::Value>> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT record FROM event_log WHERE id = $1", &[&seq])
            .await?;
        row.map(|r| event_record(seq, r.get(0))).transpose()
    }

    async fn prune(&self, now: DateTime<Utc>) -> StoreResult<()> {
        let now = ms(now);
        let mut client = self.client().await?;
        // Each statement deletes a chunk; the loops stop at the first chunk that is not full.
        let chunks = [
            "DELETE FROM dedupe WHERE key IN (SELECT key FROM dedupe WHERE expires_at <= $1 LIMIT $2)",
            "DELETE FROM event_log WHERE id IN (SELECT id FROM event_log WHERE at < $1 ORDER BY id LIMIT $2)",
            "DELETE FROM inbound WHERE id IN (SELECT id FROM inbound WHERE processed_at IS NOT NULL AND received_at < $1 ORDER BY id LIMIT $2)",
            "DELETE FROM sent_messages WHERE message_id IN (SELECT message_id FROM sent_messages WHERE sent_at < $1 ORDER BY sent_at LIMIT $2)",
        ];
        let befores = [
            now,
            now - EVENT_LOG_KEEP,
            now - INBOUND_KEEP,
            now - crate::store::rows::SENT_KEPT_MS,
        ];
        for (sql, before) in chunks.iter().zip(befores) {
            while client.execute(*sql, &[&before, &PRUNE_CHUNK]).await? as i64 == PRUNE_CHUNK {}
        }
        while jobs::prune_finished(&mut client, now - FINISHED_JOBS_KEEP).await? as i64
            == PRUNE_CHUNK
        {}
        Ok(())
    }

    async fn ready(&self) -> StoreResult<()> {
        let client = self.client().await?;
        // A replica (or a read-only session) answers but takes no writes.
        let read_only: bool = client
            .query_one(
                "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'",
                &[],
            )
            .await?
            .get(0);
        if read_only {
            return Err(crate::store::StoreError::Backend {
                backend: "postgres",
                message: "the database is read-only (a replica?)".into(),
            });
        }
        Ok(())
    }

    async fn channel_health(&self) -> StoreResult<Vec<ChannelHealth>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT name, status, detail, at FROM channel_health ORDER BY name",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ChannelHealth {
                name: r.get(0),
                status: r.get(1),
                detail: r.get(2),
                at: time(r.get(3)),
            })
            .collect())
    }

    async fn hold_lease(
        &self,
        name: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let client = self.client().await?;
        let held = client
            .query_opt(
                "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
                 WHERE leases.holder = excluded.holder OR leases.until <= $4
                 RETURNING holder",
                &[&name, &self.instance.as_str(), &ms(until), &ms(now)],
            )
            .await?;
        Ok(held.is_some())
    }

    async fn report_instance(&self, report: &InstanceReport) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO instances (name, rules_version, rules, started_at, seen_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (name) DO UPDATE SET rules_version = excluded.rules_version, rules = excluded.rules,
                   started_at = excluded.started_at, seen_at = excluded.seen_at",
                &[
                    &report.name,
                    &report.rules_version,
                    &(report.rules.min(i32::MAX as u32) as i32),
                    &ms(report.started_at),
                    &ms(report.seen_at),
                ],
            )
            .await?;
        Ok(())
    }

    async fn instances(&self) -> StoreResult<Vec<InstanceReport>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT name, rules_version, rules, started_at, seen_at FROM instances ORDER BY name",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| InstanceReport {
                name: r.get(0),
                rules_version: r.get(1),
                rules: r.get::<_, i32>(2).max(0) as u32,
                started_at: time(r.get(3)),
                seen_at: time(r.get(4)),
            })
            .collect())
    }
}
