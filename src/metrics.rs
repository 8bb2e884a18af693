//! Counters exported at `GET /metrics` in the Prometheus text format. A handful of process-wide
//! atomics: cheap on the hot path and enough for alerts on reload failures and dead letters.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing count.
pub struct Counter {
    name: &'static str,
    help: &'static str,
    value: AtomicU64,
}

impl Counter {
    const fn new(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            value: AtomicU64::new(0),
        }
    }

    /// Adds one.
    pub fn inc(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

pub static WEBHOOKS_ACCEPTED: Counter = Counter::new(
    "riposte_webhooks_accepted_total",
    "Webhook and custom event bodies stored.",
);
pub static EVENTS_PROCESSED: Counter = Counter::new(
    "riposte_events_processed_total",
    "Events run through the rules.",
);
pub static EVENTS_DUPLICATE: Counter = Counter::new(
    "riposte_events_duplicate_total",
    "Events ignored as already processed.",
);
pub static JOBS_DONE: Counter = Counter::new("riposte_jobs_done_total", "Jobs completed.");
pub static JOBS_RETRIED: Counter = Counter::new(
    "riposte_jobs_retried_total",
    "Failed calls scheduled for another attempt.",
);
pub static JOBS_DEAD: Counter =
    Counter::new("riposte_jobs_dead_total", "Jobs moved to the dead letters.");
pub static JOBS_SKIPPED: Counter = Counter::new(
    "riposte_jobs_skipped_total",
    "Follow-ups and campaign sends skipped (opted out, unless).",
);
pub static BREAKER_OPENED: Counter = Counter::new(
    "riposte_whapi_breaker_opened_total",
    "Times calls were paused because Whapi.Cloud kept failing.",
);
pub static RELOADS_OK: Counter = Counter::new(
    "riposte_rules_reloads_total",
    "Rule reloads that compiled and were swapped in.",
);
pub static RELOADS_FAILED: Counter = Counter::new(
    "riposte_rules_reload_failures_total",
    "Rule reloads rejected because the rules did not compile.",
);

pub static AI_CALLS: Counter = Counter::new(
    "riposte_ai_calls_total",
    "Calls to the language model for ai_reply.",
);
pub static AI_FAILURES: Counter = Counter::new(
    "riposte_ai_failures_total",
    "Model calls that failed or timed out.",
);
pub static AI_FALLBACKS: Counter = Counter::new(
    "riposte_ai_fallbacks_total",
    "ai_reply jobs that fell back (model failed, timed out or answered nothing).",
);
pub static AI_HANDOFFS: Counter = Counter::new(
    "riposte_ai_handoffs_total",
    "Chats ai_reply handed to a human.",
);
pub static AI_LIMITED: Counter = Counter::new(
    "riposte_ai_limited_total",
    "ai_reply jobs not answered because the chat reached its per_chat limit.",
);
pub static AI_PROMPT_TOKENS: Counter = Counter::new(
    "riposte_ai_prompt_tokens_total",
    "Prompt tokens the model endpoint reported.",
);
pub static AI_COMPLETION_TOKENS: Counter = Counter::new(
    "riposte_ai_completion_tokens_total",
    "Completion tokens the model endpoint reported.",
);

pub static WEBHOOKS_UNKNOWN_CHANNEL: Counter = Counter::new(
    "riposte_webhooks_unknown_channel_total",
    "Webhook events whose channel_id no configured channel has (stored, recorded, no rule fired).",
);

/// One channel's counts of calls to Whapi.Cloud.
#[derive(Debug, Default)]
pub struct ChannelCounters {
    /// Calls Whapi.Cloud accepted.
    pub sent: AtomicU64,
    /// Calls that failed (to be retried, or refused).
    pub failed: AtomicU64,
    /// Times the channel's breaker opened.
    pub breaker_opened: AtomicU64,
}

/// Every channel's counters, in the order they were first counted.
static CHANNELS: std::sync::RwLock<Vec<(String, std::sync::Arc<ChannelCounters>)>> =
    std::sync::RwLock::new(Vec::new());

/// The counters of a channel, made the first time it is named.
pub fn channel(name: &str) -> std::sync::Arc<ChannelCounters> {
    let read = CHANNELS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, counters)) = read.iter().find(|(n, _)| n == name) {
        return counters.clone();
    }
    drop(read);
    let mut write = CHANNELS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, counters)) = write.iter().find(|(n, _)| n == name) {
        return counters.clone();
    }
    let counters = std::sync::Arc::new(ChannelCounters::default());
    write.push((name.to_owned(), counters.clone()));
    counters
}

