//! The `riposte` command line: flags and environment variables, and one function per command.

mod campaigns;
mod check;
mod contacts;
mod db;
mod jobs;
mod simulate;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};

use crate::delivery::RetryPolicy;
use crate::serve::{self, Settings};

/// Declarative automation rules for WhatsApp on Whapi.Cloud.
#[derive(Debug, Parser)]
#[command(name = "riposte", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: webhook receiver, rule engine, delivery worker.
    Serve(Box<ServeArgs>),
    /// Validate rule files without starting anything.
    Check {
        /// Rule files or folders (default `./rules`).
        paths: Vec<PathBuf>,
        /// Fail on lint warnings too.
        #[arg(long)]
        deny_warnings: bool,
        /// Also print each campaign's next fire times.
        #[arg(long, short)]
        verbose: bool,
        /// Default time zone (an IANA name).
        #[arg(long, env = "RIPOSTE_TIMEZONE", default_value = "UTC", value_parser = timezone_arg)]
        timezone: chrono_tz::Tz,
        #[command(flatten)]
        channels: ChannelsArg,
    },
    /// Run rule tests (`*.test.yaml`).
    Test {
        /// Test files or folders (default `./rules`).
        paths: Vec<PathBuf>,
    },
    /// Feed webhook bodies through the rules and print what would be done; sends nothing.
    Simulate(simulate::SimulateArgs),
    /// Print the JSON Schema of rule files (or, with `--tests`, of rule test files).
    Schema {
        /// The schema of `*.test.yaml` files instead.
        #[arg(long, conflicts_with = "channels")]
        tests: bool,
        /// The schema of channels files (`--channels`) instead.
        #[arg(long, conflicts_with = "events")]
        channels: bool,
        /// The schemas of the custom events the rules declare (`events:`), for the systems
        /// that post them to `/events/NAME`.
        #[arg(long, conflicts_with = "tests")]
        events: bool,
        /// Rules folder or files whose declared events `--events` prints.
        #[arg(long, env = "RIPOSTE_RULES", default_value = "./rules")]
        rules: Vec<PathBuf>,
    },
    /// Campaigns: list them, preview one, or run one now.
    Campaigns(campaigns::CampaignsArgs),
    /// Jobs: scheduled follow-ups, pending sends and dead letters.
    Jobs(jobs::JobsArgs),
    /// Contacts: import and export tags and attributes, verify numbers.
    Contacts(contacts::ContactsArgs),
    /// The database: copy a SQLite file into PostgreSQL.
    Db(db::DbCommandArgs),
}

/// Where the database is, for commands that read or change it directly.
#[derive(Debug, Args)]
struct DbArgs {
    /// The database: a file path (SQLite, embedded), `sqlite:PATH`, or
    /// `postgres://user:password@host/db` (PostgreSQL, shared by several instances).
    #[arg(
        long,
        env = "RIPOSTE_DB",
        default_value = "./riposte.db",
        global = true
    )]
    db: String,
}

impl DbArgs {
    /// The store, whatever backend the address names. These commands claim nothing, so the
    /// instance they open as does not matter.
    fn open(
        &self,
        runtime: &tokio::runtime::Runtime,
    ) -> anyhow::Result<std::sync::Arc<dyn crate::store::Store>> {
        use anyhow::Context;
        runtime
            .block_on(crate::store::open(&self.db, Default::default()))
            .with_context(|| format!("cannot open database `{}`", self.db))
    }
}

/// The channels file, for commands that need to know the WhatsApp numbers by name.
#[derive(Debug, Clone, Args)]
struct ChannelsArg {
    /// The channels file (several WhatsApp numbers); without it, one channel `default` with
    /// WHAPI_TOKEN.
    #[arg(long, env = "RIPOSTE_CHANNELS")]
    channels: Option<PathBuf>,
}

impl ChannelsArg {
    /// The channels, or every problem of the file.
    fn load(&self) -> anyhow::Result<crate::channels::Channels> {
        crate::channels::Channels::from_setting(self.channels.as_deref()).map_err(|problems| {
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("the channels file is not usable:\n{}", lines.join("\n"))
        })
    }

    /// Checks that `name` is a configured channel, with a did-you-mean when it is not.
    fn known(
        channels: &crate::channels::Channels,
        name: &str,
    ) -> anyhow::Result<crate::store::ChannelFilter> {
        if channels.named(name).is_none() {
            let hint = channels
                .suggest(name)
                .map(|b| format!(", did you mean `{b}`?"))
                .unwrap_or_else(|| format!(" (channels: {})", channels.names().join(", ")));
            anyhow::bail!("unknown channel `{}`{hint}", crate::quote::quoted(name, 64));
        }
        Ok(crate::store::ChannelFilter {
            name: name.to_owned(),
            is_default: channels.default_channel().name == name,
        })
    }
}

