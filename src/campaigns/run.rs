//! Planning a campaign run: the audience resolved, opted-out and excluded contacts left out,
//! the message rendered per recipient, and one paced job each.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use minijinja::context;

use super::{Campaign, Trigger};
use crate::actions::{Action, Recipient, RenderCx};
use crate::events::{Event, EventKind};
use crate::rules::RuleSet;
use crate::store::{NewRun, Store};
use crate::templates::{Templates, Text, to_value};
use crate::vocab::{Contact, JobKind, NewJob, Work};

/// The tag that keeps a contact out of every campaign and follow-up.
pub const OPTED_OUT: &str = "opted-out";

/// From this many recipients on, messages are rendered on every core.
const PARALLEL_FROM: usize = 2_000;

/// A planned run: one job per recipient, and how many were left out.
#[derive(Debug, Default)]
pub struct PlannedRun {
    pub jobs: Vec<NewJob>,
    pub skipped: u32,
}

/// Bare digits of a phone number as people write it (`+49 151 1234-5678`), if it is one.
pub fn normalise(phone: &str) -> Option<String> {
    let digits: String = phone
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.' | '+'))
        .collect();
    (7..=15)
        .contains(&digits.len())
        .then_some(digits)
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
}

/// Plans a run starting at `start`. `known` are the contacts in the database (tags,
/// attributes); `members` the group members the audience resolved to (see [`members`]).
pub fn plan(
    campaign: &Campaign,
    templates: &Templates,
    known: &[Contact],
    members: &[String],
    start: DateTime<Utc>,
) -> PlannedRun {
    let by_phone: HashMap<&str, &Contact> = known.iter().map(|c| (c.phone.as_str(), c)).collect();
    let mut recipients: Vec<Contact> = Vec::new();
    let mut seen = HashSet::new();
    let mut run = PlannedRun::default();
    let mut add = |phone: &str, extra: &BTreeMap<String, String>, run: &mut PlannedRun| {
        let Some(phone) = normalise(phone) else {
            run.skipped += 1;
            return;
        };
        if !seen.insert(phone.clone()) {
            return;
        }
        let mut contact = by_phone.get(phone.as_str()).map_or_else(
            || Contact {
                phone: phone.clone(),
                ..Contact::default()
            },
            |c| (*c).clone(),
        );
        contact
            .attrs
            .extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        recipients.push(contact);
    };
    if campaign.audience.everyone {
        for contact in known {
            add(&contact.phone, &BTreeMap::new(), &mut run);
        }
    }
    if let Some((all, any, none)) = &campaign.audience.tags {
        for contact in known {
            let has = |t: &String| contact.tags.contains(t);
            if all.iter().all(has)
                && (any.is_empty() || any.iter().any(has))
                && !none.iter().any(has)
            {
                add(&contact.phone, &BTreeMap::new(), &mut run);
            }
        }
    }
    for number in &campaign.audience.numbers {
        add(number, &BTreeMap::new(), &mut run);
    }
    for (phone, attrs) in &campaign.audience.rows {
        add(phone, attrs, &mut run);
    }
    for phone in members {
        add(phone, &BTreeMap::new(), &mut run);
    }
    let of_channel = campaign
        .channel
        .as_ref()
        .map(|channel| format!("{OPTED_OUT}:{channel}"));
    let blocked = |c: &Contact| {
        c.tags.contains(OPTED_OUT)
            || of_channel.as_ref().is_some_and(|t| c.tags.contains(t))
            || campaign.exclude.iter().any(|t| c.tags.contains(t))
    };
    let before = recipients.len();
    recipients.retain(|c| !blocked(c));
    run.skipped += (before - recipients.len()) as u32;
    let now = start.to_rfc3339_opts(SecondsFormat::Secs, true);
    let today = crate::templates::today(start, campaign.timezone);
    let zone = crate::templates::zone_value(campaign.timezone);
    if let Some(filter) = &campaign.audience.filter {
        // Not a skip: people the expression leaves out were never in this run's audience.
        recipients.retain(|c| {
            let ctx = context! {
                contact => to_value(c),
                campaign => context! { name => campaign.name.as_str() },
                now => now.as_str(),
                today => today.as_str(),
                __zone__ => zone.clone(),
            };
            templates
                .render_named(filter, &ctx)
                .is_ok_and(|out| out == "1")
        });
    }
    let mut targets: Vec<(String, Option<Contact>)> = recipients
        .into_iter()
        .map(|c| (c.phone.clone(), Some(c)))
        .collect();
    targets.extend(
        campaign
            .audience
            .chats
            .iter()
            .map(|chat| (chat.clone(), None)),
    );
    let event = Event::new(
        EventKind::Custom(format!("campaign:{}", campaign.name)),
        "campaign",
        Arc::new(serde_json::Value::Null),
    );
    // Each recipient's jobs are rendered on their own; a big audience is split over the cores.
    let jobs = crate::parallel::map(&targets, PARALLEL_FROM, |i, (to, contact)| {
        let none = Contact::default();
        let contact = contact.as_ref().unwrap_or(&none);
        let ctx = context! {
            contact => to_value(contact),
            campaign => context! { name => campaign.name.as_str() },
            now => now.as_str(),
            today => today.as_str(),
            __zone__ => zone.clone(),
        };
        let cx = RenderCx {
            webhook_allow: &[],
            templates,
            ctx: &ctx,
            event: &event,
            contact,
            now: start,
            rule: &campaign.name,
        };
        let run_at = start + campaign.interval * i as i32;
        let job = |action: &str, work: Work| {
            let mut job = NewJob::action(
                &campaign.name,
                action,
                &format!("campaign:{}", campaign.name),
                work,
                run_at,
            );
            job.kind = JobKind::Campaign;
            job.contact = (!contact.phone.is_empty()).then(|| contact.phone.clone());
            job
        };
        let through = |mut work: Work| {
            if let (Some(channel), Work::Call(request)) = (&campaign.channel, &mut work) {
                request.through(channel);
            }
            work
        };
        let Some(content) = &campaign.content else {
            return campaign
                .then
                .iter()
                .flat_map(|step| match step.action.render(&cx) {
                    Ok(effects) => effects
                        .into_iter()
                        .map(|mut work| {
                            // One recipient's actions go in the order written (told, then
                            // removed): they share the recipient's lane.
                            if let (Work::Call(request), false) =
                                (&mut work, contact.phone.is_empty())
                            {
                                request.lane =
                                    crate::vocab::ChatId::new(contact.phone.as_str()).lane();
                            }
                            job(step.action.name(), through(work))
                        })
                        .collect(),
                    Err(err) => {
                        let mut dead = job(step.action.name(), Work::Call(placeholder()));
                        dead.dead = Some(format!(
                            "`{}` for {to} could not be rendered: {err}",
                            step.action.name()
                        ));
                        vec![dead]
                    }
                })
                .collect::<Vec<_>>();
        };
        let action = Action::Message {
            to: Recipient::To(Text::Literal(to.clone())),
            content: content.clone(),
            quote: false,
            typing: None,
            extras: campaign.extras.clone(),
        };
        let mut send = job("send", Work::Call(placeholder()));
        match action.render(&cx) {
            Ok(effects) => match effects.into_iter().next() {
                Some(work @ Work::Call(_)) => send.work = through(work),
                _ => send.dead = Some("the message rendered to nothing".into()),
            },
            Err(err) => send.dead = Some(format!("message for {to} could not be rendered: {err}")),
        }
        vec![send]
    });
    run.jobs = jobs.into_iter().flatten().collect();
    run
}

