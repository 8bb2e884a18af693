//! `riposte simulate`: webhook bodies from files through the rules, printing the matched rules
//! and the fully rendered actions. Nothing is stored or sent; tags set by one event are seen by
//! the next, as they would be in the server.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::{Value, json};

use crate::engine::{Evaluation, RuleOutcome};
use crate::events::{Event, WebhookBody, parse_webhook};
use crate::intake::Memory;
use crate::rules;
use crate::vocab::{ContactChange, HandoffChange, Payload, Work};

#[derive(Debug, Args)]
pub(super) struct SimulateArgs {
    /// Rules folder or files.
    #[arg(long, env = "RIPOSTE_RULES", default_value = "./rules")]
    rules: Vec<PathBuf>,
    /// The time the events happen (RFC 3339); default now.
    #[arg(long)]
    at: Option<DateTime<Utc>>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also show, for every rule that did not match, the first condition that failed.
    #[arg(long)]
    explain: bool,
    /// What a `lookup:` answers, as `NAME=JSON` or `NAME=@FILE` (repeatable): the actions
    /// after it are shown with that answer. Without it they are shown waiting.
    #[arg(long = "lookup", value_name = "NAME=JSON")]
    lookups: Vec<String>,
    #[command(flatten)]
    channels: super::ChannelsArg,
    /// Webhook body files (`-` reads standard input).
    #[arg(required = true)]
    events: Vec<PathBuf>,
}

