//! [`CampaignStore`] on PostgreSQL: fire times handled, runs unique per (campaign, fire time)
//! by constraint, and number verification runs.

use crate::store::GroupActivity;
use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{PgStore, jobs, ms, time};
use crate::store::rows::JobRow;
use crate::store::{CampaignRun, CampaignStore, NewRun, StoreResult};
use crate::vocab::NewJob;

#[async_trait]
impl CampaignStore for PgStore {
    async fn campaign_checked(&self, name: &str) -> StoreResult<Option<DateTime<Utc>>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT checked_at FROM campaign_state WHERE name = $1",
                &[&name],
            )
            .await?;
        Ok(row.map(|r| time(r.get(0))))
    }

    async fn set_campaign_checked(&self, name: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO campaign_state (name, checked_at) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET checked_at = excluded.checked_at",
                &[&name, &ms(at)],
            )
            .await?;
        Ok(())
    }

    async fn set_campaign_paused(
        &self,
        name: &str,
        paused: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let client = self.client().await?;
        let paused_at = paused.then(|| ms(now));
        client
            .execute(
                "INSERT INTO campaign_state (name, checked_at, paused_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET checked_at = excluded.checked_at,
                 paused_at = excluded.paused_at",
                &[&name, &ms(now), &paused_at],
            )
            .await?;
        Ok(())
    }

    async fn paused_campaigns(&self) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT name, paused_at FROM campaign_state WHERE paused_at IS NOT NULL",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, String>(0), time(r.get(1))))
            .collect())
    }

    async fn start_campaign_run(
        &self,
        run: &NewRun,
        jobs: &[NewJob],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<i64>> {
        let mut rows = crate::parallel::map(jobs, 2_000, |_, job| JobRow::new(job))
            .into_iter()
            .collect::<StoreResult<Vec<_>>>()?;
        let now = ms(now);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The unique (campaign, fire time) makes a second instance's attempt at the same run,
        // or a retry of this one, a no-op.
        let inserted = tx
            .query_opt(
                "INSERT INTO campaign_runs (campaign, fire_at, started_at, trigger, planned, skipped)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (campaign, fire_at) DO NOTHING
                 RETURNING id",
                &[
                    &run.campaign,
                    &ms(run.fire_at),
                    &now,
                    &run.trigger,
                    &(rows.len().min(i32::MAX as usize) as i32),
                    &(run.skipped.min(i32::MAX as u32) as i32),
                ],
            )
            .await?;
        let Some(inserted) = inserted else {
            return Ok(None);
        };
        let run_id: i64 = inserted.get(0);
        for row in &mut rows {
            row.campaign_run = Some(run_id);
            jobs::insert(&tx, row, now, None).await?;
        }
        tx.commit().await?;
        Ok(Some(run_id))
    }

    async fn campaign_runs(
        &self,
        campaign: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<CampaignRun>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT r.id, r.campaign, r.fire_at, r.started_at, r.trigger, r.planned::bigint, r.skipped::bigint,
                        r.sent_pruned + COUNT(j.id) FILTER (WHERE j.status = 'done') AS sent,
                        COUNT(j.id) FILTER (WHERE j.status = 'dead') AS failed,
                        r.skipped_pruned + COUNT(j.id) FILTER (WHERE j.status IN ('skipped', 'cancelled')) AS skipped_late,
                        COUNT(j.id) FILTER (WHERE j.status IN ('pending', 'sending')) AS pending,
                        (SELECT COUNT(*) FROM sent_messages s WHERE s.campaign_run = r.id AND s.status IN ('delivered', 'read', 'played')) AS delivered,
                        (SELECT COUNT(*) FROM sent_messages s WHERE s.campaign_run = r.id AND s.status IN ('read', 'played')) AS seen,
                        (SELECT COUNT(*) FROM sent_messages s WHERE s.campaign_run = r.id AND s.replied_at IS NOT NULL) AS replied,
                        (SELECT COUNT(*) FROM sent_messages s WHERE s.campaign_run = r.id AND s.status = 'failed') AS failed_after
                 FROM campaign_runs r LEFT JOIN jobs j ON j.campaign_run = r.id
                 WHERE ($1::text IS NULL OR r.campaign = $1)
                 GROUP BY r.id ORDER BY r.id DESC LIMIT $2",
                &[&campaign, &i64::from(limit)],
            )
            .await?;
        let count = |v: i64| v.clamp(0, i64::from(u32::MAX)) as u32;
        Ok(rows
            .iter()
            .map(|row| CampaignRun {
                id: row.get(0),
                campaign: row.get(1),
                fire_at: time(row.get(2)),
                started_at: time(row.get(3)),
                trigger: row.get(4),
                planned: count(row.get(5)),
                skipped: count(row.get(6)) + count(row.get(9)),
                sent: count(row.get(7)),
                delivered: count(row.get(11)),
                read: count(row.get(12)),
                replied: count(row.get(13)),
                failed: count(row.get(8)) + count(row.get(14)),
                pending: count(row.get(10)),
            })
            .collect())
    }

    async fn group_activity(&self, group: &str) -> StoreResult<GroupActivity> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT phone, posted_at, joined_at FROM group_activity WHERE group_id = $1",
                &[&group],
            )
            .await?;
        let mut seen = GroupActivity::default();
        for row in rows {
            let phone: String = row.get(0);
            let posted: Option<i64> = row.get(1);
            let joined: Option<i64> = row.get(2);
            if phone.is_empty() {
                seen.watched_since = joined.map(time);
            } else {
                seen.members
                    .insert(phone, (posted.map(time), joined.map(time)));
            }
        }
        Ok(seen)
    }

    async fn verified(&self, run: &str) -> StoreResult<BTreeMap<String, (String, Option<String>)>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT phone, status, wa_id FROM verifications WHERE run = $1",
                &[&run],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2))))
            .collect())
    }

    async fn record_verified(
        &self,
        run: &str,
        checked: &[(String, String, Option<String>)],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        for (phone, status, wa_id) in checked {
            tx.execute(
                "INSERT INTO verifications (run, phone, status, wa_id, checked_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (run, phone) DO UPDATE SET status = excluded.status, wa_id = excluded.wa_id, checked_at = excluded.checked_at",
                &[&run, phone, status, wa_id, &ms(now)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
