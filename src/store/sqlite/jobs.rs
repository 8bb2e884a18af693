//! Job rows: writing, claiming in lane order, finishing.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};

use super::{MAX_PARAMS, ms, time};
use crate::store::{Job, JobKind, JobResult, JobStatus, NewJob, StoreError, StoreResult};

pub(super) const JOB_COLUMNS: &str = "id, kind, rule, action, event, work, status, attempts, run_at, key, contact, unless, vars, campaign_run, last_error, response, created_at";

fn json_column(row: &SqliteRow, name: &str) -> StoreResult<Option<serde_json::Value>> {
    let text: Option<String> = row.try_get(name)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("job {name}: {e}")))
    })
    .transpose()
}

pub(super) fn job_from_row(row: &SqliteRow) -> StoreResult<Job> {
    let work: String = row.try_get("work")?;
    let status: String = row.try_get("status")?;
    let kind: String = row.try_get("kind")?;
    Ok(Job {
        id: row.try_get("id")?,
        kind: JobKind::parse(&kind)?,
        rule: row.try_get("rule")?,
        action: row.try_get("action")?,
        event: row.try_get("event")?,
        work: serde_json::from_str(&work)
            .map_err(|e| StoreError::Corrupt(format!("job work: {e}")))?,
        status: JobStatus::parse(&status)?,
        attempts: row.try_get::<i64, _>("attempts")? as u32,
        run_at: time(row.try_get("run_at")?),
        key: row.try_get("key")?,
        contact: row.try_get("contact")?,
        unless: json_column(row, "unless")?,
        vars: json_column(row, "vars")?,
        campaign_run: row.try_get("campaign_run")?,
        last_error: row.try_get("last_error")?,
        response: row.try_get("response")?,
        created_at: time(row.try_get("created_at")?),
    })
}