fn duration_arg(text: &str) -> Result<Duration, String> {
    crate::duration::parse(text)
}

fn rate_arg(text: &str) -> Result<Duration, String> {
    crate::campaigns::parse_rate(text).and_then(|d| d.to_std().map_err(|e| e.to_string()))
}

/// `--durability`, as the command line spells it.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DurabilityArg {
    /// A crash or kill of the process.
    Process,
    /// A power loss or kernel crash too.
    PowerLoss,
}

impl From<DurabilityArg> for crate::store::Durability {
    fn from(arg: DurabilityArg) -> Self {
        match arg {
            DurabilityArg::Process => Self::Process,
            DurabilityArg::PowerLoss => Self::PowerLoss,
        }
    }
}

/// A per-source request rate, in requests a second; `None` for no limit.
#[derive(Debug, Clone, Copy)]
struct RateLimitArg(Option<u32>);

fn rate_limit_arg(text: &str) -> Result<RateLimitArg, String> {
    if matches!(text.trim(), "off" | "none" | "0") {
        return Ok(RateLimitArg(None));
    }
    let (count, per) = crate::campaigns::rate_parts(text)?;
    let seconds = u32::try_from(per.num_seconds()).unwrap_or(u32::MAX).max(1);
    if count == 0 {
        return Err(format!(
            "rate `{text}` lets nothing in; write `off` for no limit"
        ));
    }
    Ok(RateLimitArg(Some(count.div_ceil(seconds))))
}

