//! Lint: rules that load but probably do not do what their author meant. Reported as
//! `warning:` lines by `riposte check` (`--deny-warnings` fails on them).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};

use super::condition::{Block, Condition};
use super::reply_id::{self, ReplyId, SentIds, Token};
use super::{Diagnostic, Rule, RuleSet, Severity, did_you_mean};
use crate::actions::{Action, Content, Recipient, Timing};
use crate::events::EventKind;
use crate::templates::Text;

fn warning(rule: &Rule, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Warning,
        ..Diagnostic::error(&rule.file, rule.line, 1, message)
    }
}

/// Kinds whose events carry no text, so `text` and `keywords` can never match them.
fn has_text(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Message
            | EventKind::ButtonReply
            | EventKind::ListReply
            | EventKind::MessageEdited
            | EventKind::Custom(_)
    )
}

/// Visits every condition of a block, nested ones included.
fn walk<'a>(block: &'a Block, f: &mut impl FnMut(&'a Condition)) {
    for c in &block.0 {
        f(c);
        match c {
            Condition::Any(blocks) | Condition::All(blocks) => {
                blocks.iter().for_each(|b| walk(b, f))
            }
            Condition::Not(b) => walk(b, f),
            _ => {}
        }
    }
}

/// Whether a rule matches every event of its kinds (no condition but the implicit `from_me`).
fn matches_all(rule: &Rule) -> bool {
    rule.when
        .0
        .iter()
        .all(|c| matches!(c, Condition::FromMe(false)))
}

fn replies(rule: &Rule) -> bool {
    rule.actions.iter().any(|s| {
        matches!(s.timing, Timing::Now)
            && matches!(
                s.action,
                Action::Message {
                    to: Recipient::EventChat,
                    ..
                }
            )
    })
}

fn overlap(a: &Rule, b: &Rule) -> Option<EventKind> {
    a.events.iter().find(|k| b.events.contains(k)).cloned()
}

/// Every warning for a compiled set. `now` anchors "fires in the next year".
pub fn lint(set: &RuleSet, now: DateTime<Utc>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let live: Vec<&Rule> = set
        .rules
        .iter()
        .map(|r| &**r)
        .filter(|r| r.enabled)
        .collect();
    // Two rules can only clash when one matches everything or both have the same conditions,
    // so each rule meets only those earlier rules, not every one (10,000 rules are a few
    // thousand comparisons, not fifty million).
    let keys: Vec<String> = live.iter().map(|r| format!("{:?}", r.when)).collect();
    let mut same: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut catch_all: Vec<usize> = Vec::new();
    for (i, later) in live.iter().enumerate() {
        let mut candidates: Vec<usize> = if matches_all(later) {
            (0..i).collect()
        } else {
            let mut c = catch_all.clone();
            c.extend(same.get(keys[i].as_str()).into_iter().flatten());
            c.sort_unstable();
            c
        };
        candidates.dedup();
        same.entry(keys[i].as_str()).or_default().push(i);
        if matches_all(later) {
            catch_all.push(i);
        }
        for j in candidates {
            let earlier = live[j];
            let Some(kind) = overlap(earlier, later) else {
                continue;
            };
            let same_when = keys[j] == keys[i];
            if earlier.stop
                && !earlier.shadow
                && (matches_all(earlier) || same_when)
                && later.events.iter().all(|k| earlier.events.contains(k))
            {
                let why = if same_when {
                    "has the same conditions"
                } else {
                    "matches every such event"
                };
                out.push(warning(
                    later,
                    format!(
                        "rule `{}` never fires: `{}` (line {}) {why} and has `stop: true`",
                        later.name, earlier.name, earlier.line
                    ),
                ));
            } else if !earlier.stop
                && replies(earlier)
                && replies(later)
                && (matches_all(later) || same_when)
            {
                out.push(warning(later, format!(
                    "rule `{}` and `{}` (line {}) both reply to the same {kind} event; add `stop: true` to `{}` if one answer is enough",
                    later.name, earlier.name, earlier.line, earlier.name
                )));
            }
        }
    }
    for rule in &live {
        let mut text_conditions = Vec::new();
        walk(&rule.when, &mut |c| {
            if matches!(c, Condition::Text { .. } | Condition::Keywords(_)) {
                text_conditions.push(if matches!(c, Condition::Text { .. }) {
                    "text"
                } else {
                    "keywords"
                });
            }
        });
        if let Some(condition) = text_conditions.first()
            && let Some(kind) = rule.events.iter().find(|k| !has_text(k))
            && rule.events.iter().all(|k| !has_text(k))
        {
            out.push(warning(
                rule,
                format!(
                    "`{condition}` can never match in rule `{}`: {kind} events have no text",
                    rule.name
                ),
            ));
        }
        if rule.uses.contains("data")
            && !rule
                .events
                .iter()
                .any(|k| matches!(k, EventKind::Custom(_)))
        {
            out.push(warning(
                rule,
                format!(
                    "rule `{}` uses `data`, which only custom events have; its events are {}",
                    rule.name,
                    names(&rule.events)
                ),
            ));
        }
        if rule.uses.contains("message") && !rule.events.iter().any(EventKind::is_message_family) {
            out.push(warning(
                rule,
                format!(
                    "rule `{}` uses `message`, which {} events do not have; use `item`",
                    rule.name,
                    names(&rule.events)
                ),
            ));
        }
    }
    out.extend(unset_tags(set));
    out.extend(undeclared_events(set));
    out.extend(unsent_reply_ids(set, &live));
    for rule in &live {
        for step in &rule.actions {
            if let Action::AiReply(ai) = &step.action
                && ai.fallback.is_none()
                && !ai.shadow
            {
                out.push(warning(
                    rule,
                    format!(
                        "`ai_reply` in rule `{}` has no `fallback`: when the model fails or times out the contact gets no answer",
                        rule.name
                    ),
                ));
            }
        }
    }
    for c in set.campaigns.iter().filter(|c| c.enabled) {
        if c.next_fires(now, 1)
            .first()
            .is_none_or(|t| t.with_timezone(&Utc) > now + Duration::days(366))
        {
            out.push(Diagnostic {
                severity: Severity::Warning,
                ..Diagnostic::error(
                    &c.file,
                    c.line,
                    1,
                    format!(
                        "campaign `{}` does not fire in the next year (`{}`)",
                        c.name, c.schedule
                    ),
                )
            });
        }
    }
    out.sort_by(|a, b| {
        (&a.file, a.line, a.column, &a.message).cmp(&(&b.file, b.line, b.column, &b.message))
    });
    out.dedup();
    out
}

