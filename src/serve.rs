//! `riposte serve`: opens the store, loads the rules, starts the workers and the HTTP server,
//! and shuts all of it down in order.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::ai::Assistant;
use crate::ai::model::{HttpModel, ModelSettings};
use crate::channels::{Channels, Tokens};
use crate::clock::Clock;
use crate::delivery::{BreakerPolicy, RetryPolicy};
use crate::reload::Reloader;
use crate::rules;
use crate::server::{self, AppState, Doors, HttpLimits, Secrets};
use crate::store::{OpenOptions, Store};
use crate::whapi::Client;
use crate::workers::{Parts, Workers};

/// Everything `serve` needs, from flags and environment.
#[derive(Clone)]
pub struct Settings {
    pub listen: String,
    pub rules: Vec<PathBuf>,
    /// The database: a file path, `sqlite:PATH` or `postgres://…`.
    pub db: String,
    /// Who this process is among those sharing the database.
    pub instance: crate::store::Instance,
    pub whapi_url: String,
    /// The WhatsApp numbers served.
    pub channels: Arc<Channels>,
    /// Each channel's token.
    pub tokens: Tokens,
    pub dry_run: bool,
    /// Default zone for schedules and hours.
    pub timezone: chrono_tz::Tz,
    pub webhook_secret: Option<String>,
    /// Hosts (globs such as `*.example.com`) a webhook may call when its URL's host comes
    /// from event data.
    pub webhook_allow: Vec<String>,
    pub events_token: Option<String>,
    pub admin_token: Option<String>,
    pub max_event_age: Option<Duration>,
    /// What one request and one connection may cost, and how many connections there may be.
    pub http: HttpLimits,
    /// Serve a webhook open to the network, without `RIPOSTE_WEBHOOK_SECRET`.
    pub insecure_open_webhook: bool,
    pub call_timeout: Duration,
    pub retry: RetryPolicy,
    /// When calls to Whapi.Cloud pause because it keeps failing.
    pub breaker: BreakerPolicy,
    /// Least time between two calls to Whapi.Cloud; `None` for no pace.
    pub whapi_rate: Option<Duration>,
    pub concurrency: usize,
    /// Where time comes from (the system clock, except in tests).
    pub clock: Arc<dyn Clock>,
    /// Watch the rules folder for changes (SIGHUP and `/admin/reload` work either way).
    pub watch: bool,
    /// What a commit (and so a webhook answered 200) survives.
    pub durability: crate::store::Durability,
    /// The language model `ai_reply` asks.
    pub llm: ModelSettings,
    /// Least time between two model calls (all chats together); `None` for no pace.
    pub llm_rate: Option<Duration>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are shown only as set or not, so settings can be logged safely.
        let set = |s: &Option<String>| if s.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("rules", &self.rules)
            .field("db", &self.db)
            .field("whapi_url", &self.whapi_url)
            .field("channels", &self.channels.names())
            .field("tokens", &self.tokens)
            .field("dry_run", &self.dry_run)
            .field("timezone", &self.timezone)
            .field("webhook_secret", &set(&self.webhook_secret))
            .field("events_token", &set(&self.events_token))
            .field("admin_token", &set(&self.admin_token))
            .field("webhook_allow", &self.webhook_allow)
            .field("http", &self.http)
            .field("insecure_open_webhook", &self.insecure_open_webhook)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("llm", &self.llm)
            .finish_non_exhaustive()
    }
}

/// A running server.
pub struct Running {
    /// The address the HTTP server listens on.
    pub addr: SocketAddr,
    /// Reloads the rules (the watcher, SIGHUP and `/admin/reload` use it too).
    pub reloader: Arc<Reloader>,
    wakes: [Arc<Notify>; 2],
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Makes the workers look for work now (after a test moved its clock forward).
    pub fn wake(&self) {
        for wake in &self.wakes {
            wake.notify_one();
        }
    }

    /// Stops accepting requests, lets the workers finish what they hold, and waits (bounded).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let all = futures_join(self.tasks);
        if tokio::time::timeout(Duration::from_secs(15), all)
            .await
            .is_err()
        {
            tracing::warn!(
                "shutdown took longer than 15s; leftover work is resumed at the next start"
            );
        }
    }
}

async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    for task in tasks {
        let _ = task.await;
    }
}

/// Why `serve` will not start: the settings would leave a door open. Exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(String);

