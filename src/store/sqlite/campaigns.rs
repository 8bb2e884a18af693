//! Campaign bookkeeping: which fire times were handled, each run with its jobs, and number
//! verification runs ([`CampaignStore`] on SQLite).

use crate::store::GroupActivity;
use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::jobs;
use super::{SqliteStore, ms, time};
use crate::store::rows::JobRow;
use crate::store::{CampaignRun, CampaignStore, NewRun, StoreResult};
use crate::vocab::NewJob;

pub(super) fn checked(conn: &Connection, name: &str) -> StoreResult<Option<DateTime<Utc>>> {
    let at: Option<i64> = conn
        .prepare_cached("SELECT checked_at FROM campaign_state WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    Ok(at.map(time))
}

pub(super) fn set_checked(conn: &Connection, name: &str, at: i64) -> StoreResult<()> {
    conn.prepare_cached("INSERT INTO campaign_state (name, checked_at) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET checked_at = excluded.checked_at")?
        .execute(params![name, at])?;
    Ok(())
}

/// The run row and every recipient's job in one transaction: a crash leaves all or nothing,
/// and the unique (campaign, fire time) makes a second attempt at the same run a no-op.
pub(super) fn start_run(
    conn: &Connection,
    run: &NewRun,
    rows: &mut [JobRow],
    now: i64,
) -> StoreResult<Option<i64>> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO campaign_runs (campaign, fire_at, started_at, trigger, planned, skipped) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (campaign, fire_at) DO NOTHING",
        )?
        .execute(params![
            run.campaign,
            ms(run.fire_at),
            now,
            run.trigger,
            rows.len() as i64,
            i64::from(run.skipped)
        ])?;
    if inserted == 0 {
        return Ok(None);
    }
    let run_id = conn.last_insert_rowid();
    for row in rows.iter_mut() {
        row.campaign_run = Some(run_id);
        jobs::insert(conn, row, now)?;
    }
    Ok(Some(run_id))
}

pub(super) fn runs(
    conn: &Connection,
    campaign: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<CampaignRun>> {
    let mut statement = conn.prepare_cached(
        "SELECT r.id, r.campaign, r.fire_at, r.started_at, r.trigger, r.planned, r.skipped,
                r.sent_pruned + COALESCE(SUM(j.status = 'done'), 0) AS sent,
                COALESCE(SUM(j.status = 'dead'), 0) AS failed,
                r.skipped_pruned + COALESCE(SUM(j.status = 'skipped' OR j.status = 'cancelled'), 0) AS skipped_late,
                COALESCE(SUM(j.status IN ('pending', 'sending')), 0) AS pending,
                (SELECT COUNT(*) FROM sent_messages s WHERE s.campaign_run = r.id AND s.status IN ('delivered', 'read', 'played')) AS delivered,
                (SELECT COUNT(*) FROM sent_messages s WHERE s.campaign_run = r.id AND s.status IN ('read', 'played')) AS seen,
                (SELECT COUNT(*) FROM sent_messages s WHERE s.campaign_run = r.id AND s.replied_at IS NOT NULL) AS replied,
                (SELECT COUNT(*) FROM sent_messages s WHERE s.campaign_run = r.id AND s.status = 'failed') AS failed_after
         FROM campaign_runs r LEFT JOIN jobs j ON j.campaign_run = r.id
         WHERE (?1 IS NULL OR r.campaign = ?1)
         GROUP BY r.id ORDER BY r.id DESC LIMIT ?2",
    )?;
    let mut rows = statement.query(params![campaign, i64::from(limit)])?;
    let mut runs = Vec::new();
    while let Some(row) = rows.next()? {
        let count = |name: &str| -> StoreResult<u32> {
            Ok(row.get::<_, i64>(name)?.clamp(0, i64::from(u32::MAX)) as u32)
        };
        runs.push(CampaignRun {
            id: row.get("id")?,
            campaign: row.get("campaign")?,
            fire_at: time(row.get("fire_at")?),
            started_at: time(row.get("started_at")?),
            trigger: row.get("trigger")?,
            planned: count("planned")?,
            skipped: count("skipped")? + count("skipped_late")?,
            sent: count("sent")?,
            delivered: count("delivered")?,
            read: count("seen")?,
            replied: count("replied")?,
            failed: count("failed")? + count("failed_after")?,
            pending: count("pending")?,
        });
    }
    Ok(runs)
}

#[async_trait]
impl CampaignStore for SqliteStore {
    async fn campaign_checked(&self, name: &str) -> StoreResult<Option<DateTime<Utc>>> {
        let name = name.to_owned();
        self.db.read_now(move |conn| checked(conn, &name)).await
    }

    async fn set_campaign_checked(&self, name: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let name = name.to_owned();
        self.db
            .write(move |conn| set_checked(conn, &name, ms(at)))
            .await
    }

    async fn set_campaign_paused(
        &self,
        name: &str,
        paused: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let name = name.to_owned();
        let paused_at = paused.then(|| ms(now));
        self.db
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO campaign_state (name, checked_at, paused_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET checked_at = excluded.checked_at,
                     paused_at = excluded.paused_at",
                )?
                .execute(params![name, ms(now), paused_at])?;
                Ok(())
            })
            .await
    }

    async fn paused_campaigns(&self) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        self.db
            .read_now(|conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT name, paused_at FROM campaign_state WHERE paused_at IS NOT NULL",
                )?;
                let rows = statement
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
                let mut paused = Vec::new();
                for row in rows {
                    let (name, at) = row?;
                    paused.push((name, time(at)));
                }
                Ok(paused)
            })
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
            .write(move |conn| start_run(conn, &run, &mut rows, ms(now)))
            .await
    }

    async fn campaign_runs(
        &self,
        campaign: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<CampaignRun>> {
        let campaign = campaign.map(str::to_owned);
        self.db
            .read(move |conn| runs(conn, campaign.as_deref(), limit))
            .await
    }

    async fn group_activity(&self, group: &str) -> StoreResult<GroupActivity> {
        let group = group.to_owned();
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT phone, posted_at, joined_at FROM group_activity WHERE group_id = ?1",
                )?;
                let mut rows = statement.query([group])?;
                let mut seen = GroupActivity::default();
                while let Some(row) = rows.next()? {
                    let phone: String = row.get(0)?;
                    let posted: Option<i64> = row.get(1)?;
                    let joined: Option<i64> = row.get(2)?;
                    if phone.is_empty() {
                        seen.watched_since = joined.map(time);
                    } else {
                        seen.members
                            .insert(phone, (posted.map(time), joined.map(time)));
                    }
                }
                Ok(seen)
            })
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
}
