//! `riposte db copy`: everything a SQLite file holds, copied into an empty PostgreSQL
//! database, so one instance's history, contacts and pending work move to several instances.
//!
//! The two schemas keep the same columns and the same values (times in Unix milliseconds), so
//! rows are copied as they are, ids included; what differs is said here: a body is processed
//! when the SQLite cursor or a completed claim passed it, a job being sent goes back to
//! pending (no instance holds it in the new database), and the attributes become JSON.

use std::path::Path;

use deadpool_postgres::GenericClient;
use rusqlite::types::ValueRef;

use super::postgres::PgStore;
use super::{OpenOptions, SqliteStore, StoreError, StoreResult};

/// One table: its name and the columns both schemas have.
struct Table {
    name: &'static str,
    /// Columns read from SQLite (expressions allowed), in the order of `into`.
    select: &'static str,
    /// Columns written to PostgreSQL.
    into: &'static [&'static str],
    /// Tables with a serial id whose sequence must continue after the copied ids.
    serial: bool,
}

const TABLES: &[Table] = &[
    Table {
        name: "inbound",
        select: "SELECT id, source, name, method, body, received_at,
                   CASE WHEN id <= (SELECT processed_through FROM intake_cursor)
                          OR EXISTS (SELECT 1 FROM inbound_claims c WHERE c.done = 1 AND inbound.id BETWEEN c.first_id AND c.last_id)
                        THEN received_at END
                 FROM inbound ORDER BY id",
        into: &["id", "source", "name", "method", "body", "received_at", "processed_at"],
        serial: true,
    },
    Table {
        name: "dedupe",
        select: "SELECT key, expires_at FROM dedupe",
        into: &["key", "expires_at"],
        serial: false,
    },
    Table {
        name: "contacts",
        select: "SELECT phone, attrs, updated_at FROM contacts",
        into: &["phone", "attrs", "updated_at"],
        serial: false,
    },
    Table {
        name: "contact_tags",
        select: "SELECT phone, tag, added_at FROM contact_tags",
        into: &["phone", "tag", "added_at"],
        serial: false,
    },
    Table {
        name: "campaign_runs",
        select: "SELECT id, campaign, fire_at, started_at, trigger, planned, skipped, sent_pruned, skipped_pruned FROM campaign_runs ORDER BY id",
        into: &["id", "campaign", "fire_at", "started_at", "trigger", "planned", "skipped", "sent_pruned", "skipped_pruned"],
        serial: true,
    },
    Table {
        name: "jobs",
        select: "SELECT id, lane, channel, kind, rule, action, event, work,
                   CASE status WHEN 'sending' THEN 'pending' ELSE status END,
                   attempts, run_at, key, contact, unless, vars, campaign_run, last_error, response, created_at, updated_at
                 FROM jobs ORDER BY id",
        into: &["id", "lane", "channel", "kind", "rule", "action", "event", "work", "status", "attempts", "run_at", "key", "contact", "unless", "vars", "campaign_run", "last_error", "response", "created_at", "updated_at"],
        serial: true,
    },
    Table {
        name: "event_log",
        select: "SELECT id, at, record FROM event_log ORDER BY id",
        into: &["id", "at", "record"],
        serial: true,
    },
    Table {
        name: "chat_state",
        select: "SELECT chat_id, handoff_until, resume_on, handoff_rule, handoff_since, version FROM chat_state",
        into: &["chat_id", "handoff_until", "resume_on", "handoff_rule", "handoff_since", "version"],
        serial: false,
    },
    Table {
        name: "rule_fires",
        select: "SELECT rule, chat_id, fired_at FROM rule_fires",
        into: &["rule", "chat_id", "fired_at"],
        serial: false,
    },
    Table {
        name: "turns",
        select: "SELECT id, chat_id, role, text, at FROM turns ORDER BY id",
        into: &["id", "chat_id", "role", "text", "at"],
        serial: true,
    },
    Table {
        name: "ai_chats",
        select: "SELECT chat_id, fallbacks FROM ai_chats",
        into: &["chat_id", "fallbacks"],
        serial: false,
    },
    Table {
        name: "campaign_state",
        select: "SELECT name, checked_at, paused_at FROM campaign_state",
        into: &["name", "checked_at", "paused_at"],
        serial: false,
    },
    Table {
        name: "verifications",
        select: "SELECT run, phone, status, wa_id, checked_at FROM verifications",
        into: &["run", "phone", "status", "wa_id", "checked_at"],
        serial: false,
    },
    Table {
        name: "channel_health",
        select: "SELECT name, status, detail, at FROM channel_health",
        into: &["name", "status", "detail", "at"],
        serial: false,
    },
    Table {
        name: "group_activity",
        select: "SELECT group_id, phone, posted_at, joined_at FROM group_activity",
        into: &["group_id", "phone", "posted_at", "joined_at"],
        serial: false,
    },
    Table {
        name: "sent_messages",
        select: "SELECT message_id, channel, chat, rule, campaign, campaign_run, text, kind, sent_at, status, status_at, replied_at, options FROM sent_messages",
        into: &["message_id", "channel", "chat", "rule", "campaign", "campaign_run", "text", "kind", "sent_at", "status", "status_at", "replied_at", "options"],
        serial: false,
    },
];

