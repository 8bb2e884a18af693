//! Stored bodies claimed by instances, as ranges of ids.
//!
//! SQLite has one writer, so ids are committed in order and "processed" is a cursor: every body
//! up to it is done. An instance claims the next range past the cursor that no other instance
//! holds under an unexpired lease; a range completed ahead of an earlier one stays as a done
//! claim until the cursor reaches it. A backend whose ids may commit out of order claims rows
//! one by one instead; the contract is the same.

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::StoreResult;

/// A claimed range of body ids, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Range {
    pub(super) first: i64,
    pub(super) last: i64,
}

/// Every body up to this id is processed.
pub(super) fn cursor(conn: &Connection) -> StoreResult<i64> {
    Ok(conn
        .prepare_cached("SELECT processed_through FROM intake_cursor")?
        .query_row([], |r| r.get(0))?)
}

/// Claims for `instance` the range it holds already (renewing the lease), or else the next
/// free one of at most `limit` ids; `None` when nothing is waiting.
pub(super) fn claim(
    conn: &Connection,
    instance: &str,
    limit: u32,
    lease_until: i64,
    now: i64,
) -> StoreResult<Option<Range>> {
    let held: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT first_id, last_id FROM inbound_claims WHERE instance = ?1 AND done = 0
             ORDER BY first_id LIMIT 1",
        )?
        .query_row([instance], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((first, last)) = held {
        conn.prepare_cached("UPDATE inbound_claims SET lease_until = ?2 WHERE first_id = ?1")?
            .execute(params![first, lease_until])?;
        return Ok(Some(Range { first, last }));
    }
    // Claims left by an instance that stopped are free to take once their lease ran out.
    conn.prepare_cached("DELETE FROM inbound_claims WHERE done = 0 AND lease_until <= ?1")?
        .execute([now])?;
    let mut first = cursor(conn)? + 1;
    let mut next_held = None;
    {
        let mut statement = conn.prepare_cached(
            "SELECT first_id, last_id FROM inbound_claims WHERE last_id >= ?1 ORDER BY first_id",
        )?;
        let mut rows = statement.query([first])?;
        while let Some(row) = rows.next()? {
            let (from, to): (i64, i64) = (row.get(0)?, row.get(1)?);
            if from <= first {
                first = first.max(to + 1);
            } else {
                next_held = Some(from);
                break;
            }
        }
    }
    let mut last = first + i64::from(limit.max(1)) - 1;
    if let Some(held) = next_held {
        last = last.min(held - 1);
    }
    // The range ends at a body; ids without one (writes rolled back) are done when the
    // bodies around them are.
    let newest: Option<i64> = conn
        .prepare_cached("SELECT MAX(id) FROM inbound WHERE id BETWEEN ?1 AND ?2")?
        .query_row(params![first, last], |r| r.get(0))?;
    let Some(last) = newest else {
        return Ok(None);
    };
    conn.prepare_cached(
        "INSERT INTO inbound_claims (first_id, last_id, instance, lease_until) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![first, last, instance, lease_until])?;
    Ok(Some(Range { first, last }))
}

fn has_bodies(conn: &Connection, from: i64, to: i64) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM inbound WHERE id BETWEEN ?1 AND ?2")?
        .exists(params![from, to])?)
}

/// The claim of `instance` that holds these ids, if it still has it.
pub(super) fn held(
    conn: &Connection,
    instance: &str,
    first: i64,
    last: i64,
) -> StoreResult<Option<Range>> {
    Ok(conn
        .prepare_cached(
            "SELECT first_id, last_id FROM inbound_claims
             WHERE instance = ?1 AND done = 0 AND first_id <= ?2 AND last_id >= ?3",
        )?
        .query_row(params![instance, first, last], |r| {
            Ok(Range {
                first: r.get(0)?,
                last: r.get(1)?,
            })
        })
        .optional()?)
}

/// Marks the bodies `first..=last` of a held claim processed (the rest of it stays claimed)
/// and moves the cursor over every processed range that now follows it; returns the cursor.
pub(super) fn complete(conn: &Connection, held: Range, first: i64, last: i64) -> StoreResult<i64> {
    let (instance, lease_until): (String, i64) = conn
        .prepare_cached("SELECT instance, lease_until FROM inbound_claims WHERE first_id = ?1")?
        .query_row([held.first], |r| Ok((r.get(0)?, r.get(1)?)))?;
    conn.prepare_cached("DELETE FROM inbound_claims WHERE first_id = ?1")?
        .execute([held.first])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO inbound_claims (first_id, last_id, instance, lease_until, done) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (from, to, done) in [
        (held.first, first - 1, false),
        (first, last, true),
        (last + 1, held.last, false),
    ] {
        if from <= to {
            // A piece with no body in it (ids of writes that were rolled back) is done too.
            let done = done || !has_bodies(conn, from, to)?;
            insert.execute(params![from, to, instance, lease_until, done])?;
        }
    }
    let mut through = cursor(conn)?;
    loop {
        let next: Option<i64> = conn
            .prepare_cached(
                "SELECT MAX(last_id) FROM inbound_claims WHERE done = 1 AND first_id <= ?1 + 1",
            )?
            .query_row([through], |r| r.get(0))?;
        let Some(last) = next else { break };
        conn.prepare_cached("DELETE FROM inbound_claims WHERE done = 1 AND first_id <= ?1 + 1")?
            .execute([through])?;
        through = through.max(last);
    }
    conn.prepare_cached("UPDATE intake_cursor SET processed_through = ?1")?
        .execute([through])?;
    Ok(through)
}