fn placeholder() -> crate::vocab::OutboundRequest {
    crate::vocab::OutboundRequest {
        target: crate::vocab::Target::Whapi,
        method: "POST".into(),
        path: String::new(),
        headers: Vec::new(),
        body: None,
        lane: String::new(),
        channel: None,
        pin: None,
    }
}

/// Plans and records a run of a campaign at a fire time. `None` if that fire time already ran
/// (the run and its jobs are written in one transaction, so a retry never doubles a run).
/// `groups` lists group members for a `group_members` audience.
pub async fn launch(
    store: &dyn Store,
    set: &RuleSet,
    campaign: &Campaign,
    fire_at: DateTime<Utc>,
    trigger: Trigger,
    now: DateTime<Utc>,
    groups: Option<&dyn super::GroupDirectory>,
) -> Result<Option<(i64, usize, u32)>, super::PlanError> {
    let known = store.contacts().await?;
    let members = super::members(campaign, store, groups, now).await?;
    let planned = plan(campaign, &set.templates, &known, &members, now);
    let run = NewRun {
        campaign: campaign.name.clone(),
        fire_at,
        trigger: trigger.as_str().to_owned(),
        skipped: planned.skipped,
    };
    let id = store.start_campaign_run(&run, &planned.jobs, now).await?;
    if let Some(id) = id {
        tracing::info!(campaign = %campaign.name, run = id, recipients = planned.jobs.len(), skipped = planned.skipped, trigger = trigger.as_str(), "campaign run planned");
    }
    Ok(id.map(|id| (id, planned.jobs.len(), planned.skipped)))
}
