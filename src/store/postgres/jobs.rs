//! [`JobStore`] on PostgreSQL: jobs claimed by an instance with `FOR UPDATE SKIP LOCKED`, one
//! lane at a time.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{PRUNE_CHUNK, PgStore, ms, people, time};
use crate::store::rows::{JobRow, json_text, stored_kind};
use crate::store::{JobQuery, JobStore, Op, StoreError, StoreResult};
use crate::vocab::{Job, JobId, JobResult, JobStatus, RuleName, Work};

const JOB_COLUMNS: &str = "id, kind, rule, action, event, work, status, attempts, run_at, key, contact, unless, vars, campaign_run, last_error, response, created_at";

/// A job is claimable when it is due (or its lease ran out) and no earlier job of its lane is
/// open and active; rows another instance is claiming right now are skipped, not waited for.
fn claim_sql() -> String {
    format!(
        "UPDATE jobs SET status = 'sending', locked_until = $2, claimed_by = $4, attempts = attempts + 1, updated_at = $1
         WHERE id IN (
            SELECT j.id FROM jobs j
            WHERE j.status IN ('pending', 'sending')
              AND ((j.status = 'pending' AND j.run_at <= $1) OR (j.status = 'sending' AND j.locked_until <= $1))
              AND NOT EXISTS (
                SELECT 1 FROM jobs e
                WHERE e.lane = j.lane AND e.id < j.id AND e.status IN ('pending', 'sending')
                  AND (e.status = 'sending' OR e.run_at <= $1 OR e.attempts > 0))
            ORDER BY j.run_at, j.id
            LIMIT $3
            FOR UPDATE SKIP LOCKED)
         RETURNING {JOB_COLUMNS}"
    )
}

/// Writers of one lane's calls claimed on the spot take this lock (with the lane's hash), so
/// two instances never both find a lane free and both claim in it.
const LANE_LOCK: i32 = 3;

pub(super) fn job_from_row(row: &Row) -> StoreResult<Job> {
    let status: String = row.get("status");
    Ok(Job {
        id: JobId(row.get("id")),
        kind: stored_kind(row.get("kind"))?,
        rule: RuleName::new(row.get::<_, String>("rule")),
        action: row.get("action"),
        event: row.get("event"),
        work: Work::from_stored(row.get("work")).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        status: JobStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("job status `{status}`")))?,
        attempts: row.get::<_, i32>("attempts").max(0) as u32,
        run_at: time(row.get("run_at")),
        key: row.get("key"),
        contact: row.get("contact"),
        unless: json_text("unless", row.get("unless"))?,
        vars: json_text("vars", row.get("vars"))?,
        campaign_run: row.get("campaign_run"),
        last_error: row.get("last_error"),
        response: row.get("response"),
        created_at: time(row.get("created_at")),
    })
}

