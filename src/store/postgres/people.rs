//! [`ContactStore`] on PostgreSQL: contacts, chat state and conversations, and the ops that
//! change them.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use super::{PgStore, chat_states, contacts_of, handoff_row, jobs, ms, turn_row};
use crate::store::rows::{JobRow, parse_attrs};
use crate::store::{ContactStore, Op, StoreError, StoreResult};
use crate::vocab::{ChatState, Contact, ContactChange, Handoff, HandoffChange, Turn, Work};

/// Every change to one chat's state takes this lock (with the chat's hash) for the rest of
/// its transaction, as a completion does for the chats it read: the version a completion
/// checked cannot move until it commits.
pub(super) const CHAT_LOCK: i32 = 2;

/// Applies ops in order, in the caller's transaction.
pub(super) async fn apply(client: &impl GenericClient, ops: &[Op], now: i64) -> StoreResult<()> {
    // Every incoming message answers its chat's campaign messages: one statement for all.
    let mut replied: Vec<&str> = Vec::new();
    let mut replied_at: Vec<i64> = Vec::new();
    for op in ops {
        match op {
            Op::Apply(Work::Contact(change)) => apply_contact(client, change, now).await?,
            Op::Apply(Work::Cancel { key }) => jobs::cancel_key(client, key, now).await?,
            Op::Apply(Work::Handoff(change)) => apply_handoff(client, change, now).await?,
            Op::Apply(work @ (Work::Call(_) | Work::Ai(_) | Work::Lookup(_))) => {
                return Err(StoreError::Corrupt(format!(
                    "a call is a job, it cannot be applied: {work:?}"
                )));
            }
            Op::Job(job) => {
                jobs::insert(client, &JobRow::new(job)?, now, None).await?;
            }
            Op::Turn(turn) => {
                client
                    .execute(
                        "INSERT INTO turns (chat_id, role, text, at) VALUES ($1, $2, $3, $4)",
                        &[&turn.chat, &turn.role.as_str(), &turn.text, &ms(turn.at)],
                    )
                    .await?;
            }
            Op::AiFallbacks { chat, count } => {
                client
                    .execute(
                        "INSERT INTO ai_chats (chat_id, fallbacks) VALUES ($1, $2)
                         ON CONFLICT (chat_id) DO UPDATE SET fallbacks = excluded.fallbacks",
                        &[chat, &(i64::from(*count).min(i64::from(i32::MAX)) as i32)],
                    )
                    .await?;
            }
            Op::Fired { rule, chat, at } => {
                client
                    .execute(
                        "INSERT INTO rule_fires (rule, chat_id, fired_at) VALUES ($1, $2, $3)
                         ON CONFLICT (rule, chat_id) DO UPDATE SET fired_at = excluded.fired_at",
                        &[rule, chat, &ms(*at)],
                    )
                    .await?;
                bump(client, chat).await?;
            }
            Op::ChannelHealth(health) => {
                client
                    .execute(
                        "INSERT INTO channel_health (name, status, detail, at) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (name) DO UPDATE SET status = excluded.status, detail = excluded.detail, at = excluded.at
                         WHERE excluded.at >= channel_health.at",
                        &[&health.name, &health.status, &health.detail, &ms(health.at)],
                    )
                    .await?;
            }
            Op::Sent(sent) => {
                // A status can come before the send's result is recorded: it is not lost,
                // the row then starts at that status.
                run(client,
                        "INSERT INTO sent_messages (message_id, channel, chat, rule, campaign, campaign_run, text, kind, sent_at, status, options)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (message_id) DO NOTHING",
                        &[
                            &sent.id,
                            &sent.channel,
                            &sent.chat,
                            &sent.rule,
                            &sent.campaign,
                            &sent.campaign_run,
                            &sent.text,
                            &sent.kind,
                            &ms(sent.sent_at),
                            &sent.status,
                            &crate::store::rows::stored_options(&sent.options),
                        ],
                    )
                    .await?;
            }
            Op::Status(status) => {
                if let Some(stage) = crate::vocab::sent::stage(&status.status) {
                    let sql = format!(
                        "UPDATE sent_messages SET status = $2, status_at = $3
                         WHERE message_id = $1 AND {} < $4::bigint",
                        crate::store::rows::STAGE_OF_STATUS
                    );
                    run(
                        client,
                        &sql,
                        &[&status.id, &status.status, &ms(status.at), &stage],
                    )
                    .await?;
                }
            }
            Op::GroupActivity {
                group,
                phone,
                at,
                joined,
            } => {
                let at = ms(*at);
                run(client,
                        "INSERT INTO group_activity (group_id, phone, joined_at) VALUES ($1, '', $2) ON CONFLICT DO NOTHING",
                        &[group, &at],
                    )
                    .await?;
                let sql = if *joined {
                    "INSERT INTO group_activity (group_id, phone, joined_at) VALUES ($1, $2, $3)
                     ON CONFLICT (group_id, phone) DO UPDATE SET joined_at = GREATEST(group_activity.joined_at, excluded.joined_at)"
                } else {
                    "INSERT INTO group_activity (group_id, phone, posted_at) VALUES ($1, $2, $3)
                     ON CONFLICT (group_id, phone) DO UPDATE SET posted_at = GREATEST(group_activity.posted_at, excluded.posted_at)"
                };
                run(client, sql, &[group, phone, &at]).await?;
            }
            Op::Replied { chat, at } => {
                replied.push(chat);
                replied_at.push(ms(*at));
            }
        }
    }
    if !replied.is_empty() {
        run(
            client,
            "UPDATE sent_messages s SET replied_at = v.at
                 FROM unnest($1::text[], $2::bigint[]) AS v(chat, at)
                 WHERE s.chat = v.chat AND s.campaign_run IS NOT NULL AND s.replied_at IS NULL
                   AND s.sent_at >= v.at - $3 AND s.sent_at <= v.at",
            &[&replied, &replied_at, &crate::store::rows::REPLY_WINDOW_MS],
        )
        .await?;
    }
    Ok(())
}