/// Tables that must be empty in the database copied into: a copy never mixes with data.
const MUST_BE_EMPTY: &[&str] = &["inbound", "jobs", "contacts", "contact_tags", "event_log"];

/// Copies the SQLite file at `from` into the empty PostgreSQL database at `to`; returns the
/// rows copied per table.
pub async fn copy(from: &Path, to: &str) -> StoreResult<Vec<(&'static str, u64)>> {
    if !from.is_file() {
        return Err(StoreError::Unsupported(format!(
            "`{}` is not a SQLite file",
            from.display()
        )));
    }
    // Brought up to this release's schema first, as a start of Riposte would.
    drop(SqliteStore::open_with_options(from, OpenOptions::default()).await?);
    let target = PgStore::open(to, OpenOptions::default()).await?;
    let mut client = target.client().await?;
    for table in MUST_BE_EMPTY {
        let count: i64 = client
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .await?
            .get(0);
        if count > 0 {
            return Err(StoreError::Unsupported(format!(
                "the PostgreSQL database is not empty ({count} rows in `{table}`); copy into a new database"
            )));
        }
    }
    let source = rusqlite::Connection::open_with_flags(
        from,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let tx = client.transaction().await?;
    let mut copied = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        copied.push((table.name, copy_table(&source, &tx, table).await?));
    }
    tx.commit().await?;
    Ok(copied)
}

/// Copies one table, every value as text cast to the column's type in PostgreSQL.
async fn copy_table(
    source: &rusqlite::Connection,
    target: &impl GenericClient,
    table: &Table,
) -> StoreResult<u64> {
    let types: Vec<String> = {
        let rows = target
            .query(
                "SELECT column_name::text, format_type(atttypid, atttypmod)
                 FROM information_schema.columns c
                 JOIN pg_attribute a ON a.attrelid = c.table_name::regclass AND a.attname = c.column_name
                 WHERE c.table_name = $1 AND c.table_schema = current_schema()",
                &[&table.name],
            )
            .await?;
        table
            .into
            .iter()
            .map(|column| {
                rows.iter()
                    .find(|r| r.get::<_, String>(0) == *column)
                    .map(|r| r.get::<_, String>(1))
                    .ok_or_else(|| {
                        StoreError::Migrate(format!("`{}.{column}` is missing", table.name))
                    })
            })
            .collect::<StoreResult<_>>()?
    };
    let placeholders: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, ty)| format!("${}::text::{ty}", i + 1))
        .collect();
    let insert = target
        .prepare_cached(&format!(
            "INSERT INTO {} ({}) VALUES ({})",
            table.name,
            table.into.join(", "),
            placeholders.join(", ")
        ))
        .await?;
    let rows: Vec<Vec<Option<String>>> = {
        let mut statement = source.prepare(table.select)?;
        let width = table.into.len();
        let rows = statement.query_map([], |row| {
            (0..width)
                .map(|i| {
                    Ok(match row.get_ref(i)? {
                        ValueRef::Null => None,
                        ValueRef::Integer(n) => Some(n.to_string()),
                        ValueRef::Real(x) => Some(x.to_string()),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            Some(String::from_utf8_lossy(t).into_owned())
                        }
                    })
                })
                .collect()
        })?;
        rows.collect::<Result<_, _>>()?
    };
    for row in &rows {
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = row
            .iter()
            .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        target.execute(&insert, &params).await?;
    }
    if table.name == "inbound" {
        // Bodies still to be processed keep their chats, so their order holds.
        for row in rows.iter().filter(|r| r[6].is_none()) {
            let chats = super::postgres::chats_of(row[4].as_deref().unwrap_or_default());
            target
                .execute(
                    "INSERT INTO inbound_chats (chat, inbound_id) SELECT c, $2::text::bigint FROM unnest($1::text[]) AS c",
                    &[&chats, &row[0]],
                )
                .await?;
        }
    }
    if table.serial {
        target
            .execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', 'id'), GREATEST(COALESCE(MAX(id), 0), 1)) FROM {0}",
                    table.name
                ),
                &[],
            )
            .await?;
    }
    Ok(rows.len() as u64)
}
