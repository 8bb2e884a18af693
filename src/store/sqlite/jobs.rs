//! Job rows: writing, claiming in lane order, finishing.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{PRUNE_CHUNK, ms, time};
use crate::store::rows::{JobRow, stored_kind};
use crate::store::{JobQuery, StoreError, StoreResult};
use crate::vocab::{Job, JobId, JobResult, JobStatus, RuleName, Work};

pub(super) const JOB_COLUMNS: &str = "id, kind, rule, action, event, work, status, attempts, run_at, key, contact, unless, vars, campaign_run, last_error, response, created_at";

fn json_column(row: &Row<'_>, name: &str) -> StoreResult<Option<serde_json::Value>> {
    crate::store::rows::json_text(name, row.get(name)?)
}

pub(super) fn job_from_row(row: &Row<'_>) -> StoreResult<Job> {
    let work: String = row.get("work")?;
    let status: String = row.get("status")?;
    let kind: String = row.get("kind")?;
    Ok(Job {
        id: JobId(row.get("id")?),
        kind: stored_kind(&kind)?,
        rule: RuleName::new(row.get::<_, String>("rule")?),
        action: row.get("action")?,
        event: row.get("event")?,
        work: Work::from_stored(&work).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        status: JobStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("job status `{status}`")))?,
        attempts: row.get::<_, i64>("attempts")?.clamp(0, i64::from(u32::MAX)) as u32,
        run_at: time(row.get("run_at")?),
        key: row.get("key")?,
        contact: row.get("contact")?,
        unless: json_column(row, "unless")?,
        vars: json_column(row, "vars")?,
        campaign_run: row.get("campaign_run")?,
        last_error: row.get("last_error")?,
        response: row.get("response")?,
        created_at: time(row.get("created_at")?),
    })
}

/// Inserts a job; a pending job with the same key is cancelled first (the new one replaces
/// it, also one inserted earlier in the same transaction).
pub(super) fn insert(conn: &Connection, job: &JobRow, now: i64) -> StoreResult<()> {
    if let Some(key) = &job.key {
        cancel_key(conn, key, now)?;
    }
    write_row(conn, job, now, None)
}

/// Writes a job's row; with a claim (lease end and instance) it is written claimed, as a
/// claim would leave it.
fn write_row(
    conn: &Connection,
    job: &JobRow,
    now: i64,
    claim: Option<(i64, &str)>,
) -> StoreResult<()> {
    let (status, attempts) = match claim {
        Some(_) => ("sending", 1),
        None => (job.status, 0),
    };
    let (lease_until, claimed_by) = claim.unzip();
    conn.prepare_cached(
        "INSERT INTO jobs (lane, kind, rule, action, event, work, status, attempts, run_at, locked_until, key, contact, unless, vars, campaign_run, last_error, created_at, updated_at, claimed_by, channel)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17, ?18, ?19)",
    )?
    .execute(params![
        job.lane,
        job.kind,
        job.rule,
        job.action,
        job.event,
        job.work,
        status,
        attempts,
        job.run_at,
        lease_until,
        job.key,
        job.contact,
        job.unless,
        job.vars,
        job.campaign_run,
        job.error,
        now,
        claimed_by,
        job.channel,
    ])?;
    Ok(())
}

/// Writes a call that is due as already claimed until `lease_until` and returns it, when
/// nothing earlier in its lane is open (what a claim would check); otherwise writes it pending.
pub(super) fn insert_claimed(
    conn: &Connection,
    job: &JobRow,
    now: i64,
    lease_until: i64,
    instance: &str,
) -> StoreResult<Option<Job>> {
    let Some(work) = job.ready.as_ref().filter(|_| job.run_at <= now) else {
        insert(conn, job, now)?;
        return Ok(None);
    };
    let busy = conn
        .prepare_cached(LANE_BUSY)?
        .exists(params![job.lane, now])?;
    if busy {
        insert(conn, job, now)?;
        return Ok(None);
    }
    // Only calls without a key, `unless` or `vars` are ready (see `JobRow::new`).
    write_row(conn, job, now, Some((lease_until, instance)))?;
    job.claimed(conn.last_insert_rowid(), now, work).map(Some)
}