/// Runs a statement prepared once per connection, so a hot path pays no parse.
async fn run(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> StoreResult<u64> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.execute(&statement, params).await?)
}

/// A chat's state changed: its version moves on, under the chat's lock.
async fn bump(client: &impl GenericClient, chat: &str) -> StoreResult<()> {
    client
        .execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&CHAT_LOCK, &chat],
        )
        .await?;
    client
        .execute(
            "INSERT INTO chat_state (chat_id, version) VALUES ($1, 1)
             ON CONFLICT (chat_id) DO UPDATE SET version = chat_state.version + 1",
            &[&chat],
        )
        .await?;
    Ok(())
}

async fn apply_handoff(
    client: &impl GenericClient,
    change: &HandoffChange,
    now: i64,
) -> StoreResult<()> {
    match change {
        HandoffChange::Start {
            chat,
            until,
            resume_on,
            rule,
        } => {
            bump(client, chat).await?;
            client
                .execute(
                    "UPDATE chat_state SET handoff_until = $2, resume_on = $3, handoff_rule = $4, handoff_since = $5
                     WHERE chat_id = $1",
                    &[chat, &ms(*until), resume_on, rule, &now],
                )
                .await?;
        }
        HandoffChange::End { chat } => {
            bump(client, chat).await?;
            client
                .execute(
                    "UPDATE chat_state SET handoff_until = NULL, resume_on = NULL, handoff_rule = NULL, handoff_since = NULL
                     WHERE chat_id = $1",
                    &[chat],
                )
                .await?;
        }
    }
    Ok(())
}

