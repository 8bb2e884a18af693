//! [`ContactStore`] on SQLite: contacts, chat state and conversations.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{
    SqliteStore, chat_states, contacts_of, handoff_row, ms, ops, parse_attrs, stored_role, time,
};
use crate::store::{ContactStore, Op, StoreResult};
use crate::vocab::{ChatState, Contact, Handoff, Turn};

#[async_trait]
impl ContactStore for SqliteStore {
    async fn contact(&self, phone: &str) -> StoreResult<Contact> {
        let phone = phone.to_owned();
        if phone.is_empty() {
            return Ok(Contact::default());
        }
        self.db
            .read_now(move |conn| {
                let mut found = contacts_of(conn, std::slice::from_ref(&phone))?;
                Ok(found.remove(&phone).unwrap_or(Contact {
                    phone,
                    ..Contact::default()
                }))
            })
            .await
    }

    async fn contacts_of(&self, phones: &[String]) -> StoreResult<HashMap<String, Contact>> {
        let phones = phones.to_vec();
        self.db
            .read_now(move |conn| contacts_of(conn, &phones))
            .await
    }

    async fn contacts(&self) -> StoreResult<Vec<Contact>> {
        self.db
            .read(|conn| {
                let mut contacts: BTreeMap<String, Contact> = BTreeMap::new();
                let mut statement = conn.prepare_cached("SELECT phone, attrs FROM contacts")?;
                let mut rows = statement.query([])?;
                while let Some(row) = rows.next()? {
                    let phone: String = row.get(0)?;
                    let attrs = parse_attrs(&row.get::<_, String>(1)?)?;
                    contacts.insert(
                        phone.clone(),
                        Contact {
                            phone,
                            attrs,
                            ..Contact::default()
                        },
                    );
                }
                let mut statement = conn.prepare_cached("SELECT phone, tag FROM contact_tags")?;
                let mut rows = statement.query([])?;
                while let Some(row) = rows.next()? {
                    let phone: String = row.get(0)?;
                    let entry = contacts.entry(phone.clone()).or_insert_with(|| Contact {
                        phone,
                        ..Contact::default()
                    });
                    entry.tags.insert(row.get(1)?);
                }
                Ok(contacts.into_values().collect())
            })
            .await
    }

    async fn chat_states(&self, chats: &[String]) -> StoreResult<HashMap<String, ChatState>> {
        let chats = chats.to_vec();
        self.db
            .read_now(move |conn| chat_states(conn, &chats))
            .await
    }

    async fn handoffs(&self, now: DateTime<Utc>) -> StoreResult<Vec<Handoff>> {
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached("SELECT chat_id, handoff_until, resume_on, handoff_rule, handoff_since FROM chat_state WHERE handoff_until > ?1 ORDER BY handoff_since")?;
                let mut rows = statement.query([ms(now)])?;
                let mut found = Vec::new();
                while let Some(row) = rows.next()? {
                    found.push(handoff_row(row)?);
                }
                Ok(found)
            })
            .await
    }

    async fn apply(&self, ops: &[Op], now: DateTime<Utc>) -> StoreResult<()> {
        let changes = ops::changes(ops)?;
        self.db
            .write(move |conn| ops::apply(conn, &changes, ms(now)))
            .await
    }

    async fn turns(&self, chat: &str, limit: u32) -> StoreResult<Vec<Turn>> {
        let chat = chat.to_owned();
        self.db
            .read_now(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT role, text, at FROM turns WHERE chat_id = ?1 ORDER BY id DESC LIMIT ?2",
                )?;
                let mut rows = statement.query(params![chat, i64::from(limit)])?;
                let mut turns = Vec::new();
                while let Some(row) = rows.next()? {
                    turns.push(Turn {
                        chat: chat.clone(),
                        role: stored_role(&row.get::<_, String>(0)?)?,
                        text: row.get(1)?,
                        at: time(row.get(2)?),
                    });
                }
                turns.reverse();
                Ok(turns)
            })
            .await
    }

    async fn forget_turns(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        self.db
            .write(move |conn| {
                let forgotten = conn
                    .prepare_cached("DELETE FROM turns WHERE at < ?1")?
                    .execute([ms(before)])?;
                Ok(forgotten as u64)
            })
            .await
    }

    async fn ai_fallbacks(&self, chat: &str) -> StoreResult<u32> {
        let chat = chat.to_owned();
        self.db
            .read_now(move |conn| {
                let count: Option<i64> = conn
                    .prepare_cached("SELECT fallbacks FROM ai_chats WHERE chat_id = ?1")?
                    .query_row([chat], |r| r.get(0))
                    .optional()?;
                Ok(count.unwrap_or_default().clamp(0, i64::from(u32::MAX)) as u32)
            })
            .await
    }
}
