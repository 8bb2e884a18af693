//! Hot reload: the rules folder is watched (the folder, not the files: editors save by rename
//! and Kubernetes swaps a `..data` symlink), changes are debounced, the whole set is read and
//! compiled again, and swapped in only if it compiles. SIGHUP and `POST /admin/reload` take the
//! same path. Events already being processed finish with the set they started with.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::metrics;
use crate::rules::{self, RuleSet};

/// Quiet time after the last change before reloading: one save is often several events.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    pub at: DateTime<Utc>,
    /// `watch`, `signal`, `admin` or `start`.
    pub trigger: String,
    /// `reloaded`, `unchanged` or `rejected`.
    pub result: &'static str,
    pub version: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub millis: u64,
}

/// Reloads rules into the shared rule set and remembers the last result.
pub struct Reloader {
    paths: Vec<PathBuf>,
    zone: chrono_tz::Tz,
    webhook_allow: Vec<rules::Glob>,
    /// The channels served: rules that name another channel are rejected.
    channels: Arc<crate::channels::Channels>,
    rules: watch::Sender<Arc<RuleSet>>,
    last: Mutex<Option<ReloadReport>>,
    /// One reload at a time; a second request waits and then sees the fresh files.
    busy: tokio::sync::Mutex<()>,
}

/// The rules and campaigns `new` adds, removes and changes from `old`, by name, each sorted.
fn differences(old: &RuleSet, new: &RuleSet) -> (Vec<String>, Vec<String>, Vec<String>) {
    use std::cmp::Ordering;
    let (before, after) = (fingerprints(old), fingerprints(new));
    let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    let (mut before, mut after) = (before.iter().peekable(), after.iter().peekable());
    loop {
        let order = match (before.peek(), after.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((b, _)), Some((a, _))) => b.cmp(a),
        };
        match order {
            Ordering::Less => removed.extend(before.next().map(|(name, _)| name.to_string())),
            Ordering::Greater => added.extend(after.next().map(|(name, _)| name.to_string())),
            Ordering::Equal => {
                if let (Some((_, was)), Some((name, is))) = (before.next(), after.next())
                    && was != is
                {
                    changed.push(name.to_string());
                }
            }
        }
    }
    (added, removed, changed)
}

/// What each rule's and campaign's text hashed to, sorted by name. Names are borrowed and
/// kept in a vector: a reload compares sets of thousands of rules while both are in memory.
fn fingerprints(set: &RuleSet) -> Vec<(Cow<'_, str>, u64)> {
    let mut all: Vec<_> = set
        .rules
        .iter()
        .map(|r| (Cow::Borrowed(r.name.as_str()), r.fingerprint))
        .chain(
            set.campaigns
                .iter()
                .map(|c| (Cow::Owned(format!("campaign {}", c.name)), c.fingerprint)),
        )
        .collect();
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    all
}

/// Work for the rules thread.
type RulesWork = Box<dyn FnOnce() + Send>;

/// The thread every rule set is compiled on, started on first use; `None` if it could not be.
static RULES_THREAD: std::sync::LazyLock<Option<std::sync::mpsc::Sender<RulesWork>>> =
    std::sync::LazyLock::new(|| {
        let (tx, rx) = std::sync::mpsc::channel::<RulesWork>();
        std::thread::Builder::new()
            .name("riposte-rules".into())
            .spawn(move || {
                for work in rx {
                    work();
                }
            })
            .ok()
            .map(|_| tx)
    });

/// Runs `work` (a compile) on the one thread that compiles every rule set. The allocator keeps
/// one arena per thread, and memory a compile frees stays with its arena: compiles on whichever
/// thread was free left each reload's garbage in an arena no later compile reused (10,000
/// rules reloaded four times under load: 72 MB at the peak, 66-67 MB on one thread).
pub(crate) async fn on_rules_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: RulesWork = Box::new(move || {
        let _ = tx.send(work());
    });
    match RULES_THREAD.as_ref() {
        Some(thread) => thread
            .send(job)
            .map_err(|_| "the rules thread has stopped".to_owned())?,
        None => tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| e.to_string())?,
    }
    rx.await
        .map_err(|_| "the compile stopped unfinished".to_owned())
}

