//! [`JobStore`] on SQLite: jobs claimed by an instance, one lane at a time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{SqliteStore, jobs, ms, ops};
use crate::store::{JobQuery, JobStore, Op, StoreResult};
use crate::vocab::{Job, JobId, JobResult};

/// Gives back the jobs an instance held (as it starts, none of its calls is in flight any
/// more), and those claimed before instances were named.
pub(super) const RELEASE_CLAIMS: &str = "UPDATE jobs SET status = 'pending', locked_until = NULL, claimed_by = NULL
    WHERE status IN ('pending', 'sending') AND status = 'sending' AND (claimed_by = ?1 OR claimed_by IS NULL)";

#[async_trait]
impl JobStore for SqliteStore {
    async fn claim_jobs(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Job>> {
        let instance = self.instance.as_str().to_owned();
        self.db
            .write(move |conn| jobs::claim(conn, &instance, ms(now), ms(lease_until), limit))
            .await
    }

    async fn release_claims(&self) -> StoreResult<u64> {
        let instance = self.instance.as_str().to_owned();
        self.db
            .write(move |conn| {
                let released = conn.execute(RELEASE_CLAIMS, [&instance])?;
                Ok(released as u64)
            })
            .await
    }

    async fn finish_job_with(
        &self,
        id: JobId,
        result: &JobResult,
        ops: Vec<Op>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (id, result) = (id.0, result.clone());
        let changes = ops::changes(&ops)?;
        self.db
            .write(move |conn| {
                jobs::finish(conn, id, &result, ms(now))?;
                ops::apply(conn, &changes, ms(now))?;
                jobs::lane_has_due(conn, id, ms(now))
            })
            .await
    }

    async fn next_job_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.db.read_now(jobs::next_due).await
    }

    async fn jobs(&self, query: JobQuery) -> StoreResult<Vec<Job>> {
        self.db.read(move |conn| jobs::list(conn, &query)).await
    }

    async fn open_jobs_by_channel(&self) -> StoreResult<Vec<(Option<String>, u64)>> {
        self.db.read(jobs::open_by_channel).await
    }

    async fn job(&self, id: JobId) -> StoreResult<Option<Job>> {
        self.db.read(move |conn| jobs::one(conn, id.0)).await
    }

    async fn retry_job(&self, id: JobId, now: DateTime<Utc>) -> StoreResult<bool> {
        let id = id.0;
        self.db
            .write(move |conn| {
                let changed = conn.prepare_cached("UPDATE jobs SET status = 'pending', run_at = ?2, attempts = 0, updated_at = ?2 WHERE id = ?1 AND status IN ('dead', 'cancelled', 'skipped')")?
                    .execute(params![id, ms(now)])?;
                Ok(changed == 1)
            })
            .await
    }

    async fn cancel_job(&self, id: JobId, now: DateTime<Utc>) -> StoreResult<bool> {
        let id = id.0;
        self.db
            .write(move |conn| {
                // The time starts the week a cancelled job is kept, and can be retried, for.
                let changed = conn.prepare_cached("UPDATE jobs SET status = 'cancelled', locked_until = NULL, updated_at = ?2 WHERE id = ?1 AND status IN ('pending', 'dead')")?
                    .execute(params![id, ms(now)])?;
                Ok(changed == 1)
            })
            .await
    }
}
