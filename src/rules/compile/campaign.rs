//! `campaigns:` entries → compiled [`Campaign`]s.

use super::Compiler;
use super::message::content;
use crate::campaigns::{Audience, Campaign, parse_rate, parse_schedule, read_csv};
use crate::config::{AudienceSpec, CampaignSpec, Located, MessageContent, MessageSpec};

/// A conservative default: well under WhatsApp's thresholds for unusual activity.
const DEFAULT_RATE: &str = "20/min";

impl Compiler<'_> {
    /// Compiles a campaign; its templates see `contact`, `campaign` and `now`.
    pub(super) fn campaign(
        &mut self,
        spec: &Located<CampaignSpec>,
    ) -> Option<crate::campaigns::Campaign> {
        let c = &spec.value;
        let errors_before = self.diagnostics.len();
        let cron = parse_schedule(&c.schedule.value)
            .map_err(|e| self.error(c.schedule.line, c.schedule.column, e))
            .ok();
        let timezone = self.zone(c.timezone.as_ref());
        let rate_text = c
            .rate
            .as_ref()
            .map_or(DEFAULT_RATE, |r| r.value.as_str())
            .to_owned();
        let interval = match parse_rate(&rate_text) {
            Ok(i) => Some(i),
            Err(e) => {
                let (line, column) = c
                    .rate
                    .as_ref()
                    .map_or((spec.line, spec.column), |r| (r.line, r.column));
                self.error(line, column, e);
                None
            }
        };
        self.in_campaign = true;
        let audience = match &c.audience {
            Some(a) => self.audience(a),
            None => {
                self.error(
                    spec.line,
                    spec.column,
                    format!(
                        "campaign `{}` has no `audience` (tags, numbers, file or chat_id)",
                        c.name.value
                    ),
                );
                None
            }
        };
        let (message, then) = match (&c.send, &c.then) {
            (Some(send), None) => (self.campaign_message(send).map(Some), Some(Vec::new())),
            (None, Some(then)) => (Some(None), self.campaign_then(then)),
            (Some(_), Some(then)) => {
                self.error(
                    then.line,
                    then.column,
                    "a campaign either sends a message (`send`) or does actions (`then`), not both",
                );
                (None, None)
            }
            (None, None) => {
                self.error(
                    spec.line,
                    spec.column,
                    format!(
                        "campaign `{}` needs `send` (the message) or `then` (actions for each recipient)",
                        c.name.value
                    ),
                );
                (None, None)
            }
        };
        self.in_campaign = false;
        self.channels.clear();
        let channel = c.channel.as_ref().map(|name| self.channel(name));
        if self.diagnostics.len() != errors_before {
            return None;
        }
        Some(Campaign {
            name: c.name.value.clone(),
            description: c.description.clone(),
            file: self.file.path.clone(),
            line: spec.line,
            schedule: c.schedule.value.clone(),
            cron: cron?,
            timezone: timezone?,
            audience: audience?,
            content: message.as_ref()?.as_ref().map(|m| m.0.clone()),
            extras: message?.and_then(|m| m.1),
            then: then?,
            interval: interval?,
            rate: rate_text,
            catch_up: c.catch_up,
            exclude: c.exclude.clone(),
            enabled: c.enabled,
            channel,
            channel_ref: self.channels.pop(),
            fingerprint: super::fingerprint(&self.lines, spec.line, spec.column),
        })
    }

    fn campaign_message(
        &mut self,
        send: &Located<MessageContent>,
    ) -> Option<(crate::actions::Content, Option<Box<crate::actions::Extras>>)> {
        let (line, column) = (send.line, send.column);
        let owned;
        let m = match &send.value {
            MessageContent::Text(text) => {
                owned = MessageSpec {
                    text: Some(Located {
                        value: text.clone(),
                        line,
                        column,
                    }),
                    ..MessageSpec::default()
                };
                &owned
            }
            MessageContent::Full(m) => m,
        };
        if let Some(to) = &m.to {
            self.error(
                to.line,
                to.column,
                "a campaign sends to its `audience`; remove `to`",
            );
            return None;
        }
        if let Some(channel) = &m.channel {
            self.error(
                channel.line,
                channel.column,
                "a campaign's channel goes on the campaign: move `channel:` next to `schedule:`",
            );
            return None;
        }
        if m.quote || m.typing.is_some() {
            self.error(
                line,
                column,
                "`quote` and `typing` need an incoming message; campaigns have none",
            );
            return None;
        }
        let content = content(m, "send", line, column, self)?;
        let extras = super::message::extras(m, &content, self)?;
        Some((content, extras.boxed()))
    }

    /// A campaign's `then:` actions, for each recipient: what needs no incoming message.
    fn campaign_then(
        &mut self,
        then: &Located<Vec<Located<crate::config::ActionSpec>>>,
    ) -> Option<Vec<crate::actions::Step>> {
        use crate::actions::{Action, Recipient, Timing};
        if then.value.is_empty() {
            self.error(then.line, then.column, "`then` is empty");
            return None;
        }
        let mut steps = Some(Vec::new());
        for entry in &then.value {
            let step = super::action::compile_step(entry, self);
            let fits = step.as_ref().is_none_or(|s| {
                let fits = matches!(
                    s.action,
                    Action::Message {
                        to: Recipient::To(_),
                        ..
                    } | Action::Group { .. }
                        | Action::Tag(_)
                        | Action::Untag(_)
                        | Action::Set(_)
                        | Action::Webhook(_)
                        | Action::Cancel(_)
                ) && matches!(s.timing, Timing::Now);
                if !fits {
                    self.error(
                        entry.line,
                        entry.column,
                        format!(
                            "a campaign's `then` cannot use `{}`{}: it has no incoming message; use send (with `to`), group_add, group_remove, tag, untag, set, webhook or cancel",
                            s.action.name(),
                            if matches!(s.timing, Timing::Now) { "" } else { " with `after` or `at`" }
                        ),
                    );
                }
                fits
            });
            match (step, steps.as_mut()) {
                (Some(step), Some(list)) if fits => list.push(step),
                _ => steps = None,
            }
        }
        steps
    }

    fn audience(&mut self, spec: &Located<AudienceSpec>) -> Option<Audience> {
        let a = &spec.value;
        let mut audience = Audience {
            tags: a
                .tags
                .as_ref()
                .map(|t| (t.all.clone(), t.any.clone(), t.none.clone())),
            numbers: a.numbers.as_ref().map(|n| n.0.clone()).unwrap_or_default(),
            everyone: a.all.as_ref().is_some_and(|all| all.value),
            chats: a.chat_id.as_ref().map(|n| n.0.clone()).unwrap_or_default(),
            ..Audience::default()
        };
        if let Some(expr) = &a.expr {
            audience.filter = Some(self.condition(expr)?);
        }
        if let Some(members) = &a.group_members {
            audience.group_members = Some(self.group_members(members)?);
        }
        if let Some(file) = &a.file {
            // Like knowledge files: a rule file cannot turn any file on the machine into a
            // list of recipients.
            let read = self
                .file_inside(&file.value, "audience file")
                .and_then(|path| read_csv(&path).map(|rows| (path, rows)));
            match read {
                Ok((path, rows)) => {
                    audience.rows = rows;
                    audience.file = Some(path);
                }
                Err(e) => {
                    self.error(file.line, file.column, e);
                    return None;
                }
            }
        }
        if audience
            .tags
            .as_ref()
            .is_some_and(|(all, any, none)| all.is_empty() && any.is_empty() && none.is_empty())
        {
            self.error(
                spec.line,
                spec.column,
                "`audience.tags` needs `all`, `any` or `none`",
            );
            return None;
        }
        if let Some(all) = a.all.as_ref().filter(|all| !all.value) {
            self.error(all.line, all.column, "`all: false` adds nobody; remove it");
            return None;
        }
        if audience.tags.is_none()
            && !audience.everyone
            && audience.numbers.is_empty()
            && a.file.is_none()
            && audience.chats.is_empty()
            && audience.group_members.is_none()
        {
            self.error(
                spec.line,
                spec.column,
                "the audience is empty: give `all`, `tags`, `numbers`, `file`, `chat_id` or `group_members`",
            );
            return None;
        }
        Some(audience)
    }

    fn group_members(
        &mut self,
        spec: &Located<crate::config::GroupMembersSpec>,
    ) -> Option<crate::campaigns::GroupMembers> {
        let g = &spec.value;
        let group = g.group.value.trim();
        if let Err(e) = crate::whapi::path::IdKind::Group.segment("`group_members.group`", group) {
            self.error(g.group.line, g.group.column, e.to_string());
            return None;
        }
        let inactive_for = match &g.inactive_for {
            None => None,
            Some(d) => match crate::duration::parse(&d.value) {
                Ok(d) => chrono::Duration::from_std(d).ok(),
                Err(e) => {
                    self.error(d.line, d.column, e);
                    return None;
                }
            },
        };
        Some(crate::campaigns::GroupMembers {
            group: group.to_owned(),
            inactive_for,
            except_admins: g.except_admins.unwrap_or(true),
        })
    }
}