/// Cancels the pending jobs with a key.
pub(super) fn cancel_key(conn: &Connection, key: &str, now: i64) -> StoreResult<()> {
    conn.prepare_cached("UPDATE jobs SET status = 'cancelled', last_error = 'replaced or cancelled by key', updated_at = ?2 WHERE key = ?1 AND status = 'pending'")?
        .execute(params![key, now])?;
    Ok(())
}

/// A job is claimable when it is due and no earlier job of its lane is still open and active
/// (due, being sent, or waiting for a retry): that keeps each chat in order. Expired leases
/// (a crashed sender's jobs) and due jobs are two branches so each walks the `jobs_due` index
/// in order and stops at the limit; one `OR` made SQLite collect and sort every due job, and a
/// claim cost grew with the backlog. The limits are written `?3 + 0`: a bare parameter as the
/// limit of a subquery makes SQLite prepare the statement again whenever its value changes.
/// Each branch repeats the due index's own condition ([`OPEN`]): SQLite uses a partial index
/// only where the query says what the index is limited to.
fn claim_sql() -> String {
    let lane_free = "NOT EXISTS (
                SELECT 1 FROM jobs e
                WHERE e.lane = j.lane AND e.id < j.id AND e.status IN ('pending', 'sending')
                  AND (e.status = 'sending' OR e.run_at <= ?1 OR e.attempts > 0))";
    format!(
        "UPDATE jobs SET status = 'sending', locked_until = ?2, claimed_by = ?4, attempts = attempts + 1, updated_at = ?1
         WHERE id IN (SELECT id FROM (
            SELECT * FROM (SELECT j.id FROM jobs j
                WHERE {OPEN} AND j.status = 'sending' AND j.locked_until <= ?1 AND {lane_free}
                ORDER BY j.run_at, j.id LIMIT ?3 + 0)
            UNION ALL
            SELECT * FROM (SELECT j.id FROM jobs j
                WHERE {OPEN} AND j.status = 'pending' AND j.run_at <= ?1 AND {lane_free}
                ORDER BY j.run_at, j.id LIMIT ?3 + 0)
         ) LIMIT ?3 + 0)
         RETURNING {JOB_COLUMNS}"
    )
}

/// The condition of the `jobs_due` index: open jobs.
const OPEN: &str = "status IN ('pending', 'sending')";

static CLAIM_SQL: LazyLock<String> = LazyLock::new(claim_sql);