const ALL: &[&Counter] = &[
    &WEBHOOKS_ACCEPTED,
    &EVENTS_PROCESSED,
    &EVENTS_DUPLICATE,
    &JOBS_DONE,
    &JOBS_RETRIED,
    &JOBS_DEAD,
    &JOBS_SKIPPED,
    &BREAKER_OPENED,
    &WEBHOOKS_UNKNOWN_CHANNEL,
    &RELOADS_OK,
    &RELOADS_FAILED,
    &AI_CALLS,
    &AI_FAILURES,
    &AI_FALLBACKS,
    &AI_HANDOFFS,
    &AI_LIMITED,
    &AI_PROMPT_TOKENS,
    &AI_COMPLETION_TOKENS,
];

/// Why a request was refused at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not JSON, not an object, nested too deep.
    BadRequest,
    /// A missing or wrong secret or token, or admin asked from afar without one.
    Unauthorized,
    /// A state-changing admin request a page on another site could have sent.
    Forbidden,
    /// A body over `--max-body` or with more items than `--max-items`.
    TooLarge,
    /// Over the per-address rate.
    RateLimited,
    /// A declared custom event whose data lacks or mistypes a field.
    InvalidEvent,
}

impl Refusal {
    const ALL: [Self; 6] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::TooLarge,
        Self::RateLimited,
        Self::InvalidEvent,
    ];

    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::TooLarge => "too_large",
            Self::RateLimited => "rate_limited",
            Self::InvalidEvent => "invalid_event",
        }
    }
}

/// Requests refused, by reason.
pub struct Refusals([AtomicU64; Refusal::ALL.len()]);

impl Refusals {
    const fn new() -> Self {
        Self([const { AtomicU64::new(0) }; Refusal::ALL.len()])
    }

    /// Counts one refusal.
    pub fn inc(&self, reason: Refusal) {
        self.0[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals for one reason so far.
    pub fn get(&self, reason: Refusal) -> u64 {
        self.0[reason as usize].load(Ordering::Relaxed)
    }
}

/// Requests refused at the door (`riposte_requests_refused_total{reason}`).
pub static REFUSED: Refusals = Refusals::new();

/// Every counter in the Prometheus text exposition format, plus the loaded rule count and the
/// open jobs of each channel (`queue`).
pub fn render(rules: usize, campaigns: usize, queue: &[(String, u64)]) -> String {
    let mut out = String::new();
    let channels = CHANNELS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    type Field = fn(&ChannelCounters) -> &AtomicU64;
    let families: [(&str, &str, Field); 3] = [
        (
            "riposte_channel_sends_total",
            "Calls to Whapi.Cloud it accepted, by channel.",
            |c| &c.sent,
        ),
        (
            "riposte_channel_failures_total",
            "Calls to Whapi.Cloud that failed (retried or refused), by channel.",
            |c| &c.failed,
        ),
        (
            "riposte_channel_breaker_opened_total",
            "Times calls through a channel paused because Whapi.Cloud kept failing.",
            |c| &c.breaker_opened,
        ),
    ];
    for (name, help, field) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (channel, counters) in &channels {
            let _ = writeln!(
                out,
                "{name}{{channel=\"{}\"}} {}",
                label(channel),
                field(counters).load(Ordering::Relaxed)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP riposte_channel_queue_depth Open jobs (pending or being sent), by channel.\n# TYPE riposte_channel_queue_depth gauge"
    );
    for (channel, depth) in queue {
        let _ = writeln!(
            out,
            "riposte_channel_queue_depth{{channel=\"{}\"}} {depth}",
            label(channel)
        );
    }
    let _ = writeln!(
        out,
        "# HELP riposte_requests_refused_total Requests refused before anything was stored, by reason.\n# TYPE riposte_requests_refused_total counter"
    );
    for reason in Refusal::ALL {
        let _ = writeln!(
            out,
            "riposte_requests_refused_total{{reason=\"{}\"}} {}",
            reason.label(),
            REFUSED.get(reason)
        );
    }
    for c in ALL {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} counter\n{} {}",
            c.name,
            c.help,
            c.name,
            c.name,
            c.get()
        );
    }
    let _ = writeln!(
        out,
        "# HELP riposte_rules_loaded Rules in the current rule set.\n# TYPE riposte_rules_loaded gauge\nriposte_rules_loaded {rules}"
    );
    let _ = writeln!(
        out,
        "# HELP riposte_campaigns_loaded Campaigns in the current rule set.\n# TYPE riposte_campaigns_loaded gauge\nriposte_campaigns_loaded {campaigns}"
    );
    out
}

/// A label value as the exposition format writes it: `\\`, `"` and line breaks escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