/// A custom event a rule listens to that is not declared while one with a name close to it
/// is: most likely a typo, and the rule would never see the declared event.
fn undeclared_events(set: &RuleSet) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for rule in &set.rules {
        for kind in &rule.events {
            let EventKind::Custom(name) = kind else {
                continue;
            };
            if set.declared.contains_key(name) {
                continue;
            }
            let declared = set.declared.keys().map(String::as_str);
            if let Some(close) = super::did_you_mean(name, declared) {
                out.push(warning(
                    rule,
                    format!(
                        "rule `{}` listens to `custom:{name}`, which is not declared under \
                         `events:`; did you mean `custom:{close}`?",
                        rule.name
                    ),
                ));
            }
        }
    }
    out
}

fn names(kinds: &[EventKind]) -> String {
    kinds
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Button and list row ids a message can send, each as written.
fn sent_ids<'a>(content: &'a Content, out: &mut Vec<&'a Text>) {
    match content {
        Content::Buttons(b) => out.extend(b.buttons.iter().map(|(id, _)| id)),
        Content::List(l) => out.extend(l.sections.iter().flat_map(|s| &s.rows).map(|r| &r.0)),
        _ => {}
    }
}

fn sent_ids_of<'a>(action: &'a Action, out: &mut Vec<&'a Text>) {
    match action {
        Action::Message { content, .. } => sent_ids(content, out),
        Action::Handoff {
            notify: Some(notify),
            ..
        } => sent_ids_of(notify, out),
        _ => {}
    }
}

/// How many sent ids a warning lists.
const IDS_SHOWN: usize = 5;

