//! Rule tests: `*.test.yaml` files feed events to the rules, move a virtual clock, and state
//! the actions expected, so a follow-up two days later is checked in milliseconds.
//!
//! The runner uses the real pieces (a scratch database, intake, the delivery worker's job
//! handling, the campaign scheduler) with a manual clock and no network: what a test shows is
//! what the server does.

mod expect;
mod shorthand;
mod simulate;
mod spec;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

pub use expect::Done;
pub use simulate::run_steps;
pub use spec::{StepsFile, TestCase, TestFile};

use crate::ai::Assistant;
use crate::ai::model::{Scripted, ScriptedModel};
use crate::campaigns::{GroupDirectory, Member};
use crate::channels::Channels;
use crate::clock::{Clock, ManualClock};
use crate::config::{Located, SourceFile};
use crate::delivery::{BreakerPolicy, Delivery, RetryPolicy, ScriptedLookups};
use crate::intake::Intake;
use crate::rules::{self, Diagnostic, RuleSet};
use crate::scheduler::Scheduler;
use crate::store::{Op, Source, SqliteStore, Store};
use crate::vocab::{ContactChange, JobKind, Work};
use crate::whapi::Client;
use crate::workers::{Parts, Workers};

/// The result of one test case.
#[derive(Debug, Clone)]
pub struct CaseReport {
    pub file: PathBuf,
    pub line: u32,
    pub name: String,
    /// `None` when the case passed.
    pub failure: Option<String>,
}

/// The default start of the virtual clock: a Monday morning.
const DEFAULT_START: &str = "2026-01-05T09:00:00Z";

/// Every `*.test.yaml` under the given files or folders, in path order.
pub fn find(paths: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(path: &Path, out: &mut Vec<PathBuf>) {
        if path.is_file() {
            out.push(path.to_owned());
        } else if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                let p = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || name == "target" {
                    continue;
                }
                if p.is_dir() {
                    walk(&p, out);
                } else if name.ends_with(".test.yaml") || name.ends_with(".test.yml") {
                    out.push(p);
                }
            }
        }
    }
    let mut out = Vec::new();
    for path in paths {
        walk(path, &mut out);
    }
    out.sort();
    out
}

/// Runs the cases of `files`, giving each result as the line `riposte test` prints (`ok …`,
/// `FAIL …` with the failure under it), and the last line with the counts; how many cases
/// passed and failed (a file that does not parse counts as one failure).
pub async fn run_files(files: &[PathBuf], mut line: impl FnMut(&str)) -> (usize, usize) {
    let (mut passed, mut failed) = (0, 0);
    for file in files {
        match run_file(file).await {
            Err(diagnostic) => {
                failed += 1;
                line(&format!("FAIL {diagnostic}"));
            }
            Ok(reports) => {
                for report in reports {
                    let place =
                        format!("{}:{}: {}", report.file.display(), report.line, report.name);
                    match report.failure {
                        None => {
                            passed += 1;
                            line(&format!("ok   {place}"));
                        }
                        Some(failure) => {
                            failed += 1;
                            line(&format!("FAIL {place}\n  {failure}"));
                        }
                    }
                }
            }
        }
    }
    line(&format!("{passed} passed, {failed} failed"));
    (passed, failed)
}

/// Runs every case of a test file. A file that does not parse is a diagnostic.
pub async fn run_file(path: &Path) -> Result<Vec<CaseReport>, Diagnostic> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Diagnostic::error(path, 1, 1, format!("cannot read test file: {e}")))?;
    let source = SourceFile {
        path: path.to_owned(),
        text,
        root: None,
    };
    let file: TestFile = crate::config::parse_yaml(&source)?;
    let mut reports = Vec::new();
    for case in &file.tests {
        let failure = run_case(path, case).await.err();
        reports.push(CaseReport {
            file: path.to_owned(),
            line: case.line,
            name: case.value.name.clone(),
            failure,
        });
    }
    Ok(reports)
}