fn timezone_arg(text: &str) -> Result<chrono_tz::Tz, String> {
    text.parse::<chrono_tz::Tz>().map_err(|_| {
        format!("unknown time zone `{text}`, expected an IANA name such as Europe/Berlin")
    })
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// HTTP listen address.
    #[arg(long, env = "RIPOSTE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Rules folder (every `*.yaml` / `*.yml` below it).
    #[arg(long, env = "RIPOSTE_RULES", default_value = "./rules")]
    rules: Vec<PathBuf>,
    /// The database: a file path (SQLite, embedded), `sqlite:PATH`, or
    /// `postgres://user:password@host/db` (PostgreSQL, shared by several instances).
    #[arg(long, env = "RIPOSTE_DB", default_value = "./riposte.db")]
    db: String,
    /// Whapi.Cloud gate.
    #[arg(long, env = "WHAPI_URL", default_value = "https://gate.whapi.cloud")]
    whapi_url: String,
    #[command(flatten)]
    channels: ChannelsArg,
    /// Log every action instead of calling out (also the case while WHAPI_TOKEN is unset).
    #[arg(long, env = "RIPOSTE_DRY_RUN", value_parser = BoolishValueParser::new())]
    dry_run: bool,
    /// Default time zone for schedules and hours (an IANA name).
    #[arg(long, env = "RIPOSTE_TIMEZONE", default_value = "UTC", value_parser = timezone_arg)]
    timezone: chrono_tz::Tz,
    /// Events whose Whapi timestamp is older than this (e.g. `6h`) are recorded but fire no rule.
    #[arg(long, env = "RIPOSTE_MAX_EVENT_AGE", value_parser = duration_arg)]
    max_event_age: Option<Duration>,
    /// Largest accepted request body in bytes; larger bodies get 413.
    #[arg(long, env = "RIPOSTE_MAX_BODY", default_value_t = 10 * 1024 * 1024)]
    max_body: usize,
    /// Most items (messages, statuses, participants...) in one webhook body; more get 413.
    #[arg(long, env = "RIPOSTE_MAX_ITEMS", default_value_t = 1000)]
    max_items: usize,
    /// Requests a second one address may make to /webhook and /events (`2000/s`, `600/min`,
    /// or `off`); more get 429.
    #[arg(long, env = "RIPOSTE_RATE_LIMIT", default_value = "2000/s", value_parser = rate_limit_arg)]
    rate_limit: RateLimitArg,
    /// Longest time a client may take to send a request's headers.
    #[arg(long, env = "RIPOSTE_HEADER_TIMEOUT", default_value = "10s", value_parser = duration_arg)]
    header_timeout: Duration,
    /// Longest silence on a kept-alive connection between two requests.
    #[arg(long, env = "RIPOSTE_IDLE_TIMEOUT", default_value = "60s", value_parser = duration_arg)]
    idle_timeout: Duration,
    /// Most connections open at once; more wait until one closes.
    #[arg(long, env = "RIPOSTE_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,
    /// Start on an address other than loopback without RIPOSTE_WEBHOOK_SECRET, so anyone
    /// who can reach it can post webhooks (warned about every hour).
    #[arg(long, env = "RIPOSTE_INSECURE_OPEN_WEBHOOK", value_parser = BoolishValueParser::new())]
    insecure_open_webhook: bool,
    /// Serve /metrics without the admin token when RIPOSTE_ADMIN_TOKEN is set.
    #[arg(long, env = "RIPOSTE_METRICS_PUBLIC", value_parser = BoolishValueParser::new())]
    metrics_public: bool,
    /// Longest wait for one outbound call.
    #[arg(long, env = "RIPOSTE_CALL_TIMEOUT", default_value = "30s", value_parser = duration_arg)]
    call_timeout: Duration,
    /// First retry delay of a failed call (doubles each attempt, with jitter).
    #[arg(long, env = "RIPOSTE_RETRY_BASE", default_value = "2s", value_parser = duration_arg)]
    retry_base: Duration,
    /// Longest delay between two attempts of a call.
    #[arg(long, env = "RIPOSTE_RETRY_CAP", default_value = "5m", value_parser = duration_arg)]
    retry_cap: Duration,
    /// Calls per job before it goes to the dead letters.
    #[arg(long, env = "RIPOSTE_RETRY_ATTEMPTS", default_value_t = 10)]
    retry_attempts: u32,
    /// A job still failing this long after it was due goes to the dead letters.
    #[arg(long, env = "RIPOSTE_RETRY_MAX_AGE", default_value = "24h", value_parser = duration_arg)]
    retry_max_age: Duration,
    /// Most calls to Whapi.Cloud, all chats together (`20/s`, `600/min`).
    #[arg(long, env = "RIPOSTE_WHAPI_RATE", default_value = "20/s", value_parser = rate_arg)]
    whapi_rate: Duration,
    /// Failed calls in a row after which calls to Whapi.Cloud pause.
    #[arg(long, env = "RIPOSTE_BREAKER_THRESHOLD", default_value_t = 5)]
    breaker_threshold: u32,
    /// How long calls pause before a probe (doubles while probes fail, up to 5 minutes).
    #[arg(long, env = "RIPOSTE_BREAKER_COOLDOWN", default_value = "10s", value_parser = duration_arg)]
    breaker_cooldown: Duration,
    /// Hosts a webhook action may call when the URL's host comes from event data
    /// (comma-separated globs such as `hooks.example.com,*.shop.example,api.example:8443`);
    /// an entry without a port allows only the scheme's default port (443, or 80 for http).
    #[arg(long, env = "RIPOSTE_WEBHOOK_ALLOW", value_delimiter = ',')]
    webhook_allow: Vec<String>,
    /// Do not watch the rules folder (reload with SIGHUP or `POST /admin/reload` instead).
    #[arg(long, env = "RIPOSTE_NO_WATCH", value_parser = BoolishValueParser::new())]
    no_watch: bool,
    /// What a stored webhook survives once answered: `process` (a crash or kill of Riposte)
    /// or `power-loss` (also a power cut; every commit waits for the disk).
    #[arg(
        long,
        env = "RIPOSTE_DURABILITY",
        value_enum,
        default_value = "process"
    )]
    durability: DurabilityArg,
    /// This instance's name among those sharing a database (default: the machine's name): the
    /// work it claims is its own, and it takes up only its own after a restart.
    #[arg(long, env = "RIPOSTE_INSTANCE")]
    instance: Option<String>,
    /// Outbound calls in flight at once.
    #[arg(long, env = "RIPOSTE_CONCURRENCY", default_value_t = 16)]
    concurrency: usize,
    /// OpenAI-compatible API base for `ai_reply` (`https://api.openai.com/v1`,
    /// `http://localhost:11434/v1`); the key comes from RIPOSTE_LLM_KEY.
    #[arg(long, env = "RIPOSTE_LLM_URL")]
    llm_url: Option<String>,
    /// Model used by `ai_reply` actions that name none.
    #[arg(long, env = "RIPOSTE_LLM_MODEL")]
    llm_model: Option<String>,
    /// Most model calls, all chats together (`60/min`).
    #[arg(long, env = "RIPOSTE_LLM_RATE", default_value = "60/min", value_parser = rate_arg)]
    llm_rate: Duration,
}

