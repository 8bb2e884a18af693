//! The PostgreSQL store: one database any number of instances share. Work is claimed with
//! `FOR UPDATE SKIP LOCKED` for a lease, a dedupe key is taken by the primary key when an
//! event completes, and a completion holds the rows of the chats it read while it checks
//! their versions and writes.

mod admin;
mod campaigns;
mod intake;

pub(in crate::store) use intake::chats_of;
mod jobs;
mod people;
mod tls;

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::Row;

use super::rows::{parse_attrs, stored_role};
use super::{Instance, OpenOptions, StoreError, StoreResult};
use crate::vocab::{ChatState, Contact, Handoff, SentMessage, Turn};

/// The schema versions, in order; each is applied once, in its own transaction.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_schema.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_sent_messages.sql"),
    ),
    (
        3,
        include_str!("../migrations/postgres/0003_group_activity.sql"),
    ),
    (
        4,
        include_str!("../migrations/postgres/0004_campaign_pause.sql"),
    ),
];

/// Instances that start together migrate once: they queue on this advisory lock, taken for
/// the migrating transaction only (a session lock would outlive it behind a pooler).
const MIGRATION_LOCK: i64 = 0x5269_706f_7374_6501;

/// Connections one instance keeps at most.
const POOL_SIZE: usize = 16;

