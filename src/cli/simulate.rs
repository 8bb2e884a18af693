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
    /// The time the events happen (RFC 3339, e.g. `2026-03-03T14:30:00+01:00`): what `now`
    /// and `today` are, which opening hours apply, when follow-ups fall due. Default now; with
    /// `--steps`, where the virtual clock starts.
    #[arg(long)]
    at: Option<DateTime<Utc>>,
    /// The files are the data of custom event NAME (as posted to `/events/NAME`), not
    /// webhook bodies.
    #[arg(long, value_name = "NAME")]
    event: Option<String>,
    /// Run a file of rule-test steps (`event`, `advance`, `lookups`) on a virtual clock and
    /// show what each does, the follow-ups left waiting and when they fall due.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["events", "event", "json", "explain", "lookups"])]
    steps: Option<PathBuf>,
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
    /// Webhook body files, or with `--event` the event's data (`-` reads standard input).
    #[arg(required_unless_present = "steps")]
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
    if let Some(steps) = &args.steps {
        let runtime = tokio::runtime::Runtime::new()?;
        return match runtime.block_on(crate::ruletest::run_steps(steps, &args.rules, args.at)) {
            Ok(report) => {
                print!("{report}");
                Ok(ExitCode::SUCCESS)
            }
            Err(problem) => {
                eprintln!("{problem}");
                Ok(ExitCode::FAILURE)
            }
        };
    }
    let now = args.at.unwrap_or_else(Utc::now);
    let answers = scripted_answers(&args.lookups)?;
    if !args.json {
        let from = if args.at.is_some() {
            "--at"
        } else {
            "now; give --at to choose"
        };
        println!(
            "at {} ({from})",
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    let mut refused = false;
    // What intake remembers between events, remembered the same way.
    let mut memory = Memory::default();
    let mut reports = Vec::new();
    for path in &args.events {
        let text = read(path)?;
        let body: Value = serde_json::from_str(&text)
            .with_context(|| format!("`{}` is not valid JSON", path.display()))?;
        let events = match &args.event {
            Some(name) => {
                if let Some(declared) = set.declared.get(name) {
                    let problems = declared.problems(&body);
                    if !problems.is_empty() {
                        eprintln!(
                            "{}: `{name}` would be refused at /events/{name} (422): {}",
                            path.display(),
                            problems.join("; ")
                        );
                        refused = true;
                        continue;
                    }
                }
                let id = format!("e{}", reports.len() + 1);
                vec![Event::custom(name, &id, body)]
            }
            None => parse_webhook(WebhookBody {
                body: &body,
                path: "",
                method: "POST",
            }),
        };
        for mut event in events {
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
            let used = go_on(&set, &mut evaluation, &answers, now);
            if args.json {
                reports.push(json_report(&event, &evaluation));
            } else {
                print!("{}", text_report(&event, &evaluation, args.explain));
                for name in &used {
                    if let Some(answer) = answers.get(name) {
                        println!("  lookup `{name}` answered (--lookup): {answer}");
                    }
                }
                print!("{}", follow_ups(&evaluation));
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(if refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The follow-ups an event would leave waiting, soonest first, with when they fall due.
fn follow_ups(evaluation: &Evaluation) -> String {
    let mut due: Vec<(DateTime<Utc>, &str, &str)> = evaluation
        .rules
        .iter()
        .filter_map(|t| match &t.outcome {
            RuleOutcome::Matched { actions, .. } => Some((t.rule.as_str(), actions)),
            _ => None,
        })
        .flat_map(|(rule, actions)| {
            actions
                .iter()
                .filter_map(move |a| a.at.map(|at| (at, rule, a.action)))
        })
        .collect();
    if due.is_empty() {
        return String::new();
    }
    due.sort();
    let mut out = String::from("  follow-ups waiting:\n");
    for (at, rule, action) in due {
        out.push_str(&format!(
            "    {} {action} (rule {rule})\n",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    out
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
/// Returns the names of the answers used.
fn go_on(
    set: &rules::RuleSet,
    evaluation: &mut Evaluation,
    answers: &BTreeMap<String, Value>,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut used = Vec::new();
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
        used.push(call.name.clone());
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
    used
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
                        let source = action
                            .source
                            .as_ref()
                            .map(|s| format!(" ({s})"))
                            .unwrap_or_default();
                        out.push_str(&format!("    {}: FAILED: {err}{source}\n", action.action));
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
