//! Campaign bookkeeping: which fire times were handled, and each run with its jobs.

use chrono::{DateTime, Utc};
use sqlx::{Row, SqlitePool};

use super::{jobs, ms, time};
use crate::store::{CampaignRun, NewJob, NewRun, StoreResult};

pub(super) async fn checked(pool: &SqlitePool, name: &str) -> StoreResult<Option<DateTime<Utc>>> {
    let row = sqlx::query("SELECT checked_at FROM campaign_state WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    Ok(row
        .map(|r| r.try_get::<i64, _>("checked_at"))
        .transpose()?
        .map(time))
}

pub(super) async fn set_checked(
    pool: &SqlitePool,
    name: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO campaign_state (name, checked_at) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET checked_at = excluded.checked_at")
        .bind(name)
        .bind(ms(at))
        .execute(pool)
        .await?;
    Ok(())
}

/// The run row and every recipient's job in one transaction: a crash leaves all or nothing,
/// and the unique (campaign, fire time) makes a second attempt at the same run a no-op.
pub(super) async fn start_run(
    pool: &SqlitePool,
    run: &NewRun,
    new_jobs: &[NewJob],
    now: DateTime<Utc>,
) -> StoreResult<Option<i64>> {
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO campaign_runs (campaign, fire_at, started_at, trigger, planned, skipped) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (campaign, fire_at) DO NOTHING",
    )
    .bind(&run.campaign)
    .bind(ms(run.fire_at))
    .bind(ms(now))
    .bind(&run.trigger)
    .bind(new_jobs.len() as i64)
    .bind(i64::from(run.skipped))
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(None);
    }
    let run_id = inserted.last_insert_rowid();
    let mut new_jobs = new_jobs.to_vec();
    for job in &mut new_jobs {
        job.campaign_run = Some(run_id);
    }
    jobs::insert_many(&mut tx, &new_jobs, now).await?;
    tx.commit().await?;
    Ok(Some(run_id))
}

pub(super) async fn runs(
    pool: &SqlitePool,
    campaign: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<CampaignRun>> {
    let rows = sqlx::query(
        "SELECT r.id, r.campaign, r.fire_at, r.started_at, r.trigger, r.planned, r.skipped,
                COALESCE(SUM(j.status = 'done'), 0) AS sent,
                COALESCE(SUM(j.status = 'dead'), 0) AS failed,
                COALESCE(SUM(j.status = 'skipped' OR j.status = 'cancelled'), 0) AS skipped_late,
                COALESCE(SUM(j.status IN ('pending', 'sending')), 0) AS pending
         FROM campaign_runs r LEFT JOIN jobs j ON j.campaign_run = r.id
         WHERE ($1 IS NULL OR r.campaign = $1)
         GROUP BY r.id ORDER BY r.id DESC LIMIT $2",
    )
    .bind(campaign)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let count = |name: &str| row.try_get::<i64, _>(name).map(|n| n as u32);
            Ok(CampaignRun {
                id: row.try_get("id")?,
                campaign: row.try_get("campaign")?,
                fire_at: time(row.try_get("fire_at")?),
                started_at: time(row.try_get("started_at")?),
                trigger: row.try_get("trigger")?,
                planned: count("planned")?,
                skipped: count("skipped")? + count("skipped_late")?,
                sent: count("sent")?,
                failed: count("failed")?,
                pending: count("pending")?,
            })
        })
        .collect()
}