/// Rows one pruning statement deletes at most.
const PRUNE_CHUNK: i64 = 2_000;

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// PostgreSQL, shared by the instances named in their claims.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    instance: Instance,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The address holds the password: never print it.
        f.debug_struct("PgStore")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(err: tokio_postgres::Error) -> Self {
        // The driver's own text; the source (the server's message) says what went wrong.
        let message = match std::error::Error::source(&err) {
            Some(source) => format!("{err}: {source}"),
            None => err.to_string(),
        };
        Self::Backend {
            backend: "postgres",
            message,
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        // A refused connection is the server's word (password, pg_hba.conf, TLS): keep it.
        let message = match err {
            deadpool_postgres::PoolError::Backend(err) => Self::from(err).to_string(),
            other => other.to_string(),
        };
        Self::Backend {
            backend: "postgres",
            message: format!("no connection: {message}"),
        }
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`, TLS as its
    /// `sslmode` says) and brings its schema up to date.
    pub async fn open(url: &str, options: OpenOptions) -> StoreResult<Self> {
        let (url, tls) = tls::read(url)?;
        let config = tokio_postgres::Config::from_str(&url).map_err(|e| {
            // The driver's message never repeats the address, which may hold a password.
            StoreError::Unsupported(format!("not a usable PostgreSQL address: {e}"))
        })?;
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match tls {
            tls::Tls::Off => Manager::from_config(config, tokio_postgres::NoTls, manager_config),
            _ => Manager::from_config(config, tls::connector(&tls)?, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Backend {
                backend: "postgres",
                message: e.to_string(),
            })?;
        let store = Self {
            pool,
            instance: options.instance,
        };
        store.migrate().await.map_err(tls::hint)?;
        Ok(store)
    }

    /// A connection from the pool.
    pub(in crate::store) async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        Ok(self.pool.get().await?)
    }

    /// Applies the migrations the database does not have yet, under the migration lock.
    async fn migrate(&self) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS riposte_schema (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await?;
        let current: i64 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM riposte_schema", &[])
            .await?
            .get(0);
        let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
        if current > latest {
            return Err(StoreError::Migrate(format!(
                "the database has schema version {current}, newer than this Riposte knows ({latest}); \
                 use the Riposte that wrote it, or a newer one"
            )));
        }
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            tx.batch_execute(sql)
                .await
                .map_err(|e| StoreError::Migrate(format!("version {version}: {e}")))?;
            tx.execute(
                "INSERT INTO riposte_schema (version, applied_at) VALUES ($1, $2)",
                &[version, &ms(Utc::now())],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The dedupe keys among `keys` that are remembered and not expired.
async fn seen(
    client: &impl GenericClient,
    keys: &[String],
    now: i64,
) -> StoreResult<BTreeSet<String>> {
    if keys.is_empty() {
        return Ok(BTreeSet::new());
    }
    let rows = client
        .query(
            "SELECT key FROM dedupe WHERE key = ANY($1) AND expires_at > $2",
            &[&keys, &now],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The chats among `chats` that a campaign message sent in the day before `now` awaits.
async fn awaited(
    client: &deadpool_postgres::Object,
    chats: &[String],
    now: i64,
) -> StoreResult<BTreeSet<String>> {
    if chats.is_empty() {
        return Ok(BTreeSet::new());
    }
    let statement = client
        .prepare_cached(
            "SELECT DISTINCT chat FROM sent_messages WHERE chat = ANY($1) AND campaign_run IS NOT NULL
               AND replied_at IS NULL AND sent_at >= $2",
        )
        .await?;
    let since = now - super::rows::REPLY_WINDOW_MS;
    let rows = client.query(&statement, &[&chats, &since]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The messages among `ids` that Riposte sent, by id.
async fn sent_of(
    client: &impl GenericClient,
    ids: &[String],
) -> StoreResult<HashMap<String, SentMessage>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = client
        .query(
            "SELECT message_id, channel, chat, rule, campaign, campaign_run, text, kind, sent_at, status, options
             FROM sent_messages WHERE message_id = ANY($1)",
            &[&ids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let sent = SentMessage {
                id: r.get(0),
                channel: r.get(1),
                chat: r.get(2),
                rule: r.get(3),
                campaign: r.get(4),
                campaign_run: r.get(5),
                text: r.get(6),
                kind: r.get(7),
                sent_at: time(r.get(8)),
                status: r.get(9),
                options: super::rows::read_options(r.get(10)),
            };
            (sent.id.clone(), sent)
        })
        .collect())
}

/// The contacts of these phones that have tags or attributes.
async fn contacts_of(
    client: &impl GenericClient,
    phones: &[String],
) -> StoreResult<HashMap<String, Contact>> {
    let mut found: HashMap<String, Contact> = HashMap::new();
    if phones.is_empty() {
        return Ok(found);
    }
    let blank = |phone: &str| Contact {
        phone: phone.to_owned(),
        ..Contact::default()
    };
    for row in client
        .query(
            "SELECT phone, attrs::text FROM contacts WHERE phone = ANY($1)",
            &[&phones],
        )
        .await?
    {
        let phone: String = row.get(0);
        let mut contact = blank(&phone);
        contact.attrs = parse_attrs(row.get(1))?;
        found.insert(phone, contact);
    }
    for row in client
        .query(
            "SELECT phone, tag FROM contact_tags WHERE phone = ANY($1)",
            &[&phones],
        )
        .await?
    {
        let phone: String = row.get(0);
        found
            .entry(phone.clone())
            .or_insert_with(|| blank(&phone))
            .tags
            .insert(row.get(1));
    }
    Ok(found)
}

/// A `chat_state` row's handoff.
fn handoff_row(row: &Row) -> Handoff {
    Handoff {
        chat: row.get("chat_id"),
        until: time(row.get("handoff_until")),
        since: time(
            row.get::<_, Option<i64>>("handoff_since")
                .unwrap_or_default(),
        ),
        resume_on: row.get("resume_on"),
        rule: row
            .get::<_, Option<String>>("handoff_rule")
            .unwrap_or_default(),
    }
}

/// The handoffs and `once_per` memory of these chats; chats with neither are left out.
async fn chat_states(
    client: &impl GenericClient,
    chats: &[String],
) -> StoreResult<HashMap<String, ChatState>> {
    let mut found: HashMap<String, ChatState> = HashMap::new();
    if chats.is_empty() {
        return Ok(found);
    }
    for row in client
        .query(
            "SELECT chat_id, handoff_until, resume_on, handoff_rule, handoff_since FROM chat_state
             WHERE chat_id = ANY($1) AND handoff_until IS NOT NULL",
            &[&chats],
        )
        .await?
    {
        let handoff = handoff_row(&row);
        let chat = handoff.chat.clone();
        found.entry(chat).or_default().handoff = Some(handoff);
    }
    for row in client
        .query(
            "SELECT chat_id, rule, fired_at FROM rule_fires WHERE chat_id = ANY($1)",
            &[&chats],
        )
        .await?
    {
        found
            .entry(row.get(0))
            .or_default()
            .fired
            .insert(row.get(1), time(row.get(2)));
    }
    Ok(found)
}

/// A conversation turn as stored.
fn turn_row(chat: &str, row: &Row) -> StoreResult<Turn> {
    Ok(Turn {
        chat: chat.to_owned(),
        role: stored_role(row.get(0))?,
        text: row.get(1),
        at: time(row.get(2)),
    })
}