fn secret(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl ServeArgs {
    fn settings(self) -> anyhow::Result<Settings> {
        let channels = self.channels.load()?;
        Ok(Settings {
            listen: self.listen,
            rules: self.rules,
            db: self.db,
            instance: self
                .instance
                .filter(|name| !name.trim().is_empty())
                .map_or_else(crate::store::Instance::of_this_machine, |name| {
                    crate::store::Instance::new(name.trim())
                }),
            whapi_url: self.whapi_url,
            tokens: channels.read_tokens(),
            channels: std::sync::Arc::new(channels),
            llm: crate::ai::model::ModelSettings {
                url: self.llm_url.filter(|u| !u.trim().is_empty()),
                key: secret("RIPOSTE_LLM_KEY"),
                model: self.llm_model.filter(|m| !m.trim().is_empty()),
            },
            llm_rate: Some(self.llm_rate),
            dry_run: self.dry_run,
            timezone: self.timezone,
            webhook_secret: secret("RIPOSTE_WEBHOOK_SECRET"),
            webhook_allow: self.webhook_allow,
            events_token: secret("RIPOSTE_EVENTS_TOKEN"),
            admin_token: secret("RIPOSTE_ADMIN_TOKEN"),
            max_event_age: self.max_event_age,
            http: crate::server::HttpLimits {
                max_body: self.max_body,
                request_timeout: Duration::from_secs(30),
                max_items: self.max_items.max(1),
                rate: self.rate_limit.0,
                metrics_public: self.metrics_public,
                connections: crate::server::listen::ConnectionLimits {
                    header_timeout: self.header_timeout,
                    idle_timeout: self.idle_timeout,
                    max_connections: self.max_connections.max(1),
                },
            },
            insecure_open_webhook: self.insecure_open_webhook,
            call_timeout: self.call_timeout,
            retry: RetryPolicy {
                base: self.retry_base,
                cap: self.retry_cap,
                max_attempts: self.retry_attempts.max(1),
                max_age: self.retry_max_age,
            },
            concurrency: self.concurrency.max(1),
            breaker: crate::delivery::BreakerPolicy {
                threshold: self.breaker_threshold.max(1),
                cooldown: self.breaker_cooldown,
                ..crate::delivery::BreakerPolicy::default()
            },
            whapi_rate: Some(self.whapi_rate),
            clock: std::sync::Arc::new(crate::clock::SystemClock),
            watch: !self.no_watch,
            durability: self.durability.into(),
        })
    }
}

impl Cli {
    /// Whether the command is the long-running server (which logs at `info` by default).
    pub fn is_server(&self) -> bool {
        matches!(self.command, Command::Serve(_))
    }

    /// Runs the chosen command and returns the process exit code.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Serve(args) => {
                let runtime = tokio::runtime::Runtime::new()?;
                runtime.block_on(async {
                    let signal = serve::shutdown_signal();
                    let running = match serve::start(args.settings()?).await {
                        Ok(running) => running,
                        Err(err) if err.is::<serve::Refused>() => {
                            eprintln!("error: {err}");
                            return Ok(ExitCode::from(2));
                        }
                        Err(err) => return Err(err),
                    };
                    signal.await;
                    tracing::info!("shutting down");
                    running.stop().await;
                    Ok(ExitCode::SUCCESS)
                })
            }
            Command::Check {
                paths,
                deny_warnings,
                verbose,
                timezone,
                channels,
            } => Ok(check::run(
                &default_rules(paths),
                timezone,
                &channels.load()?,
                deny_warnings,
                verbose,
            )),
            Command::Test { paths } => test::run(&default_rules(paths)),
            Command::Simulate(args) => simulate::run(args),
            Command::Schema {
                events: true,
                rules,
                ..
            } => {
                let set = match crate::rules::load(&rules) {
                    Ok(set) => set,
                    Err(diagnostics) => {
                        for d in &diagnostics {
                            eprintln!("{d}");
                        }
                        return Ok(ExitCode::FAILURE);
                    }
                };
                print!("{}", crate::config::events_schema(&set.declared));
                Ok(ExitCode::SUCCESS)
            }
            Command::Schema {
                tests, channels, ..
            } => {
                print!(
                    "{}",
                    if tests {
                        crate::config::test_schema()
                    } else if channels {
                        crate::config::channels_schema()
                    } else {
                        crate::config::schema()
                    }
                );
                Ok(ExitCode::SUCCESS)
            }
            Command::Campaigns(args) => campaigns::run(args),
            Command::Jobs(args) => jobs::run(args),
            Command::Contacts(args) => contacts::run(args),
            Command::Db(args) => db::run(args),
        }
    }
}

fn default_rules(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from("./rules")]
    } else {
        paths
    }
}