/// The ordering lane of a job's work: one chat's messages go out in order.
fn lane(job: &NewJob) -> String {
    match &job.work {
        crate::store::JobWork::Call(request) => request.lane.clone(),
        // The model's answer goes out before anything later in the same chat.
        crate::store::JobWork::Ai(call) => crate::actions::chat_lane_of(&call.chat),
        _ => format!("local:{}", job.contact.as_deref().unwrap_or("")),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Inserts a job; a pending job with the same key is cancelled first (the new one replaces it).
pub(super) async fn insert(
    tx: &mut Transaction<'_, Sqlite>,
    job: &NewJob,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    insert_many(tx, std::slice::from_ref(job), now).await
}

/// Columns bound per job row.
const ROW_PARAMS: usize = 16;

/// Inserts jobs in order, a few hundred rows per statement; a job with a key first cancels
/// the pending jobs with that key (also one inserted earlier in the same call).
pub(super) async fn insert_many(
    tx: &mut Transaction<'_, Sqlite>,
    jobs: &[NewJob],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let mut rest = jobs;
    while !rest.is_empty() {
        if let Some(key) = &rest[0].key {
            cancel_key(tx, key, now).await?;
        }
        // A run of jobs up to the next keyed one goes in as one statement.
        let run = 1 + rest[1..]
            .iter()
            .take(MAX_PARAMS / ROW_PARAMS - 1)
            .take_while(|j| j.key.is_none())
            .count();
        let (chunk, next) = rest.split_at(run);
        let rows: Vec<_> = chunk.iter().map(row).collect::<StoreResult<_>>()?;
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO jobs (lane, kind, rule, action, event, work, status, run_at, key, contact, unless, vars, campaign_run, last_error, created_at, updated_at) ",
        );
        q.push_values(chunk.iter().zip(rows), |mut b, (job, (lane, work))| {
            let (status, error) = match &job.dead {
                Some(reason) => ("dead", Some(reason.clone())),
                None => ("pending", None),
            };
            b.push_bind(lane)
                .push_bind(job.kind.as_str())
                .push_bind(job.rule.clone())
                .push_bind(job.action.clone())
                .push_bind(job.event.clone())
                .push_bind(work)
                .push_bind(status)
                .push_bind(ms(job.run_at))
                .push_bind(job.key.clone())
                .push_bind(job.contact.clone())
                .push_bind(job.unless.as_ref().map(ToString::to_string))
                .push_bind(job.vars.as_ref().map(ToString::to_string))
                .push_bind(job.campaign_run)
                .push_bind(error)
                .push_bind(ms(now))
                .push_bind(ms(now));
        });
        q.build().execute(&mut **tx).await?;
        rest = next;
    }
    Ok(())
}

fn row(job: &NewJob) -> StoreResult<(String, String)> {
    Ok((lane(job), to_json(&job.work)?))
}

/// Cancels the pending jobs with a key.
pub(super) async fn cancel_key(
    tx: &mut Transaction<'_, Sqlite>,
    key: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query("UPDATE jobs SET status = 'cancelled', last_error = 'replaced or cancelled by key', updated_at = $2 WHERE key = $1 AND status = 'pending'")
        .bind(key)
        .bind(ms(now))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A job is claimable when it is due and no earlier job of its lane is still open and active
/// (due, being sent, or waiting for a retry): that keeps each chat in order. Expired leases
/// (a crashed sender's jobs) and due jobs are two branches so each walks the `jobs_due` index
/// in order and stops at the limit; one `OR` made SQLite collect and sort every due job, and a
/// claim cost grew with the backlog.
pub(super) fn claim_sql() -> String {
    let lane_free = "NOT EXISTS (
                SELECT 1 FROM jobs e
                WHERE e.lane = j.lane AND e.id < j.id AND e.status IN ('pending', 'sending')
                  AND (e.status = 'sending' OR e.run_at <= $1 OR e.attempts > 0))";
    format!(
        "UPDATE jobs SET status = 'sending', locked_until = $2, attempts = attempts + 1, updated_at = $1
         WHERE id IN (SELECT id FROM (
            SELECT * FROM (SELECT j.id FROM jobs j
                WHERE j.status = 'sending' AND j.locked_until <= $1 AND {lane_free}
                ORDER BY j.run_at, j.id LIMIT $3)
            UNION ALL
            SELECT * FROM (SELECT j.id FROM jobs j
                WHERE j.status = 'pending' AND j.run_at <= $1 AND {lane_free}
                ORDER BY j.run_at, j.id LIMIT $3)
         ) LIMIT $3)
         RETURNING {JOB_COLUMNS}"
    )
}

/// Records the result of a job's call.
/// Marks jobs done with their responses, a few hundred per statement.
pub(super) async fn finish_done(
    tx: &mut Transaction<'_, Sqlite>,
    done: &[(i64, &str)],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    for chunk in done.chunks(MAX_PARAMS / 2) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "UPDATE jobs SET status = 'done', response = v.column2, last_error = NULL, locked_until = NULL, updated_at = ",
        );
        q.push_bind(ms(now)).push(" FROM (");
        q.push_values(chunk, |mut row, (id, response)| {
            row.push_bind(*id).push_bind(*response);
        });
        q.push(") AS v WHERE jobs.id = v.column1");
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

pub(super) async fn finish(
    tx: &mut Transaction<'_, Sqlite>,
    id: i64,
    result: &JobResult,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let query = match result {
        JobResult::Done { response } => sqlx::query("UPDATE jobs SET status = 'done', response = $2, last_error = NULL, locked_until = NULL, updated_at = $3 WHERE id = $1").bind(id).bind(response).bind(ms(now)),
        JobResult::Retry { at, error } => sqlx::query("UPDATE jobs SET status = 'pending', run_at = $2, last_error = $3, locked_until = NULL, updated_at = $4 WHERE id = $1").bind(id).bind(ms(*at)).bind(error).bind(ms(now)),
        JobResult::Dead { error } => sqlx::query("UPDATE jobs SET status = 'dead', last_error = $2, locked_until = NULL, updated_at = $3 WHERE id = $1").bind(id).bind(error).bind(ms(now)),
        JobResult::Skipped { reason } => sqlx::query("UPDATE jobs SET status = 'skipped', last_error = $2, locked_until = NULL, updated_at = $3 WHERE id = $1").bind(id).bind(reason).bind(ms(now)),
        JobResult::Later { at, reason } => sqlx::query("UPDATE jobs SET status = 'pending', run_at = $2, last_error = $3, attempts = MAX(attempts - 1, 0), locked_until = NULL, updated_at = $4 WHERE id = $1").bind(id).bind(ms(*at)).bind(reason).bind(ms(now)),
    };
    query.execute(&mut **tx).await?;
    Ok(())
}