/// Starts the server and its workers; returns once the listener is bound.
pub async fn start(settings: Settings) -> anyhow::Result<Running> {
    let (listener, addr) = server::bind(&settings.listen)
        .await
        .with_context(|| format!("cannot listen on `{}`", settings.listen))?;
    let open_webhook = webhook_door(&settings, addr)?;
    let (paths, zone) = (settings.rules.clone(), settings.timezone);
    let rule_set = crate::reload::on_rules_thread(move || rules::load_in(&paths, zone))
        .await
        .map_err(|e| anyhow::anyhow!("the rules could not be compiled: {e}"))?
        .map_err(|diagnostics| {
            let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("the rules do not compile:\n{}", lines.join("\n"))
        })?;
    if let Err(problems) = settings.channels.fit(&rule_set) {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::bail!("the rules do not fit the channels:\n{}", lines.join("\n"));
    }
    let names = settings.channels.names();
    tracing::info!(rules = rule_set.rules.len(), version = %rule_set.version, channels = ?names, "rules loaded");
    let options = OpenOptions {
        durability: settings.durability,
        instance: settings.instance.clone(),
    };
    let store = crate::store::open(&settings.db, options)
        .await
        .with_context(|| format!("cannot open database `{}`", settings.db))?;
    let released = store.release_claims().await?;
    if released > 0 {
        tracing::warn!(
            "{released} jobs were being sent when Riposte last stopped; they are sent again now"
        );
    }
    let tokens: Vec<(String, Option<String>)> = settings
        .channels
        .list()
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                settings.tokens.of(&c.name).map(str::to_owned),
            )
        })
        .collect();
    let client = Client::for_channels(
        &settings.whapi_url,
        tokens,
        settings.dry_run,
        settings.call_timeout,
    )?;
    warn_dry_run(&settings, &client);
    let allow: Vec<rules::Glob> = settings
        .webhook_allow
        .iter()
        .map(|h| rules::Glob::new(h))
        .collect();
    if rule_set.memory.is_some() && settings.llm.url.is_none() {
        tracing::warn!(
            "rules use ai_reply but RIPOSTE_LLM_URL is not set: every ai_reply falls back"
        );
    }
    let assistant = Arc::new(Assistant::new(
        Arc::new(HttpModel::new(settings.llm.clone(), client.connections())),
        settings.llm_rate,
    ));
    let mut rule_set = rule_set;
    rule_set.webhook_allow.clone_from(&allow);
    let (rules_tx, rules_rx) = watch::channel(Arc::new(rule_set));
    let reloader = Arc::new(Reloader::new(
        settings.rules.clone(),
        settings.timezone,
        allow,
        settings.channels.clone(),
        rules_tx,
    ));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let Workers {
        intake,
        delivery,
        scheduler,
        intake_wake,
        delivery_wake,
    } = Workers::new(Parts {
        store: store.clone(),
        rules: rules_rx.clone(),
        clock: settings.clock.clone(),
        client: client.clone(),
        assistant,
        retry: settings.retry,
        breaker: settings.breaker,
        whapi_rate: settings.whapi_rate,
        channels: settings.channels.clone(),
        concurrency: settings.concurrency,
        max_event_age: settings.max_event_age,
        hand_over: Some(ready_capacity(&settings)),
        observer: None,
        lookups: None,
    });
    let memory_rules = rules_rx.clone();
    let guards = delivery.guards.clone();
    let instances_live = Arc::new(std::sync::atomic::AtomicU32::new(1));
    let state = AppState {
        store: store.clone(),
        rules: rules_rx,
        intake: intake_wake.clone(),
        delivery: delivery_wake.clone(),
        clock: settings.clock.clone(),
        reloader: reloader.clone(),
        secrets: Arc::new(Secrets {
            webhook: settings.webhook_secret.clone(),
            events: settings.events_token.clone(),
            admin: settings.admin_token.clone(),
        }),
        doors: Arc::new(Doors::new(settings.http)),
        channels: settings.channels.clone(),
        instances_live: instances_live.clone(),
        groups: Some(Arc::new(client)),
        console: Arc::default(),
    };
    tracing::info!("listening on http://{addr}");
    let http = tokio::spawn(server::listen::serve(
        listener,
        server::app(state),
        settings.http.connections,
        shutdown_rx.clone(),
    ));
    let mut tasks = vec![
        http,
        tokio::spawn(intake.run(shutdown_rx.clone())),
        tokio::spawn(delivery.run(shutdown_rx.clone())),
        tokio::spawn(scheduler.run(shutdown_rx.clone())),
        tokio::spawn(reloader.clone().watch(settings.watch, shutdown_rx.clone())),
        tokio::spawn(report_instance(
            store.clone(),
            memory_rules.clone(),
            settings.instance.clone(),
            settings.clock.clone(),
            guards,
            instances_live.clone(),
            shutdown_rx.clone(),
        )),
        tokio::spawn(prune(
            store,
            memory_rules,
            settings.clock.clone(),
            shutdown_rx.clone(),
        )),
    ];
    if open_webhook {
        tasks.push(tokio::spawn(warn_open_webhook(addr, shutdown_rx)));
    }
    Ok(Running {
        addr,
        reloader,
        wakes: [intake_wake, delivery_wake],
        shutdown: shutdown_tx,
        tasks,
    })
}

