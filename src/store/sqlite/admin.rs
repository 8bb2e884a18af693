//! [`AdminStore`] on SQLite: the event log and the upkeep.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;

use super::{
    EVENT_LOG_KEEP, FINISHED_JOBS_KEEP, INBOUND_KEEP, OLD_BODIES, OLD_EVENT_RECORDS,
    OLD_SENT_MESSAGES, SqliteStore, event_record, jobs, ms, prune, time,
};
use crate::store::{AdminStore, ChannelHealth, InstanceReport, StoreResult};

#[async_trait]
impl AdminStore for SqliteStore {
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
            (&OLD_SENT_MESSAGES, crate::store::rows::SENT_KEPT_MS),
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

    async fn channel_health(&self) -> StoreResult<Vec<ChannelHealth>> {
        self.db
            .read(|conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT name, status, detail, at FROM channel_health ORDER BY name",
                )?;
                let rows = statement.query_map([], |row| {
                    Ok(ChannelHealth {
                        name: row.get(0)?,
                        status: row.get(1)?,
                        detail: row.get(2)?,
                        at: time(row.get(3)?),
                    })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn hold_lease(
        &self,
        name: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (name, holder) = (name.to_owned(), self.instance.as_str().to_owned());
        self.db
            .write(move |conn| {
                let changed = conn
                    .prepare_cached(
                        "INSERT INTO leases (name, holder, until) VALUES (?1, ?2, ?3)
                         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
                         WHERE leases.holder = excluded.holder OR leases.until <= ?4",
                    )?
                    .execute(rusqlite::params![name, holder, ms(until), ms(now)])?;
                Ok(changed == 1)
            })
            .await
    }

    async fn report_instance(&self, report: &InstanceReport) -> StoreResult<()> {
        let report = report.clone();
        self.db
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO instances (name, rules_version, rules, started_at, seen_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (name) DO UPDATE SET rules_version = excluded.rules_version, rules = excluded.rules,
                       started_at = excluded.started_at, seen_at = excluded.seen_at",
                )?
                .execute(rusqlite::params![
                    report.name,
                    report.rules_version,
                    i64::from(report.rules),
                    ms(report.started_at),
                    ms(report.seen_at)
                ])?;
                Ok(())
            })
            .await
    }

    async fn instances(&self) -> StoreResult<Vec<InstanceReport>> {
        self.db
            .read(|conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT name, rules_version, rules, started_at, seen_at FROM instances ORDER BY name",
                )?;
                let rows = statement.query_map([], |row| {
                    Ok(InstanceReport {
                        name: row.get(0)?,
                        rules_version: row.get(1)?,
                        rules: row.get::<_, i64>(2)?.clamp(0, i64::from(u32::MAX)) as u32,
                        started_at: time(row.get(3)?),
                        seen_at: time(row.get(4)?),
                    })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }
}