/// Everything one case runs on.
struct Bench {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    intake: Intake,
    delivery: Delivery,
    scheduler: Scheduler,
    checked: HashMap<String, DateTime<Utc>>,
    done: Arc<Mutex<Vec<Done>>>,
    set: Arc<RuleSet>,
    channels: Arc<Channels>,
    /// What lookups answer, as the steps script it.
    lookups: Arc<ScriptedLookups>,
    /// Actions that failed since the last `expect` (a template missing a value, say), shown
    /// with a failing expectation: they are usually why it failed.
    failed: Vec<String>,
    _dir: tempfile::TempDir,
}

fn at_of(case: &TestCase) -> Result<DateTime<Utc>, String> {
    let text = case.at.as_ref().map_or(DEFAULT_START, |a| a.value.as_str());
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`at: {text}` is not an RFC 3339 time: {e}"))
}

/// A bench for `case`, on the rules it names (relative to `path`), or on `rules` when given.
async fn bench(path: &Path, case: &TestCase, rules: Option<&[PathBuf]>) -> Result<Bench, String> {
    let base = path.parent().unwrap_or(Path::new("."));
    let rule_paths: Vec<PathBuf> = match rules {
        Some(given) => given.to_vec(),
        None if case.rules.is_empty() => vec![base.to_owned()],
        None => case.rules.iter().map(|r| base.join(r)).collect(),
    };
    let listed = |what: &str, d: Vec<Diagnostic>| {
        let lines: Vec<String> = d.iter().map(|d| format!("    {d}")).collect();
        format!("{what}:\n{}", lines.join("\n"))
    };
    let set = rules::load(&rule_paths).map_err(|d| listed("the rules do not compile", d))?;
    let channels = match &case.channels {
        Some(file) => Channels::load(&base.join(file)),
        None => Ok(Channels::single()),
    }
    .and_then(|channels| channels.fit(&set).map(|()| channels))
    .map_err(|d| listed("the channels do not fit", d))?;
    let channels = Arc::new(channels);
    let set = Arc::new(set);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open_scratch(&dir.path().join("test.db"))
            .await
            .map_err(|e| e.to_string())?,
    );
    let clock = Arc::new(ManualClock::new(at_of(case)?));
    let mut seed = Vec::new();
    for c in &case.contacts {
        seed.extend(c.tags.iter().map(|t| {
            Op::Apply(Work::Contact(ContactChange::Tag {
                phone: c.phone.clone(),
                tag: t.clone(),
            }))
        }));
        seed.extend(c.attrs.iter().map(|(k, v)| {
            Op::Apply(Work::Contact(ContactChange::Set {
                phone: c.phone.clone(),
                key: k.clone(),
                value: v.clone(),
            }))
        }));
    }
    store
        .apply(&seed, clock.now())
        .await
        .map_err(|e| e.to_string())?;
    let (_tx, rules_rx) = watch::channel(set.clone());
    let done: Arc<Mutex<Vec<Done>>> = Arc::new(Mutex::new(Vec::new()));
    let record = done.clone();
    let observer: crate::delivery::Observer = Arc::new(move |job| {
        // Immediate actions were recorded when their event was processed; asking WhatsApp
        // for a member's name is Riposte's own, not a rule's action.
        if job.kind != JobKind::Action && job.action != crate::intake::LEARN_NAME {
            record
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(Done::from_work(&job.action, &job.work));
        }
    });
    let no_tokens = channels.names().into_iter().map(|n| (n, None)).collect();
    let client = Client::for_channels(
        "http://riposte.test",
        no_tokens,
        true,
        std::time::Duration::from_secs(1),
    )
    .map_err(|e| e.to_string())?;
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let lookups = Arc::new(ScriptedLookups::default());
    let script = case
        .model
        .iter()
        .map(|answer| match answer {
            spec::ModelAnswerSpec::Reply(text) => Scripted::Reply(text.clone()),
            spec::ModelAnswerSpec::Handoff { handoff } => Scripted::Handoff(handoff.clone()),
            spec::ModelAnswerSpec::Fail { fail } => Scripted::Fail(fail.clone()),
        })
        .collect();
    let assistant = Arc::new(Assistant::new(Arc::new(ScriptedModel::new(script)), None));
    // The same workers as the server's, driven step by step on the virtual clock.
    let workers = Workers::new(Parts {
        store: store.clone(),
        rules: rules_rx,
        clock: dyn_clock,
        client,
        assistant,
        retry: RetryPolicy::default(),
        breaker: BreakerPolicy::default(),
        whapi_rate: None,
        channels: channels.clone(),
        concurrency: 1,
        max_event_age: None,
        hand_over: None,
        observer: Some(observer),
        lookups: Some(lookups.clone()),
    });
    let mut scheduler = workers.scheduler;
    let groups: BTreeMap<String, Vec<Member>> = case
        .groups
        .iter()
        .map(|(group, members)| {
            let members = members
                .iter()
                .map(|m| Member {
                    phone: crate::events::bare_phone(&m.phone),
                    admin: m.admin,
                })
                .collect();
            (group.clone(), members)
        })
        .collect();
    scheduler.groups = Some(Arc::new(ScriptedGroups(groups)));
    Ok(Bench {
        intake: workers.intake,
        delivery: workers.delivery,
        scheduler,
        store,
        clock,
        checked: HashMap::new(),
        done,
        set,
        channels,
        lookups,
        failed: Vec::new(),
        _dir: dir,
    })
}