pub(super) fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let set = match rules::load(&args.rules) {
        Ok(set) => set,
        Err(diagnostics) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let channels = args.channels.load()?;
    if let Err(problems) = channels.fit(&set) {
        for d in &problems {
            eprintln!("{d}");
        }
        return Ok(ExitCode::FAILURE);
    }
    let now = args.at.unwrap_or_else(Utc::now);
    let answers = scripted_answers(&args.lookups)?;
    // What intake remembers between events, remembered the same way.
    let mut memory = Memory::default();
    let mut reports = Vec::new();
    for path in &args.events {
        let text = read(path)?;
        let body: Value = serde_json::from_str(&text)
            .with_context(|| format!("`{}` is not valid JSON", path.display()))?;
        for mut event in parse_webhook(WebhookBody {
            body: &body,
            path: "",
            method: "POST",
        }) {
            let Some(channel) = channels.route(&event.channel, None) else {
                eprintln!(
                    "{}: event {} came from channel id `{}`, which no configured channel has; no rule would fire",
                    path.display(),
                    event.id,
                    crate::quote::quoted(&event.channel, 64)
                );
                continue;
            };
            event.channel_name.clone_from(&channel.name);
            let mut evaluation = match memory.evaluate(&set, &event, now, args.explain) {
                Ok(evaluated) => evaluated.evaluation,
                Err(_) => {
                    anyhow::bail!("the rules failed on event {} (a bug in Riposte)", event.id)
                }
            };
            go_on(&set, &mut evaluation, &answers, now);
            if args.json {
                reports.push(json_report(&event, &evaluation));
            } else {
                print!("{}", text_report(&event, &evaluation, args.explain));
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// The `--lookup NAME=JSON` answers, by name.
fn scripted_answers(given: &[String]) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut answers = BTreeMap::new();
    for pair in given {
        let Some((name, value)) = pair.split_once('=') else {
            anyhow::bail!("--lookup `{pair}`: write NAME=JSON (or NAME=@FILE)");
        };
        let text = match value.strip_prefix('@') {
            Some(file) => read(&PathBuf::from(file))?,
            None => value.to_owned(),
        };
        let answer: Value = serde_json::from_str(&text)
            .with_context(|| format!("--lookup {name}: the answer is not JSON"))?;
        answers.insert(name.trim().to_owned(), answer);
    }
    Ok(answers)
}

/// Goes on with each rule whose lookup has a scripted answer, as the server would once it
/// answered: the actions that waited are replaced by what they did (lookups after lookups
/// too).
fn go_on(
    set: &rules::RuleSet,
    evaluation: &mut Evaluation,
    answers: &BTreeMap<String, Value>,
    now: DateTime<Utc>,
) {
    let mut pending: Vec<_> = evaluation
        .planned
        .iter()
        .filter_map(|p| match &p.work {
            Work::Lookup(call) => Some((**call).clone()),
            _ => None,
        })
        .collect();
    let mut contact = evaluation.contact.clone();
    while let Some(call) = pending.pop() {
        let Some(answer) = answers.get(&call.name) else {
            continue;
        };
        let Ok(then) = crate::engine::resume(set, &call, Ok(answer.clone()), &contact, now) else {
            continue;
        };
        contact = then.contact.clone();
        pending.extend(then.planned.iter().filter_map(|p| match &p.work {
            Work::Lookup(next) => Some((**next).clone()),
            _ => None,
        }));
        let Some(RuleOutcome::Matched { actions: more, .. }) =
            then.rules.into_iter().next().map(|t| t.outcome)
        else {
            continue;
        };
        let trace = evaluation.rules.iter_mut().find(|t| t.rule == call.rule);
        if let Some(RuleOutcome::Matched { actions, .. }) = trace.map(|t| &mut t.outcome) {
            let waited = actions
                .iter()
                .position(|a| a.waits_for.is_some())
                .unwrap_or(actions.len());
            actions.truncate(waited);
            actions.extend(more);
        }
        evaluation.planned.extend(then.planned);
    }
    evaluation.contact = contact;
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read `{}`", path.display()))
}

fn json_report(event: &Event, evaluation: &Evaluation) -> Value {
    json!({
        "event": {
            "kind": event.kind.to_string(),
            "id": event.id,
            "chat": event.chat.as_ref().map(|c| c.id.as_str()),
            "sender": event.sender.as_ref().map(|s| s.phone.as_str()),
            "text": event.text,
        },
        "rules": evaluation.rules,
    })
}

/// One event as people read it: a headline, then one line per rule and per action.
pub(crate) fn text_report(event: &Event, evaluation: &Evaluation, explain: bool) -> String {
    let mut out = format!("event {} {}", event.kind, event.id);
    if let Some(sender) = &event.sender {
        out.push_str(&format!(" from {}", sender.phone));
    }
    if let Some(chat) = &event.chat {
        out.push_str(&format!(" in {}", chat.id));
    }
    if let Some(text) = &event.text {
        out.push_str(&format!(": {text:?}"));
    }
    out.push('\n');
    let mut matched = 0;
    for trace in &evaluation.rules {
        match &trace.outcome {
            RuleOutcome::Matched { shadow, actions } => {
                matched += 1;
                let note = if *shadow {
                    " (shadow: recorded, not sent)"
                } else {
                    ""
                };
                out.push_str(&format!("  matched {}{note}\n", trace.rule));
                for action in actions {
                    if let Some(err) = &action.error {
                        out.push_str(&format!("    {}: FAILED: {err}\n", action.action));
                    }
                    if let Some(skipped) = &action.skipped {
                        out.push_str(&format!("    {}: skipped: {skipped}\n", action.action));
                    }
                    if let Some(waits) = &action.waits_for {
                        out.push_str(&format!(
                            "    {}: {waits} (give --lookup NAME=JSON to see it)\n",
                            action.action
                        ));
                    }
                    let when = match (&action.at, &action.key) {
                        (Some(at), Some(key)) => format!(" (follow-up at {at}, key {key:?})"),
                        (Some(at), None) => format!(" (follow-up at {at})"),
                        _ => String::new(),
                    };
                    for effect in &action.effects {
                        out.push_str(&format!(
                            "    {}: {}{when}\n",
                            action.action,
                            describe(effect)
                        ));
                    }
                }
            }
            RuleOutcome::Failed { condition, detail } if explain => {
                out.push_str(&format!(
                    "  skipped {}: {condition}: {detail}\n",
                    trace.rule
                ));
            }
            RuleOutcome::Held { reason } => {
                out.push_str(&format!("  held {}: {reason}\n", trace.rule))
            }
            RuleOutcome::Disabled if explain => {
                out.push_str(&format!("  skipped {}: disabled\n", trace.rule))
            }
            RuleOutcome::Stopped { by } if explain => {
                out.push_str(&format!(
                    "  skipped {}: `{by}` matched first and has `stop: true`\n",
                    trace.rule
                ));
            }
            _ => {}
        }
    }
    if matched == 0 {
        out.push_str("  no rule matched\n");
    }
    out
}

/// One effect as a line for people: the call made, or the change.
pub(super) fn describe(effect: &Work) -> String {
    match effect {
        Work::Call(request) => {
            let body = match &request.body {
                Some(Payload::Json(v)) => format!(" {v}"),
                Some(Payload::Text(t)) => format!(" {t:?}"),
                None => String::new(),
            };
            format!("{} {}{body}", request.method, request.path)
        }
        Work::Contact(ContactChange::Tag { phone, tag }) => format!("tag {phone} +{tag}"),
        Work::Contact(ContactChange::Untag { phone, tag }) => format!("untag {phone} -{tag}"),
        Work::Contact(ContactChange::Set { phone, key, value }) => {
            format!("set {phone} {key}={value:?}")
        }
        Work::Cancel { key } => format!("cancel follow-ups with key {key:?}"),
        Work::Handoff(HandoffChange::Start { chat, until, .. }) => {
            format!("hand {chat} to a human until {until}")
        }
        Work::Handoff(HandoffChange::End { chat }) => format!("hand {chat} back to the bot"),
        Work::Lookup(call) => format!(
            "look up `{}`: {} {}; the rule's later actions run with its answer",
            call.name, call.request.method, call.request.path
        ),
        Work::Ai(call) => {
            let shadow = if call.shadow {
                " (shadow: not sent)"
            } else {
                ""
            };
            format!(
                "ask the model ({} turns of history) and answer in {}{shadow}",
                call.history, call.chat
            )
        }
    }
}