/// Says loudly, per channel, that nothing is sent through a channel without its token.
fn warn_dry_run(settings: &Settings, client: &Client) {
    if settings.dry_run {
        tracing::warn!(
            "DRY-RUN: --dry-run is on. Every action is logged fully rendered; NOTHING is sent to WhatsApp or to any webhook."
        );
        return;
    }
    for name in client.dry_channels() {
        let variable = settings
            .channels
            .named(name)
            .map_or(crate::channels::DEFAULT_TOKEN_ENV, |c| c.token_env.as_str());
        if client.dry_run() && settings.channels.file().is_none() {
            tracing::warn!(
                "DRY-RUN: {variable} is not set. Every action is logged fully rendered; NOTHING is sent to WhatsApp or to any webhook."
            );
        } else {
            tracing::warn!(
                channel = name,
                "DRY-RUN on channel `{name}`: {variable} is not set. Its actions are logged fully rendered; NOTHING is sent through this number."
            );
        }
    }
}

/// How often an instance says which rule set it serves (and that it is alive).
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// Says, now and every [`HEARTBEAT`], which rule set this instance serves, and shares the
/// pace of calls to Whapi.Cloud with the instances alive on the same database.
async fn report_instance(
    store: Arc<dyn Store>,
    mut rules: watch::Receiver<Arc<crate::rules::RuleSet>>,
    instance: crate::store::Instance,
    clock: Arc<dyn Clock>,
    guards: Arc<crate::delivery::Guards>,
    live: Arc<std::sync::atomic::AtomicU32>,
    mut shutdown: watch::Receiver<bool>,
) {
    let started_at = clock.now();
    loop {
        let report = {
            let set = rules.borrow_and_update();
            crate::store::InstanceReport {
                name: instance.as_str().to_owned(),
                rules_version: set.version.clone(),
                rules: set.rules.len().min(u32::MAX as usize) as u32,
                started_at,
                seen_at: clock.now(),
            }
        };
        if let Err(err) = store.report_instance(&report).await {
            tracing::warn!("cannot report this instance's rule set: {err}");
        }
        let alive = chrono::Duration::from_std(HEARTBEAT * 3).unwrap_or_default();
        if let Ok(all) = store.instances().await {
            let count = all
                .iter()
                .filter(|i| report.seen_at - i.seen_at < alive)
                .count();
            let count = u32::try_from(count).unwrap_or(u32::MAX).max(1);
            guards.share(count);
            live.store(count, std::sync::atomic::Ordering::Relaxed);
        }
        tokio::select! {
            () = tokio::time::sleep(HEARTBEAT) => {}
            // A reload is reported at once.
            Ok(()) = rules.changed() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Whether the webhook would be open to the network: refused unless asked for, with a
/// warning when it is only open to this machine.
fn webhook_door(settings: &Settings, addr: SocketAddr) -> Result<bool, Refused> {
    if settings.webhook_secret.is_some() {
        return Ok(false);
    }
    if addr.ip().to_canonical().is_loopback() {
        tracing::warn!(
            "RIPOSTE_WEBHOOK_SECRET is not set: any program on this machine can post webhooks; set it before you expose Riposte"
        );
        return Ok(false);
    }
    if settings.insecure_open_webhook {
        warn_open(addr);
        return Ok(true);
    }
    Err(Refused(format!(
        "refusing to listen on {addr} without RIPOSTE_WEBHOOK_SECRET: anyone who finds the webhook URL could make your WhatsApp number send messages.\n\
         Set RIPOSTE_WEBHOOK_SECRET to a long random value (e.g. `openssl rand -hex 32`) and add the header `X-Riposte-Secret: <that value>` under `headers` in the webhook's settings in Whapi.Cloud.\n\
         To start anyway, pass --insecure-open-webhook (RIPOSTE_INSECURE_OPEN_WEBHOOK=1)."
    )))
}

/// Says every hour that the webhook is open to anyone (it said so at start too).
async fn warn_open_webhook(addr: SocketAddr, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        warn_open(addr);
    }
}

fn warn_open(addr: SocketAddr) {
    tracing::warn!(
        "INSECURE: the webhook on {addr} takes bodies from anyone (--insecure-open-webhook); set RIPOSTE_WEBHOOK_SECRET"
    );
}

/// How many claimed calls may wait in memory for delivery: enough for a busy moment, and no
/// more than the pace toward Whapi.Cloud sends in half the time a waiting job is kept (the
/// rest wait in the database, unclaimed).
fn ready_capacity(settings: &Settings) -> usize {
    let busy = settings.concurrency.max(1) * 16;
    match settings.whapi_rate {
        Some(interval) if !interval.is_zero() => {
            let paced = (crate::delivery::READY_STALE / 2).as_secs_f64() / interval.as_secs_f64();
            busy.min(paced as usize).max(1)
        }
        _ => busy,
    }
}

async fn prune(
    store: Arc<dyn Store>,
    rules: watch::Receiver<Arc<rules::RuleSet>>,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let now = clock.now();
        if let Err(err) = store.prune(now).await {
            tracing::warn!("pruning old records failed: {err}");
        }
        // Conversations are kept only as long as some `ai_reply` may still use them.
        let keep = rules
            .borrow()
            .memory
            .map_or(chrono::Duration::zero(), |m| m.keep);
        if let Err(err) = store.forget_turns(now - keep).await {
            tracing::warn!("forgetting old conversations failed: {err}");
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// Registers for Ctrl-C and SIGTERM at once (so a signal that arrives while the server starts
/// is not lost to the default handler) and returns a future that ends at the first of them.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(term) => {}
                () = wait(interrupt) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Log output kept in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_webhook_is_warned_about_every_hour() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = crate::logging::text_subscriber(
            tracing_subscriber::EnvFilter::new("warn"),
            move || writer.clone(),
        );
        let _logs = tracing::subscriber::set_default(subscriber);
        let (stop, stopped) = watch::channel(false);
        let addr: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        // The current-thread runtime runs the task on this thread, under this subscriber.
        let nagging = tokio::spawn(warn_open_webhook(addr, stopped));
        tokio::time::sleep(Duration::from_secs(3 * 3600 + 60)).await;
        stop.send(true).unwrap();
        nagging.await.unwrap();
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(log.matches("INSECURE").count(), 3, "{log}");
    }

    #[test]
    fn an_open_webhook_is_refused_unless_asked_for_or_only_local() {
        let settings = |secret: Option<&str>, insecure: bool| Settings {
            webhook_secret: secret.map(str::to_owned),
            insecure_open_webhook: insecure,
            ..test_settings()
        };
        let open: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: SocketAddr = "[::1]:8080".parse().unwrap();
        let refused = webhook_door(&settings(None, false), open).unwrap_err();
        assert!(
            refused.to_string().contains("RIPOSTE_WEBHOOK_SECRET"),
            "{refused}"
        );
        assert!(webhook_door(&settings(None, true), open).unwrap());
        assert!(!webhook_door(&settings(Some("s"), false), open).unwrap());
        assert!(!webhook_door(&settings(None, false), local).unwrap());
    }

    fn test_settings() -> Settings {
        Settings {
            listen: "127.0.0.1:0".into(),
            rules: Vec::new(),
            db: "x.db".into(),
            instance: crate::store::Instance::new("test"),
            whapi_url: "http://x".into(),
            channels: Arc::new(Channels::single()),
            tokens: Tokens::single(Some("token-123".into())),
            dry_run: false,
            timezone: chrono_tz::UTC,
            webhook_secret: Some("secret-456".into()),
            webhook_allow: Vec::new(),
            events_token: Some("events-789".into()),
            admin_token: Some("admin-000".into()),
            max_event_age: None,
            http: HttpLimits::default(),
            insecure_open_webhook: false,
            call_timeout: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            breaker: BreakerPolicy::default(),
            whapi_rate: None,
            concurrency: 1,
            clock: Arc::new(crate::clock::SystemClock),
            watch: false,
            durability: crate::store::Durability::default(),
            llm: ModelSettings {
                url: Some("http://x/v1".into()),
                key: Some("sk-111".into()),
                model: None,
            },
            llm_rate: None,
        }
    }

    #[test]
    fn settings_never_print_their_secrets() {
        let settings = test_settings();
        let shown = format!("{settings:?}");
        for secret in [
            "token-123",
            "secret-456",
            "events-789",
            "admin-000",
            "sk-111",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(
            shown.contains("tokens: {\"default\": \"<set>\"}"),
            "{shown}"
        );
    }
}