/// Claims up to `limit` due jobs for `instance` and a lease; returned in id order.
pub(super) fn claim(
    conn: &Connection,
    instance: &str,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> StoreResult<Vec<Job>> {
    let mut statement = conn.prepare_cached(&CLAIM_SQL)?;
    let mut rows = statement.query(params![now, lease_until, i64::from(limit), instance])?;
    let mut claimed = Vec::new();
    while let Some(row) = rows.next()? {
        claimed.push(job_from_row(row)?);
    }
    claimed.sort_by_key(|j| j.id);
    Ok(claimed)
}

/// Records the result of a job's run.
pub(super) fn finish(conn: &Connection, id: i64, result: &JobResult, now: i64) -> StoreResult<()> {
    match result {
        JobResult::Done { response } => conn.prepare_cached("UPDATE jobs SET status = 'done', response = ?2, last_error = NULL, locked_until = NULL, updated_at = ?3 WHERE id = ?1")?
            .execute(params![id, response, now])?,
        JobResult::Retry { at, error } => conn.prepare_cached("UPDATE jobs SET status = 'pending', run_at = ?2, last_error = ?3, locked_until = NULL, updated_at = ?4 WHERE id = ?1")?
            .execute(params![id, ms(*at), error, now])?,
        JobResult::Dead { error } => conn.prepare_cached("UPDATE jobs SET status = 'dead', last_error = ?2, locked_until = NULL, updated_at = ?3 WHERE id = ?1")?
            .execute(params![id, error, now])?,
        JobResult::Skipped { reason } => conn.prepare_cached("UPDATE jobs SET status = 'skipped', last_error = ?2, locked_until = NULL, updated_at = ?3 WHERE id = ?1")?
            .execute(params![id, reason, now])?,
        JobResult::Later { at, reason } => conn.prepare_cached("UPDATE jobs SET status = 'pending', run_at = ?2, last_error = ?3, attempts = MAX(attempts - 1, 0), locked_until = NULL, updated_at = ?4 WHERE id = ?1")?
            .execute(params![id, ms(*at), reason, now])?,
    };
    Ok(())
}

/// Whether a job of the same lane as job `id` is pending and due. The lane's index is named:
/// left to itself SQLite walks every due job of every lane instead, once per finished job.
const LANE_HAS_DUE: &str = "SELECT 1 FROM jobs INDEXED BY jobs_open_by_lane
    WHERE lane = (SELECT lane FROM jobs WHERE id = ?1) AND status IN ('pending', 'sending')
      AND status = 'pending' AND run_at <= ?2";

/// Whether anything of this lane is open and active (what a claim checks for earlier jobs).
const LANE_BUSY: &str = "SELECT 1 FROM jobs INDEXED BY jobs_open_by_lane
    WHERE lane = ?1 AND status IN ('pending', 'sending')
      AND (status = 'sending' OR run_at <= ?2 OR attempts > 0)";

/// Whether a job of the same lane as job `id` is pending and due.
pub(super) fn lane_has_due(conn: &Connection, id: i64, now: i64) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached(LANE_HAS_DUE)?
        .exists(params![id, now])?)
}

/// Jobs, newest first, optionally of one status.
pub(super) fn list(conn: &Connection, query: &JobQuery) -> StoreResult<Vec<Job>> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE (?1 IS NULL OR status = ?1)
           AND (?3 IS NULL OR channel = ?3 OR (?4 AND channel IS NULL))
         ORDER BY id DESC LIMIT ?2"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let (channel, unnamed) = match &query.channel {
        Some(c) => (Some(c.name.as_str()), c.is_default),
        None => (None, false),
    };
    let mut rows = statement.query(params![
        query.status.map(JobStatus::as_str),
        i64::from(query.limit),
        channel,
        unnamed
    ])?;
    let mut jobs = Vec::new();
    while let Some(row) = rows.next()? {
        jobs.push(job_from_row(row)?);
    }
    Ok(jobs)
}

/// Open jobs (pending or being sent) by the channel they name (`None`: the default channel).
pub(super) fn open_by_channel(conn: &Connection) -> StoreResult<Vec<(Option<String>, u64)>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT channel, COUNT(*) FROM jobs WHERE {OPEN} GROUP BY channel ORDER BY channel"
    ))?;
    let rows = statement.query_map([], |row| {
        Ok((row.get(0)?, row.get::<_, i64>(1)?.max(0) as u64))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One job by id.
pub(super) fn one(conn: &Connection, id: i64) -> StoreResult<Option<Job>> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1");
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query([id])?;
    rows.next()?.map(job_from_row).transpose()
}

const NEXT_DUE: &str = "SELECT MIN(due) FROM (
    SELECT MIN(run_at) AS due FROM jobs WHERE status IN ('pending', 'sending') AND status = 'pending'
    UNION ALL
    SELECT MIN(locked_until) FROM jobs WHERE status IN ('pending', 'sending') AND status = 'sending')";