impl Bench {
    async fn settle(&mut self) -> Result<(), String> {
        self.scheduler.tick_all(&mut self.checked).await;
        self.delivery.drain().await.map_err(|e| e.to_string())
    }

    async fn feed(
        &mut self,
        path: &Path,
        event: &Located<spec::EventSpec>,
        n: u64,
    ) -> Result<(), String> {
        let base = path.parent().unwrap_or(Path::new("."));
        let read = |file: &str| -> Result<serde_json::Value, String> {
            let p = base.join(file);
            let text = std::fs::read_to_string(&p)
                .map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("`{}` is not JSON: {e}", p.display()))
        };
        let (source, body) = match shorthand::feed(&event.value, n, read)? {
            shorthand::Feed::Webhook(mut body) => {
                self.point_at_last_sent(&event.value, &mut body).await?;
                (
                    Source::Webhook {
                        path: self.channel_of(event.value.channel.as_deref(), &mut body)?,
                        method: "POST".into(),
                    },
                    body,
                )
            }
            shorthand::Feed::Custom { name, data } => {
                if let Some(declared) = self.set.declared.get(&name) {
                    let problems = declared.problems(&data);
                    if !problems.is_empty() {
                        return Err(format!(
                            "`{name}` does not fit its declaration and would be refused at \
                             /events/{name} (422): {}",
                            problems.join("; ")
                        ));
                    }
                }
                (Source::Custom { name }, data)
            }
        };
        self.store
            .accept(source, &body.to_string(), self.clock.now())
            .await
            .map_err(|e| e.to_string())?;
        let outcomes = self
            .intake
            .process_pending()
            .await
            .map_err(|e| e.to_string())?;
        for record in outcomes.iter().flat_map(|o| &o.records) {
            if let Ok(record) = serde_json::from_str::<serde_json::Value>(record) {
                failed_actions(&record, None, &mut self.failed);
            }
        }
        let mut now_done = Vec::new();
        for op in outcomes.iter().flat_map(|o| &o.ops) {
            let work = match op {
                // A model's answer is recorded when the model gives it.
                Op::Job(job) if job.kind == JobKind::Action && !matches!(job.work, Work::Ai(_)) => {
                    Some((job.action.as_str(), job.work.clone()))
                }
                Op::Apply(work @ Work::Contact(_)) => Some(("contact", work.clone())),
                Op::Apply(work @ Work::Cancel { .. }) => Some(("cancel", work.clone())),
                Op::Apply(work @ Work::Handoff(_)) => Some(("handoff", work.clone())),
                _ => None,
            };
            if let Some((action, work)) = work {
                Done::push_merged(&mut now_done, Done::from_work(action, &work));
            }
        }
        self.done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(now_done);
        self.settle().await
    }

    /// A `status` without an id is about the last message Riposte sent to its recipient, and a
    /// `vote` about the last poll sent to its voter: their ids are filled in from the jobs run.
    async fn point_at_last_sent(
        &self,
        spec: &spec::EventSpec,
        body: &mut serde_json::Value,
    ) -> Result<(), String> {
        let (to, poll, slot) = match (&spec.status, &spec.vote) {
            (Some(s), _) if s.id.is_none() => (&s.to, false, "/statuses/0/id"),
            (_, Some(v)) => (&v.from, true, "/messages/0/action/target"),
            _ => return Ok(()),
        };
        let chat = crate::vocab::ChatId::new(to.as_str()).memory_key();
        let query = crate::store::JobQuery {
            status: Some(crate::vocab::JobStatus::Done),
            limit: 1000,
            ..crate::store::JobQuery::default()
        };
        let jobs = self.store.jobs(query).await.map_err(|e| e.to_string())?;
        let found = jobs.iter().find_map(|job| {
            let Work::Call(request) = &job.work else {
                return None;
            };
            let Some(crate::vocab::Payload::Json(sent)) = &request.body else {
                return None;
            };
            let to = sent.get("to")?.as_str()?;
            let is_poll = request.path == "/messages/poll";
            if crate::vocab::ChatId::new(to).memory_key() != chat || (poll && !is_poll) {
                return None;
            }
            let answer: serde_json::Value = serde_json::from_str(job.response.as_deref()?).ok()?;
            Some(answer.pointer("/message/id")?.as_str()?.to_owned())
        });
        let what = if poll { "poll" } else { "message" };
        let id = found.ok_or_else(|| {
            format!("no {what} was sent to {to} yet in this case, so the event has nothing to be about; give its `id`")
        })?;
        if let Some(slot) = body.pointer_mut(slot) {
            *slot = serde_json::Value::String(id);
        }
        Ok(())
    }

    /// The webhook path of an event that comes in on `channel`, with the body's `channel_id`
    /// made that channel's.
    fn channel_of(
        &self,
        channel: Option<&str>,
        body: &mut serde_json::Value,
    ) -> Result<String, String> {
        let Some(name) = channel else {
            return Ok(String::new());
        };
        let Some(found) = self.channels.named(name) else {
            let hint = self
                .channels
                .suggest(name)
                .map(|b| format!(", did you mean `{b}`?"))
                .unwrap_or_else(|| format!(" (channels: {})", self.channels.names().join(", ")));
            return Err(format!("unknown channel `{name}`{hint}"));
        };
        if let (Some(id), Some(obj)) = (&found.id, body.as_object_mut()) {
            obj.insert("channel_id".into(), serde_json::Value::String(id.clone()));
        }
        Ok(found.name.clone())
    }

    /// Moves the clock to `target`, stopping at every due job and campaign fire time on the
    /// way so they happen in order and at their time.
    async fn advance(&mut self, target: DateTime<Utc>) -> Result<(), String> {
        loop {
            let now = self.clock.now();
            let job = self.store.next_job_due().await.map_err(|e| e.to_string())?;
            let fire = self
                .set
                .campaigns
                .iter()
                .filter(|c| c.enabled)
                .filter_map(|c| c.next_fires(now, 1).first().map(|t| t.with_timezone(&Utc)))
                .min();
            let next = [job, fire].into_iter().flatten().filter(|t| *t > now).min();
            match next {
                Some(t) if t <= target => {
                    self.clock.set(t);
                    self.settle().await?;
                }
                _ => break,
            }
        }
        self.clock.set(target);
        self.settle().await
    }
}

