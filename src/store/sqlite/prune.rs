//! Forgetting by age: rows written in id order are pruned from the oldest, a chunk per write.

use rusqlite::Connection;

use super::PRUNE_CHUNK;
use crate::store::StoreResult;

/// A table pruned by age: its name and the query that lists its oldest rows (id, time), in
/// id order, at most `?1` of them.
pub(super) struct Aged {
    pub table: &'static str,
    pub oldest: &'static str,
}

/// Deletes the rows of `aged` from before `before`, looking at the [`PRUNE_CHUNK`] oldest;
/// returns whether more may be as old. Rows are written in time order, so it stops at the
/// first newer row and never reads the table to its end: a `DELETE ... WHERE at < ?` scanned
/// a week of event records on the writer's thread, which every webhook waits for.
pub(super) fn prune_oldest(conn: &Connection, aged: &Aged, before: i64) -> StoreResult<bool> {
    let (mut last, mut seen, mut newer) = (None, 0, false);
    {
        let mut statement = conn.prepare_cached(aged.oldest)?;
        let mut rows = statement.query([PRUNE_CHUNK])?;
        while let Some(row) = rows.next()? {
            let (id, at): (i64, i64) = (row.get(0)?, row.get(1)?);
            if at >= before {
                newer = true;
                break;
            }
            (last, seen) = (Some(id), seen + 1);
        }
    }
    if let Some(last) = last {
        // Every row up to `last` was listed above, and each was older than `before`.
        conn.prepare_cached(&format!("DELETE FROM {} WHERE id <= ?1", aged.table))?
            .execute([last])?;
    }
    Ok(!newer && seen == PRUNE_CHUNK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(conn: &Connection) -> Vec<i64> {
        let mut statement = conn.prepare("SELECT id FROM t ORDER BY id").unwrap();
        let rows = statement.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[test]
    fn the_oldest_rows_go_a_chunk_at_a_time_up_to_the_first_newer_one() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, at INTEGER NOT NULL)")
            .unwrap();
        for id in 1..=5_000 {
            conn.execute("INSERT INTO t (id, at) VALUES (?1, ?1)", [id])
                .unwrap();
        }
        // A row out of time order stops the walk: the rows after it wait for a later prune.
        conn.execute("UPDATE t SET at = 9000 WHERE id = 4200", [])
            .unwrap();
        let aged = Aged {
            table: "t",
            oldest: "SELECT id, at FROM t ORDER BY id LIMIT ?1",
        };
        assert!(prune_oldest(&conn, &aged, 4_500).unwrap());
        assert_eq!(ids(&conn).first(), Some(&2_001));
        assert!(prune_oldest(&conn, &aged, 4_500).unwrap());
        assert!(!prune_oldest(&conn, &aged, 4_500).unwrap());
        let left = ids(&conn);
        assert_eq!(left.first(), Some(&4_200));
        assert_eq!(left.len(), 801);
        // A bound in the query is a bound on what is deleted.
        let bounded = Aged {
            table: "t",
            oldest: "SELECT id, at FROM t WHERE id <= 4300 ORDER BY id LIMIT ?1",
        };
        conn.execute("UPDATE t SET at = 1 WHERE id = 4200", [])
            .unwrap();
        assert!(!prune_oldest(&conn, &bounded, 10_000).unwrap());
        assert_eq!(ids(&conn).first(), Some(&4_301));
    }
}