async fn apply_contact(
    client: &impl GenericClient,
    change: &ContactChange,
    now: i64,
) -> StoreResult<()> {
    match change {
        ContactChange::Tag { phone, tag } => {
            client
                .execute(
                    "INSERT INTO contact_tags (phone, tag, added_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[phone, tag, &now],
                )
                .await?;
        }
        ContactChange::Untag { phone, tag } => {
            client
                .execute(
                    "DELETE FROM contact_tags WHERE phone = $1 AND tag = $2",
                    &[phone, tag],
                )
                .await?;
        }
        ContactChange::Set { phone, key, value } => {
            client
                .execute(
                    "INSERT INTO contacts (phone, attrs, updated_at) VALUES ($1, jsonb_build_object($2::text, $3::text), $4)
                     ON CONFLICT (phone) DO UPDATE SET attrs = contacts.attrs || jsonb_build_object($2::text, $3::text), updated_at = $4",
                    &[phone, key, value, &now],
                )
                .await?;
        }
    }
    Ok(())
}

#[async_trait]
impl ContactStore for PgStore {
    async fn contact(&self, phone: &str) -> StoreResult<Contact> {
        if phone.is_empty() {
            return Ok(Contact::default());
        }
        let client = self.client().await?;
        let phones = [phone.to_owned()];
        let mut found = contacts_of(&client, &phones).await?;
        Ok(found.remove(phone).unwrap_or(Contact {
            phone: phone.to_owned(),
            ..Contact::default()
        }))
    }

    async fn contacts_of(&self, phones: &[String]) -> StoreResult<HashMap<String, Contact>> {
        let client = self.client().await?;
        contacts_of(&client, phones).await
    }

    async fn contacts(&self) -> StoreResult<Vec<Contact>> {
        let client = self.client().await?;
        let mut contacts: BTreeMap<String, Contact> = BTreeMap::new();
        let blank = |phone: &str| Contact {
            phone: phone.to_owned(),
            ..Contact::default()
        };
        for row in client
            .query("SELECT phone, attrs::text FROM contacts", &[])
            .await?
        {
            let phone: String = row.get(0);
            let mut contact = blank(&phone);
            contact.attrs = parse_attrs(row.get(1))?;
            contacts.insert(phone, contact);
        }
        for row in client
            .query("SELECT phone, tag FROM contact_tags", &[])
            .await?
        {
            let phone: String = row.get(0);
            contacts
                .entry(phone.clone())
                .or_insert_with(|| blank(&phone))
                .tags
                .insert(row.get(1));
        }
        Ok(contacts.into_values().collect())
    }

    async fn chat_states(&self, chats: &[String]) -> StoreResult<HashMap<String, ChatState>> {
        let client = self.client().await?;
        chat_states(&client, chats).await
    }

    async fn handoffs(&self, now: DateTime<Utc>) -> StoreResult<Vec<Handoff>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT chat_id, handoff_until, resume_on, handoff_rule, handoff_since FROM chat_state
                 WHERE handoff_until > $1 ORDER BY handoff_since",
                &[&ms(now)],
            )
            .await?;
        Ok(rows.iter().map(handoff_row).collect())
    }

    async fn apply(&self, ops: &[Op], now: DateTime<Utc>) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        apply(&tx, ops, ms(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn turns(&self, chat: &str, limit: u32) -> StoreResult<Vec<Turn>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT role, text, at FROM turns WHERE chat_id = $1 ORDER BY id DESC LIMIT $2",
                &[&chat, &i64::from(limit)],
            )
            .await?;
        let mut turns = rows
            .iter()
            .map(|row| turn_row(chat, row))
            .collect::<StoreResult<Vec<_>>>()?;
        turns.reverse();
        Ok(turns)
    }

    async fn forget_turns(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let client = self.client().await?;
        Ok(client
            .execute("DELETE FROM turns WHERE at < $1", &[&ms(before)])
            .await?)
    }

    async fn ai_fallbacks(&self, chat: &str) -> StoreResult<u32> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT fallbacks FROM ai_chats WHERE chat_id = $1",
                &[&chat],
            )
            .await?;
        Ok(row.map_or(0, |r| r.get::<_, i32>(0).max(0) as u32))
    }
}