/// Inserts a job; a pending job with the same key is cancelled first. With a claim (lease end
/// and instance) it is written claimed, as a claim would leave it. Returns its id.
pub(super) async fn insert(
    client: &impl GenericClient,
    job: &JobRow,
    now: i64,
    claim: Option<(i64, &str)>,
) -> StoreResult<i64> {
    if let Some(key) = &job.key {
        cancel_key(client, key, now).await?;
    }
    let (status, attempts): (&str, i32) = match claim {
        Some(_) => ("sending", 1),
        None => (job.status, 0),
    };
    let (lease_until, claimed_by) = claim.unzip();
    let statement = client
        .prepare_cached(
            "INSERT INTO jobs (lane, channel, kind, rule, action, event, work, status, attempts, run_at, locked_until, claimed_by, key, contact, unless, vars, campaign_run, last_error, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $19)
             RETURNING id",
        )
        .await?;
    let row = client
        .query_one(
            &statement,
            &[
                &job.lane,
                &job.channel,
                &job.kind,
                &job.rule,
                &job.action,
                &job.event,
                &job.work,
                &status,
                &attempts,
                &job.run_at,
                &lease_until,
                &claimed_by,
                &job.key,
                &job.contact,
                &job.unless,
                &job.vars,
                &job.campaign_run,
                &job.error,
                &now,
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// The calls a completion hands over to delivery, claimed as they are written. The lanes of
/// the calls that may be claimed are locked and looked at once, before any is written (each
/// job is still written in its place among the other changes): a call is claimed when nothing
/// earlier in its lane is open, neither in the database nor earlier in the same completion.
pub(super) struct HandOver {
    /// Lanes with something open and active.
    busy: HashSet<String>,
    lease_until: i64,
    limit: usize,
    pub(super) claimed: Vec<Job>,
}

impl HandOver {
    /// Locks and looks at the lanes of `rows` that could be claimed now.
    pub(super) async fn prepare(
        client: &impl GenericClient,
        rows: impl Iterator<Item = &JobRow>,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> StoreResult<Self> {
        let mut lanes: Vec<&str> = rows
            .filter(|r| r.ready.is_some() && r.run_at <= now)
            .map(|r| r.lane.as_str())
            .collect();
        lanes.sort_unstable();
        lanes.dedup();
        let mut busy = HashSet::new();
        if !lanes.is_empty() {
            client
                .execute(
                    "SELECT pg_advisory_xact_lock($1, hashtext(l)) FROM unnest($2::text[]) AS l ORDER BY hashtext(l)",
                    &[&LANE_LOCK, &lanes],
                )
                .await?;
            let statement = client
                .prepare_cached(
                    "SELECT DISTINCT lane FROM jobs WHERE lane = ANY($1) AND status IN ('pending', 'sending')
                       AND (status = 'sending' OR run_at <= $2 OR attempts > 0)",
                )
                .await?;
            busy = client
                .query(&statement, &[&lanes, &now])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
        }
        Ok(Self {
            busy,
            lease_until,
            limit,
            claimed: Vec::new(),
        })
    }

    /// Writes one job: claimed when it may be, else pending.
    pub(super) async fn insert(
        &mut self,
        client: &impl GenericClient,
        job: &JobRow,
        now: i64,
        instance: &str,
    ) -> StoreResult<()> {
        let ready = job.ready.as_ref().filter(|_| {
            job.run_at <= now && self.claimed.len() < self.limit && !self.busy.contains(&job.lane)
        });
        match ready {
            Some(work) => {
                let id = insert(client, job, now, Some((self.lease_until, instance))).await?;
                self.claimed.push(job.claimed(id, now, work)?);
            }
            None => {
                insert(client, job, now, None).await?;
            }
        }
        if job.run_at <= now {
            self.busy.insert(job.lane.clone());
        }
        Ok(())
    }
}

/// Cancels the pending jobs with a key.
pub(super) async fn cancel_key(
    client: &impl GenericClient,
    key: &str,
    now: i64,
) -> StoreResult<()> {
    let statement = client
        .prepare_cached("UPDATE jobs SET status = 'cancelled', last_error = 'replaced or cancelled by key', updated_at = $2 WHERE key = $1 AND status = 'pending'")
        .await?;
    client.execute(&statement, &[&key, &now]).await?;
    Ok(())
}

/// Records how a claimed job ended.
async fn finish(
    client: &impl GenericClient,
    id: i64,
    result: &JobResult,
    now: i64,
) -> StoreResult<()> {
    match result {
        JobResult::Done { response } => client.execute("UPDATE jobs SET status = 'done', response = $2, last_error = NULL, locked_until = NULL, updated_at = $3 WHERE id = $1", &[&id, response, &now]).await?,
        JobResult::Retry { at, error } => client.execute("UPDATE jobs SET status = 'pending', run_at = $2, last_error = $3, locked_until = NULL, updated_at = $4 WHERE id = $1", &[&id, &ms(*at), error, &now]).await?,
        JobResult::Dead { error } => client.execute("UPDATE jobs SET status = 'dead', last_error = $2, locked_until = NULL, updated_at = $3 WHERE id = $1", &[&id, error, &now]).await?,
        JobResult::Skipped { reason } => client.execute("UPDATE jobs SET status = 'skipped', last_error = $2, locked_until = NULL, updated_at = $3 WHERE id = $1", &[&id, reason, &now]).await?,
        JobResult::Later { at, reason } => client.execute("UPDATE jobs SET status = 'pending', run_at = $2, last_error = $3, attempts = GREATEST(attempts - 1, 0), locked_until = NULL, updated_at = $4 WHERE id = $1", &[&id, &ms(*at), reason, &now]).await?,
    };
    Ok(())
}

/// Deletes, a chunk at a time, the jobs that finished (sent, skipped, cancelled) before
/// `before`, counting them into their campaign runs first; returns how many went.
pub(super) async fn prune_finished(
    client: &mut deadpool_postgres::Object,
    before: i64,
) -> StoreResult<u64> {
    let tx = client.transaction().await?;
    let rows = tx
        .query(
            "SELECT id, status, campaign_run FROM jobs
             WHERE status IN ('done', 'skipped', 'cancelled') AND updated_at < $1
             ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&before, &PRUNE_CHUNK],
        )
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    for row in &rows {
        if let Some(run) = row.get::<_, Option<i64>>(2) {
            let sent = row.get::<_, String>(1) == "done";
            tx.execute(
                "UPDATE campaign_runs SET sent_pruned = sent_pruned + $2, skipped_pruned = skipped_pruned + $3 WHERE id = $1",
                &[&run, &i32::from(sent), &i32::from(!sent)],
            )
            .await?;
        }
    }
    tx.execute("DELETE FROM jobs WHERE id = ANY($1)", &[&ids])
        .await?;
    tx.commit().await?;
    Ok(ids.len() as u64)
}

#[async_trait]
impl JobStore for PgStore {
    async fn claim_jobs(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Job>> {
        let client = self.client().await?;
        let statement = client.prepare_cached(&claim_sql()).await?;
        let rows = client
            .query(
                &statement,
                &[
                    &ms(now),
                    &ms(lease_until),
                    &i64::from(limit),
                    &self.instance.as_str(),
                ],
            )
            .await?;
        let mut jobs = rows
            .iter()
            .map(job_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        jobs.sort_by_key(|j| (j.run_at, j.id.0));
        Ok(jobs)
    }

    async fn release_claims(&self) -> StoreResult<u64> {
        let client = self.client().await?;
        let released = client
            .execute(
                "UPDATE jobs SET status = 'pending', locked_until = NULL, claimed_by = NULL
                 WHERE status = 'sending' AND (claimed_by = $1 OR claimed_by IS NULL)",
                &[&self.instance.as_str()],
            )
            .await?;
        Ok(released)
    }

    async fn finish_job_with(
        &self,
        id: JobId,
        result: &JobResult,
        ops: Vec<Op>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let now = ms(now);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        finish(&tx, id.0, result, now).await?;
        people::apply(&tx, &ops, now).await?;
        let due = tx
            .query_opt(
                "SELECT 1 FROM jobs WHERE lane = (SELECT lane FROM jobs WHERE id = $1)
                   AND status = 'pending' AND run_at <= $2 LIMIT 1",
                &[&id.0, &now],
            )
            .await?
            .is_some();
        tx.commit().await?;
        Ok(due)
    }

    async fn next_job_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT MIN(CASE WHEN status = 'pending' THEN run_at ELSE locked_until END)
                 FROM jobs WHERE status IN ('pending', 'sending')",
                &[],
            )
            .await?;
        Ok(row.get::<_, Option<i64>>(0).map(time))
    }

    async fn jobs(&self, query: JobQuery) -> StoreResult<Vec<Job>> {
        let client = self.client().await?;
        let (channel, unnamed) = match &query.channel {
            Some(c) => (Some(c.name.as_str()), c.is_default),
            None => (None, false),
        };
        let rows = client
            .query(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE ($1::text IS NULL OR status = $1)
                       AND ($3::text IS NULL OR channel = $3 OR ($4 AND channel IS NULL))
                     ORDER BY id DESC LIMIT $2"
                ),
                &[
                    &query.status.map(JobStatus::as_str),
                    &i64::from(query.limit),
                    &channel,
                    &unnamed,
                ],
            )
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn open_jobs_by_channel(&self) -> StoreResult<Vec<(Option<String>, u64)>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT channel, COUNT(*) FROM jobs WHERE status IN ('pending', 'sending')
                 GROUP BY channel ORDER BY channel",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1).max(0) as u64))
            .collect())
    }

    async fn job(&self, id: JobId) -> StoreResult<Option<Job>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"),
                &[&id.0],
            )
            .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn retry_job(&self, id: JobId, now: DateTime<Utc>) -> StoreResult<bool> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE jobs SET status = 'pending', run_at = $2, attempts = 0, updated_at = $2
                 WHERE id = $1 AND status IN ('dead', 'cancelled', 'skipped')",
                &[&id.0, &ms(now)],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn cancel_job(&self, id: JobId, now: DateTime<Utc>) -> StoreResult<bool> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE jobs SET status = 'cancelled', locked_until = NULL, updated_at = $2
                 WHERE id = $1 AND status IN ('pending', 'dead')",
                &[&id.0, &ms(now)],
            )
            .await?;
        Ok(changed == 1)
    }
}