/// When the next open job is due (or its lease runs out), if any.
pub(super) fn next_due(conn: &Connection) -> StoreResult<Option<DateTime<Utc>>> {
    // Two single-index lookups; one MIN over a CASE read every open job.
    let due: Option<i64> = conn
        .prepare_cached(NEXT_DUE)?
        .query_row([], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(due.map(time))
}

/// Deletes the jobs that finished (sent, skipped or cancelled) before `before` among the next
/// [`PRUNE_CHUNK`] jobs after id `after`, adding each campaign job to its run's pruned counts.
/// Dead jobs stay until an operator retries or cancels them. Returns the id to go on after, or
/// `None` once it reached a job created after `before`: ids follow creation, so no job past it
/// can have finished before `before`, and the table is never read to its end.
pub(super) fn prune_finished(
    conn: &Connection,
    after: i64,
    before: i64,
) -> StoreResult<Option<i64>> {
    let mut gone = Vec::new();
    let (mut last, mut seen, mut reached) = (after, 0, false);
    {
        let mut statement = conn.prepare_cached(
            "SELECT id, status, updated_at, created_at, campaign_run FROM jobs WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let mut rows = statement.query(params![after, PRUNE_CHUNK])?;
        while let Some(row) = rows.next()? {
            let (id, status): (i64, String) = (row.get(0)?, row.get(1)?);
            let (updated_at, created_at): (i64, i64) = (row.get(2)?, row.get(3)?);
            if created_at >= before {
                reached = true;
                break;
            }
            (last, seen) = (id, seen + 1);
            let finished = matches!(status.as_str(), "done" | "skipped" | "cancelled");
            if finished && updated_at < before {
                gone.push((id, status == "done", row.get::<_, Option<i64>>(4)?));
            }
        }
    }
    for (id, sent, run) in gone {
        if let Some(run) = run {
            let (sent, skipped) = (i64::from(sent), i64::from(!sent));
            conn.prepare_cached("UPDATE campaign_runs SET sent_pruned = sent_pruned + ?2, skipped_pruned = skipped_pruned + ?3 WHERE id = ?1")?
                .execute(params![run, sent, skipped])?;
        }
        conn.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
            .execute([id])?;
    }
    Ok((!reached && seen == PRUNE_CHUNK).then_some(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let count = statement.parameter_count();
        let rows = statement
            .query_map(
                rusqlite::params_from_iter(std::iter::repeat_n(1, count)),
                |r| r.get::<_, String>(3),
            )
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    #[test]
    fn lane_lookups_use_the_lane_index_and_the_claim_walks_the_due_index() {
        let conn = Connection::open_in_memory().unwrap();
        super::super::migrate::run(&conn).unwrap();
        for sql in [LANE_HAS_DUE, LANE_BUSY] {
            let plan = plan(&conn, sql);
            assert!(plan.contains("USING INDEX jobs_open_by_lane"), "{plan}");
            assert!(!plan.contains("jobs_due"), "{plan}");
        }
        let plan = plan(&conn, &CLAIM_SQL);
        assert!(plan.contains("jobs_due"), "{plan}");
        assert!(!plan.contains("SCAN j"), "{plan}");
        // The due index holds open jobs only: each lookup must still find it.
        for sql in [NEXT_DUE, super::super::queue::RELEASE_CLAIMS] {
            let found = self::plan(&conn, sql);
            assert!(found.contains("jobs_due"), "{sql}: {found}");
            assert!(!found.contains("SCAN jobs"), "{sql}: {found}");
        }
    }

    #[test]
    fn claiming_with_a_different_limit_each_time_does_not_prepare_the_statement_again() {
        let conn = Connection::open_in_memory().unwrap();
        super::super::migrate::run(&conn).unwrap();
        for limit in 1..=5 {
            claim(&conn, "test", 1_000, 2_000, limit).unwrap();
        }
        let statement = conn.prepare_cached(&CLAIM_SQL).unwrap();
        assert_eq!(
            statement.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "a claim must not pay for preparing its statement"
        );
    }
}