/// Frees a replaced rule set on a thread of its own, once the events still using it are done:
/// freeing thousands of compiled rules takes long enough (tens of milliseconds and more) to
/// stall the webhooks of the worker that happens to drop the last reference.
fn free_later(set: Arc<RuleSet>) {
    let spawned = std::thread::Builder::new()
        .name("riposte-free-rules".into())
        .spawn(move || {
            let mut set = set;
            loop {
                match Arc::try_unwrap(set) {
                    Ok(unused) => {
                        drop(unused);
                        give_back_freed_memory();
                        return;
                    }
                    Err(in_use) => set = in_use,
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
    if let Err(err) = spawned {
        tracing::warn!("cannot start a thread to free the old rules ({err}); freed in place");
    }
}

/// Hands the pages the freed set leaves unused back to the system. glibc keeps freed memory
/// for reuse, and what a set of 10,000 rules leaves is scattered through the compile thread's
/// arena, so without this each reload's leftovers stay resident until the next one: 10,000
/// rules reloaded every 2 s under load peaked about 1.5 MB higher.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // the one unsafe call in the crate: a libc call that takes no pointers
fn give_back_freed_memory() {
    let started = Instant::now();
    // SAFETY: malloc_trim only walks the allocator's own free lists, under its own locks.
    unsafe {
        libc::malloc_trim(0);
    }
    tracing::debug!(
        micros = started.elapsed().as_micros(),
        "freed memory given back"
    );
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back_freed_memory() {}

impl Reloader {
    /// A reloader for the set currently in `rules`.
    pub fn new(
        paths: Vec<PathBuf>,
        zone: chrono_tz::Tz,
        webhook_allow: Vec<rules::Glob>,
        channels: Arc<crate::channels::Channels>,
        rules: watch::Sender<Arc<RuleSet>>,
    ) -> Self {
        Self {
            paths,
            zone,
            webhook_allow,
            channels,
            rules,
            last: Mutex::new(None),
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// The rule set in use.
    pub fn current(&self) -> Arc<RuleSet> {
        self.rules.borrow().clone()
    }

    /// The result of the last reload, if any.
    pub fn last(&self) -> Option<ReloadReport> {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Reads and compiles the rules again; swaps them in if they compile.
    pub async fn reload(&self, trigger: &str) -> ReloadReport {
        let _one_at_a_time = self.busy.lock().await;
        let started = Instant::now();
        let (paths, zone, allow) = (self.paths.clone(), self.zone, self.webhook_allow.clone());
        let channels = self.channels.clone();
        let old = self.current();
        let previous = old.clone();
        let compiled = on_rules_thread(move || {
            rules::load_after(&paths, zone, &previous).and_then(|mut set| {
                channels.fit(&set)?;
                set.webhook_allow = allow;
                Ok(set)
            })
        })
        .await
        .unwrap_or_else(|e| {
            Err(vec![rules::Diagnostic::error(
                std::path::Path::new("rules"),
                1,
                1,
                format!("reload failed: {e}"),
            )])
        });
        let mut report = ReloadReport {
            at: Utc::now(),
            trigger: trigger.to_owned(),
            result: "rejected",
            version: old.version.clone(),
            errors: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
            millis: 0,
        };
        match compiled {
            Err(diagnostics) => {
                report.errors = diagnostics.iter().map(ToString::to_string).collect();
                metrics::RELOADS_FAILED.inc();
                tracing::error!(
                    "rules not reloaded, the last good set keeps serving:\n{}",
                    report.errors.join("\n")
                );
            }
            Ok(new) if new.version == old.version => report.result = "unchanged",
            Ok(new) => {
                (report.added, report.removed, report.changed) = differences(&old, &new);
                report.version.clone_from(&new.version);
                report.result = "reloaded";
                free_later(self.rules.send_replace(Arc::new(new)));
                metrics::RELOADS_OK.inc();
                tracing::info!(version = %report.version, added = ?report.added, removed = ?report.removed, changed = ?report.changed, "rules reloaded");
            }
        }
        report.millis = started.elapsed().as_millis() as u64;
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(report.clone());
        report
    }

    /// Reloads after each burst of changes in the rules folders (when `files`), and on SIGHUP,
    /// until `shutdown` turns true.
    ///
    /// The watcher and the signal handler are set up before this returns, so a change or a
    /// SIGHUP right after the server answers its first request is not missed (an unhandled
    /// SIGHUP would end the process).
    pub fn watch(
        self: Arc<Self>,
        files: bool,
        mut shutdown: watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = ()> {
        let (tx, mut changes) = mpsc::channel::<()>(1);
        let watcher = match files.then(|| self.start_watcher(tx)) {
            Some(Ok(w)) => Some(w),
            Some(Err(err)) => {
                tracing::warn!(
                    "cannot watch the rules folder ({err}); reload with SIGHUP or POST /admin/reload"
                );
                None
            }
            None => None,
        };
        let mut hangup = hangup_signal();
        async move {
            let _watcher = watcher;
            loop {
                tokio::select! {
                    Some(()) = changes.recv() => { self.reload("watch").await; }
                    Some(()) = recv_signal(&mut hangup) => { self.reload("signal").await; }
                    _ = shutdown.changed() => return,
                }
            }
        }
    }

    fn start_watcher(
        &self,
        tx: mpsc::Sender<()>,
    ) -> notify::Result<
        notify_debouncer_full::Debouncer<
            notify::RecommendedWatcher,
            notify_debouncer_full::RecommendedCache,
        >,
    > {
        use notify::RecursiveMode;
        let mut debouncer = notify_debouncer_full::new_debouncer(
            DEBOUNCE,
            None,
            move |result: notify_debouncer_full::DebounceEventResult| {
                let relevant = match result {
                    // Reads (and closing after a read) change nothing; anything else may.
                    Ok(events) => events
                        .iter()
                        .any(|e| !matches!(e.kind, notify::EventKind::Access(_))),
                    Err(_) => true,
                };
                if relevant {
                    // A full channel means a reload is already queued; that one will see this change.
                    let _ = tx.try_send(());
                }
            },
        )?;
        for path in &self.paths {
            debouncer.watch(path, RecursiveMode::Recursive)?;
        }
        Ok(debouncer)
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {
    None
}

#[cfg(unix)]
async fn recv_signal(signal: &mut Hangup) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn recv_signal(_: &mut Hangup) -> Option<()> {
    std::future::pending().await
}

impl Reloader {
    /// The rule folders and files the set is read from.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Checks the rules as if `text` were saved as the rule file `path`, with the same compile
    /// and channel check as a reload; nothing is written.
    pub async fn check_edit(
        &self,
        path: PathBuf,
        text: String,
    ) -> Result<(), Vec<rules::Diagnostic>> {
        let (paths, zone, channels) = (self.paths.clone(), self.zone, self.channels.clone());
        let failed = |message: String| vec![rules::Diagnostic::error(&path, 1, 1, message)];
        let checked = on_rules_thread({
            let path = path.clone();
            move || {
                let mut files = rules::read_sources(&paths).map_err(|e| {
                    vec![rules::Diagnostic::error(
                        &e.path,
                        1,
                        1,
                        format!("cannot read file: {}", e.source),
                    )]
                })?;
                let Some(file) = files.iter_mut().find(|f| f.path == path) else {
                    return Err(vec![rules::Diagnostic::error(
                        &path,
                        1,
                        1,
                        "not one of the rule files",
                    )]);
                };
                file.text = text;
                let set = rules::compile_in(&files, zone)?;
                channels.fit(&set)
            }
        })
        .await;
        checked.unwrap_or_else(|e| Err(failed(format!("check failed: {e}"))))
    }
}

#[cfg(test)]
mod tests {
    use super::differences;
    use crate::config::SourceFile;

    fn set(rules: &[(&str, &str)]) -> crate::rules::RuleSet {
        let mut text = String::from("rules:\n");
        for (name, reply) in rules {
            text.push_str(&format!(
                "  - name: {name}\n    when: {{text: hi}}\n    then: [{{reply: {reply}}}]\n"
            ));
        }
        let file = SourceFile {
            path: "rules.yaml".into(),
            text,
            root: None,
        };
        crate::rules::compile(&[file]).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn a_reload_reports_what_was_added_removed_and_changed_by_name() {
        let old = set(&[("b", "one"), ("d", "two"), ("a", "three"), ("e", "four")]);
        let new = set(&[
            ("e", "four"),
            ("c", "new"),
            ("a", "three!"),
            ("f", "six"),
            ("d", "two"),
        ]);
        let (added, removed, changed) = differences(&old, &new);
        assert_eq!(added, ["c", "f"]);
        assert_eq!(removed, ["b"]);
        assert_eq!(changed, ["a"]);
        let (added, removed, changed) = differences(&new, &new);
        assert!(added.is_empty() && removed.is_empty() && changed.is_empty());
    }
}
