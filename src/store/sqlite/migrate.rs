//! Brings a database file's schema up to date, one numbered migration at a time.
//!
//! The schema version is kept in `PRAGMA user_version`. Databases written before that (their
//! migrations were recorded in a `_sqlx_migrations` table) start from the version recorded
//! there, so an existing file keeps its data.

use rusqlite::Connection;

use crate::store::{StoreError, StoreResult};

/// Every migration, in order; the number is the schema version it brings the file to.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_time.sql")),
    (3, include_str!("../migrations/sqlite/0003_verify.sql")),
    (4, include_str!("../migrations/sqlite/0004_memory.sql")),
    (
        5,
        include_str!("../migrations/sqlite/0005_intake_cursor.sql"),
    ),
    (
        6,
        include_str!("../migrations/sqlite/0006_open_jobs_due.sql"),
    ),
    (
        7,
        include_str!("../migrations/sqlite/0007_pruned_job_counts.sql"),
    ),
    (8, include_str!("../migrations/sqlite/0008_instances.sql")),
    (9, include_str!("../migrations/sqlite/0009_channels.sql")),
    (10, include_str!("../migrations/sqlite/0010_leases.sql")),
    (
        11,
        include_str!("../migrations/sqlite/0011_sent_messages.sql"),
    ),
    (
        12,
        include_str!("../migrations/sqlite/0012_group_activity.sql"),
    ),
    (
        13,
        include_str!("../migrations/sqlite/0013_campaign_pause.sql"),
    ),
];

/// Applies the migrations the file does not have yet, each in its own transaction.
pub(super) fn run(conn: &Connection) -> StoreResult<()> {
    let mut version = current(conn)?;
    let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if version > latest {
        return Err(StoreError::Migrate(format!(
            "the database has schema version {version}, newer than this Riposte knows ({latest}); \
             use the Riposte that wrote it, or a newer one"
        )));
    }
    for (target, sql) in MIGRATIONS {
        if *target <= version {
            continue;
        }
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Migrate(format!("migration {target}: {e}")))?;
        tx.pragma_update(None, "user_version", target)?;
        tx.commit()?;
        version = *target;
    }
    Ok(())
}

fn current(conn: &Connection) -> StoreResult<i64> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > 0 {
        return Ok(version);
    }
    let recorded: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
        [],
        |r| r.get(0),
    )?;
    if !recorded {
        return Ok(0);
    }
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
        [],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_new_file_gets_every_migration_and_a_second_run_changes_nothing() {
        let conn = Connection::open_in_memory().unwrap();
        run(&conn).unwrap();
        assert_eq!(version(&conn), MIGRATIONS.len() as i64);
        run(&conn).unwrap();
        assert_eq!(version(&conn), MIGRATIONS.len() as i64);
    }

    #[test]
    fn a_file_migrated_by_the_earlier_runner_continues_where_it_was() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0].1).unwrap();
        conn.execute_batch(MIGRATIONS[1].1).unwrap();
        conn.execute_batch(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, success BOOLEAN NOT NULL);
             INSERT INTO _sqlx_migrations VALUES (1, TRUE), (2, TRUE);
             INSERT INTO inbound (source, name, method, body, received_at) VALUES ('webhook', '', 'POST', '{}', 1);",
        )
        .unwrap();
        run(&conn).unwrap();
        assert_eq!(version(&conn), MIGRATIONS.len() as i64);
        let kept: i64 = conn
            .query_row("SELECT COUNT(*) FROM inbound", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 1);
    }

    #[test]
    fn a_file_from_a_newer_riposte_is_refused_with_its_version() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        let err = run(&conn).unwrap_err().to_string();
        assert!(err.contains("schema version 99"), "{err}");
    }
}
