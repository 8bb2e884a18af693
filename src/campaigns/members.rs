//! A group's members as a campaign audience: who is in the group now, as Whapi.Cloud lists it,
//! less its admins and, with `inactive_for`, less who posted or joined within the window, as
//! Riposte saw it. Nobody counts as inactive over a window Riposte has not watched whole.

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::Campaign;
use crate::store::{Store, StoreError};
use crate::vocab::OutboundRequest;
use crate::whapi::Client;
use crate::whapi::path::IdKind;

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub phone: String,
    /// An admin or the group's creator.
    pub admin: bool,
}

/// Lists a group's members (Whapi.Cloud's `GET /groups/{id}`; a stand-in in tests).
#[async_trait]
pub trait GroupDirectory: Send + Sync {
    async fn members(&self, group: &str, channel: Option<&str>) -> Result<Vec<Member>, String>;
}

/// Why a campaign run could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audience could not be resolved; nothing was planned.
    #[error("{0}")]
    Audience(String),
}

#[async_trait]
impl GroupDirectory for Client {
    async fn members(&self, group: &str, channel: Option<&str>) -> Result<Vec<Member>, String> {
        let segment = IdKind::Group
            .segment("the audience's group", group)
            .map_err(|e| e.to_string())?;
        let mut request = OutboundRequest::whapi(
            "GET",
            format!("/groups/{segment}"),
            None,
            &crate::vocab::ChatId::new(group),
        );
        if let Some(channel) = channel {
            request.through(channel);
        }
        let answer = self.read(&request).await?;
        let group: Value =
            serde_json::from_str(&answer).map_err(|e| format!("the answer is not JSON: {e}"))?;
        let listed = group
            .get("participants")
            .and_then(Value::as_array)
            .ok_or("the answer lists no participants")?;
        Ok(listed
            .iter()
            .filter_map(|p| {
                let phone = crate::events::bare_phone(p.get("id")?.as_str()?);
                let rank = p.get("rank").and_then(Value::as_str).unwrap_or("member");
                Some(Member {
                    phone,
                    admin: matches!(rank, "admin" | "creator"),
                })
            })
            .collect())
    }
}

/// The phones a campaign's `group_members` audience stands for now (none without one).
pub async fn members(
    campaign: &Campaign,
    store: &dyn Store,
    directory: Option<&dyn GroupDirectory>,
    now: DateTime<Utc>,
) -> Result<Vec<String>, PlanError> {
    let Some(g) = &campaign.audience.group_members else {
        return Ok(Vec::new());
    };
    let directory = directory.ok_or_else(|| {
        PlanError::Audience(format!(
            "the members of {} are listed by Whapi.Cloud, and nothing here can ask it",
            g.group
        ))
    })?;
    let listed = directory
        .members(&g.group, campaign.channel.as_deref())
        .await
        .map_err(|e| PlanError::Audience(format!("cannot list the members of {}: {e}", g.group)))?;
    let mut phones: Vec<String> = listed
        .into_iter()
        .filter(|m| !(m.phone.is_empty() || g.except_admins && m.admin))
        .map(|m| m.phone)
        .collect();
    let Some(window) = g.inactive_for else {
        return Ok(phones);
    };
    let seen = store.group_activity(&g.group).await?;
    let since = now - window;
    let day = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    match seen.watched_since {
        Some(watched) if watched <= since => {}
        Some(watched) => {
            return Err(PlanError::Audience(format!(
                "Riposte has seen group {} only since {}, so who was inactive for {} is known from {} on; nobody is treated as inactive before then",
                g.group,
                day(watched),
                describe(window),
                day(watched + window)
            )));
        }
        None => {
            return Err(PlanError::Audience(format!(
                "Riposte has seen nothing of group {} yet, so nobody can be told inactive",
                g.group
            )));
        }
    }
    phones.retain(|phone| {
        let (posted, joined) = seen.members.get(phone).copied().unwrap_or_default();
        let active = |at: Option<DateTime<Utc>>| at.is_some_and(|t| t >= since);
        !active(posted) && !active(joined)
    });
    Ok(phones)
}

/// A window as people write it: `30d`, `12h`, `90m`.
fn describe(window: chrono::Duration) -> String {
    let minutes = window.num_minutes();
    if minutes % (24 * 60) == 0 {
        format!("{}d", minutes / (24 * 60))
    } else if minutes % 60 == 0 {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
}