async fn run_case(path: &Path, case: &Located<TestCase>) -> Result<(), String> {
    let mut bench = bench(path, &case.value, None).await?;
    bench.settle().await?;
    for (i, step) in case.value.steps.iter().enumerate() {
        let where_ = format!("step {} ({}:{})", i + 1, path.display(), step.line);
        let s = &step.value;
        let given = [s.event.is_some(), s.advance.is_some(), s.expect.is_some()]
            .iter()
            .filter(|g| **g)
            .count();
        let scripts = s.lookups.is_some() || s.failing_lookups.is_some();
        if given > 1
            || (given == 0 && !scripts)
            || (scripts && (s.advance.is_some() || s.expect.is_some()))
        {
            return Err(format!(
                "{where_}: a step is one of `event`, `advance` or `expect` (`lookups` and `failing_lookups` go alone or beside an `event`)"
            ));
        }
        for (name, answer) in s.lookups.iter().flatten() {
            bench.lookups.set(name, Ok(answer.clone()));
        }
        for (name, error) in s.failing_lookups.iter().flatten() {
            bench.lookups.set(name, Err(error.clone()));
        }
        if let Some(event) = &s.event {
            bench
                .feed(path, event, i as u64 + 1)
                .await
                .map_err(|e| format!("{where_}: {e}"))?;
        } else if let Some(by) = &s.advance {
            let by = crate::duration::parse(&by.value).map_err(|e| format!("{where_}: {e}"))?;
            let target = bench.clock.now() + chrono::Duration::from_std(by).unwrap_or_default();
            bench
                .advance(target)
                .await
                .map_err(|e| format!("{where_}: {e}"))?;
        } else if let Some(expected) = &s.expect {
            let done: Vec<Done> = std::mem::take(
                &mut *bench
                    .done
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            let failed = std::mem::take(&mut bench.failed);
            expect::compare(&expected.value, &done, s.ignore_extra).map_err(|e| {
                let mut report = format!("{where_}: {e}");
                if !failed.is_empty() {
                    report.push_str("    failed:\n");
                    for f in &failed {
                        report.push_str(&format!("      - {f}\n"));
                    }
                }
                report
            })?;
        }
    }
    Ok(())
}

/// The errors of the actions an event record holds (`{"action", "error", "source"}`, under
/// their rule's `{"rule"}`), with the action, the rule and where it is written.
fn failed_actions(record: &serde_json::Value, rule: Option<&str>, out: &mut Vec<String>) {
    match record {
        serde_json::Value::Object(map) => {
            let rule = map.get("rule").and_then(|r| r.as_str()).or(rule);
            if let (
                Some(serde_json::Value::String(action)),
                Some(serde_json::Value::String(error)),
            ) = (map.get("action"), map.get("error"))
            {
                let source = map.get("source").and_then(|s| s.as_str()).unwrap_or("?");
                out.push(format!(
                    "{error} (in `{action}` of rule `{}`, {source})",
                    rule.unwrap_or("?")
                ));
            }
            map.values().for_each(|v| failed_actions(v, rule, out));
        }
        serde_json::Value::Array(items) => {
            items.iter().for_each(|v| failed_actions(v, rule, out));
        }
        _ => {}
    }
}

/// The members a case lists for each group, instead of asking Whapi.Cloud.
struct ScriptedGroups(BTreeMap<String, Vec<Member>>);

#[async_trait::async_trait]
impl GroupDirectory for ScriptedGroups {
    async fn members(&self, group: &str, _channel: Option<&str>) -> Result<Vec<Member>, String> {
        self.0
            .get(group)
            .cloned()
            .ok_or_else(|| format!("the test case lists no members of {group} under `groups:`"))
    }
}