/// `reply_id` entries that no button or list row of any rule or campaign (switched off ones
/// too) can send. A templated id may send anything with its fixed start and end, and a
/// regex too large to check against one is taken to match, so the warning never fires on an
/// id that can come.
fn unsent_reply_ids(set: &RuleSet, live: &[&Rule]) -> Vec<Diagnostic> {
    let mut texts = Vec::new();
    for rule in &set.rules {
        rule.actions
            .iter()
            .for_each(|s| sent_ids_of(&s.action, &mut texts));
    }
    for campaign in &set.campaigns {
        if let Some(content) = &campaign.content {
            sent_ids(content, &mut texts);
        }
        campaign
            .then
            .iter()
            .for_each(|s| sent_ids_of(&s.action, &mut texts));
    }
    // As written, in the order first sent (what the warning shows), and as the ids they send.
    let mut shown: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    let mut sent = SentIds::default();
    for text in texts {
        let written: String = match text {
            Text::Literal(id) => id.trim().to_owned(),
            Text::Template(name) => match set.templates.source(name) {
                Some(source) => source.to_string(),
                // Unknown, so it could be anything.
                None => "{{ … }}".to_owned(),
            },
        };
        if seen.insert(written.clone()) {
            sent.add(&written);
            shown.push(written);
        }
    }
    // Templated ids are offered in the form a glob would take, `cancel-*`.
    let shapes: Vec<String> = shown
        .iter()
        .map(|written| {
            reply_id::sent_tokens(written)
                .iter()
                .map(|t| match t {
                    Token::Char(c) => *c,
                    Token::One => '?',
                    Token::Run => '*',
                })
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    for rule in live {
        walk(&rule.when, &mut |c| {
            let Condition::ReplyId(ids) = c else { return };
            for id in ids {
                if id.pattern.may_match(&sent) {
                    continue;
                }
                // Each suggestion compares with every sent id; a set with more misses than
                // this is wired wrong as a whole, and the list of sent ids says enough.
                let suggest = out.len() < SUGGESTIONS;
                let message = unsent(rule, id, &shown, suggest.then_some(&shapes[..]));
                out.push(Diagnostic {
                    severity: Severity::Warning,
                    ..Diagnostic::error(&rule.file, id.line, id.column, message)
                });
            }
        });
    }
    out
}

/// How many unsent `reply_id` warnings get a did-you-mean.
const SUGGESTIONS: usize = 50;

fn unsent(rule: &Rule, id: &ReplyId, sent: &[String], shapes: Option<&[String]>) -> String {
    let head = format!(
        "`reply_id: {}` in rule `{}` matches no button or list row id that a rule or campaign sends",
        id.written, rule.name
    );
    if sent.is_empty() {
        return format!("{head}: none sends buttons or a list (fine if another system sends them)");
    }
    let guess = reply_id::regex_source(&id.written).unwrap_or(&id.written);
    let length = guess.chars().count();
    // Too different in length to be a typo of it (did_you_mean allows about a third).
    let near = |shape: &&String| shape.chars().count().abs_diff(length) <= length / 3 + 2;
    let hint = shapes
        .and_then(|shapes| did_you_mean(guess, shapes.iter().filter(near).map(String::as_str)))
        .map(|b| format!(", did you mean `{b}`?"))
        .unwrap_or_default();
    let mut listed: Vec<String> = sent
        .iter()
        .take(IDS_SHOWN)
        .map(|written| format!("`{written}`"))
        .collect();
    if sent.len() > IDS_SHOWN {
        listed.push(format!("{} more", sent.len() - IDS_SHOWN));
    }
    format!(
        "{head}{hint} (sent: {}; fine if another system sends it)",
        listed.join(", ")
    )
}

/// Tags that conditions or audiences test but that no rule ever sets.
fn unset_tags(set: &RuleSet) -> Vec<Diagnostic> {
    let mut set_somewhere: BTreeSet<&str> = BTreeSet::new();
    let mut tested: BTreeMap<&str, &Rule> = BTreeMap::new();
    for rule in &set.rules {
        for step in &rule.actions {
            if let Action::Tag(tags) = &step.action {
                set_somewhere.extend(tags.iter().map(String::as_str));
            }
            if let Some(unless) = &step.unless {
                for t in unless
                    .all_tags
                    .iter()
                    .chain(&unless.any_tags)
                    .chain(&unless.no_tags)
                {
                    tested.entry(t).or_insert(rule);
                }
            }
        }
        walk(&rule.when, &mut |c| {
            if let Condition::Tags { all, any, none } = c {
                for t in all.iter().chain(any).chain(none) {
                    tested.entry(t).or_insert(rule);
                }
            }
        });
    }
    tested
        .into_iter()
        .filter(|(tag, _)| !set_somewhere.contains(tag))
        .map(|(tag, rule)| {
            warning(rule, format!("rule `{}` tests tag `{tag}`, which no rule sets (fine if contacts get it from `riposte contacts import`)", rule.name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceFile;

    fn warnings(yaml: &str) -> Vec<String> {
        let file = SourceFile {
            path: "rules.yaml".into(),
            text: yaml.to_owned(),
            root: None,
        };
        let set = crate::rules::compile(&[file]).expect("rules compile");
        lint(&set, Utc::now())
            .into_iter()
            .map(|d| d.message)
            .collect()
    }

    #[test]
    fn an_ai_reply_without_fallback_is_worth_a_warning() {
        let rules = |extra: &str| {
            format!(
                "rules:\n  - name: ai\n    then:\n      - ai_reply:\n          system: hi\n{extra}"
            )
        };
        assert_eq!(
            warnings(&rules("")),
            [
                "`ai_reply` in rule `ai` has no `fallback`: when the model fails or times out the contact gets no answer"
            ]
        );
        assert!(warnings(&rules("          fallback: Sorry!\n")).is_empty());
    }

    fn warnings_in(files: &[(&str, &str)]) -> Vec<String> {
        let files: Vec<SourceFile> = files
            .iter()
            .map(|(path, text)| SourceFile {
                path: (*path).into(),
                text: (*text).to_owned(),
                root: None,
            })
            .collect();
        let set = crate::rules::compile(&files).expect("rules compile");
        lint(&set, Utc::now())
            .into_iter()
            .map(|d| d.to_string())
            .collect()
    }

    const ASKS: &str = "rules:\n  - name: ask\n    then:\n      - reply:\n          text: When?\n          buttons:\n            - {id: slot-tue-10, title: Tue}\n            - {id: \"cancel-{{ sender.phone }}\", title: Cancel}\n";

    #[test]
    fn a_reply_id_no_rule_sends_is_worth_a_warning_at_its_place() {
        let picks = "rules:\n  - name: pick\n    when:\n      event: button_reply\n      reply_id: [slot-*, slot-tue-10, '/^cancel-\\d+$/', cancel-491*, cancle-*, slto-tue-10]\n    then: [{tag: x}]\n";
        assert_eq!(
            warnings_in(&[("a.yaml", ASKS), ("b.yaml", picks)]),
            [
                "b.yaml:5:70: warning: `reply_id: cancle-*` in rule `pick` matches no button or list row id that a rule or campaign sends, did you mean `cancel-*`? (sent: `slot-tue-10`, `cancel-{{ sender.phone }}`; fine if another system sends it)",
                "b.yaml:5:80: warning: `reply_id: slto-tue-10` in rule `pick` matches no button or list row id that a rule or campaign sends, did you mean `slot-tue-10`? (sent: `slot-tue-10`, `cancel-{{ sender.phone }}`; fine if another system sends it)",
            ]
        );
    }

    #[test]
    fn each_entry_is_placed_even_inside_another() {
        let picks = "rules:\n  - name: pick\n    when: {event: button_reply, reply_id: [book-x, x, '/x/']}\n    then: [{tag: x}]\n";
        let found: Vec<String> = warnings_in(&[("p.yaml", picks)])
            .iter()
            .map(|w| w.split(": warning").next().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(found, ["p.yaml:3:44", "p.yaml:3:52", "p.yaml:3:56"]);
    }

    #[test]
    fn ids_sent_by_campaigns_and_lists_count_and_no_buttons_at_all_is_said() {
        let picks = "rules:\n  - name: pick\n    when: {event: [button_reply, list_reply], reply_id: [deal-*, size-m, '/^x/', '/^deal-\\d+$/']}\n    then: [{tag: x}]\n";
        let campaign = "campaigns:\n  - name: deals\n    schedule: '0 9 * * MON'\n    audience: {tags: {any: [deals]}}\n    send:\n      text: Deals!\n      buttons: [{id: 'deal-{{ contact.phone }}', title: Show me}]\n";
        let list = "rules:\n  - name: sizes\n    when: {keywords: [size]}\n    then:\n      - reply:\n          text: Which size?\n          list:\n            label: Sizes\n            sections: [{title: All, rows: [{id: size-m, title: M}]}]\n";
        let found = warnings_in(&[("c.yaml", campaign), ("l.yaml", list), ("p.yaml", picks)]);
        assert_eq!(
            found,
            [
                "p.yaml:3:75: warning: `reply_id: /^x/` in rule `pick` matches no button or list row id that a rule or campaign sends (sent: `size-m`, `deal-{{ contact.phone }}`; fine if another system sends it)"
            ]
        );
        let alone = warnings_in(&[("p.yaml", picks)]);
        assert_eq!(alone.len(), 4);
        assert!(
            alone[0].ends_with("none sends buttons or a list (fine if another system sends them)"),
            "{alone:?}"
        );
    }

    #[test]
    fn rules_with_the_same_conditions_are_found_among_many() {
        let mut yaml = String::from("rules:\n");
        for i in 0..200 {
            yaml.push_str(&format!(
                "  - name: r{i}\n    when: {{text: 'order {i}'}}\n    then: [{{tag: t{i}}}]\n"
            ));
        }
        yaml.push_str("  - name: first\n    when: {text: '(?i)refund'}\n    then: [{reply: a}]\n    stop: true\n");
        yaml.push_str("  - name: second\n    when: {text: '(?i)refund'}\n    then: [{reply: b}]\n");
        yaml.push_str(
            "  - name: third\n    when: {text: '(?i)refunds?'}\n    then: [{reply: c}]\n",
        );
        assert_eq!(
            warnings(&yaml),
            [
                "rule `second` never fires: `first` (line 602) has the same conditions and has `stop: true`"
            ]
        );
    }
}
