//! The workers that do Riposte's work (intake, delivery, the campaign scheduler), built in one
//! place from what they share, so `serve`, `riposte test` and the tests wire them alike: the
//! same store, rules, clock and wake-ups, and the same hand-over of replies from intake to
//! delivery.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::ai::Assistant;
use crate::channels::Channels;
use crate::clock::Clock;
use crate::delivery::{BreakerPolicy, Delivery, Guards, Observer, RetryPolicy};
use crate::intake::Intake;
use crate::rules::RuleSet;
use crate::scheduler::Scheduler;
use crate::store::Store;
use crate::whapi::Client;

/// What the workers share and how delivery behaves.
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub rules: watch::Receiver<Arc<RuleSet>>,
    pub clock: Arc<dyn Clock>,
    pub client: Client,
    pub assistant: Arc<Assistant>,
    pub retry: RetryPolicy,
    pub breaker: BreakerPolicy,
    /// Least time between two calls to Whapi.Cloud through one channel, for channels that
    /// set no rate of their own; `None` for no pace.
    pub whapi_rate: Option<Duration>,
    /// The WhatsApp numbers served: webhooks are routed to them, each has its own guard.
    pub channels: Arc<Channels>,
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Events older than this fire no rule.
    pub max_event_age: Option<Duration>,
    /// Replies intake may hand to delivery as it writes them, claimed; `None` to leave every
    /// job to delivery's own claims (rule tests, which run the workers step by step).
    pub hand_over: Option<usize>,
    /// Told about every job delivery runs.
    pub observer: Option<Observer>,
    /// Scripted answers for `lookup:` (rule tests); `None` makes the calls.
    pub lookups: Option<Arc<crate::delivery::ScriptedLookups>>,
}

/// The workers, ready to run (or to be driven step by step).
pub struct Workers {
    pub intake: Intake,
    pub delivery: Delivery,
    pub scheduler: Scheduler,
    /// Wakes intake (a body was stored).
    pub intake_wake: Arc<Notify>,
    /// Wakes delivery (jobs were written outside intake: a retry, a manual campaign run).
    pub delivery_wake: Arc<Notify>,
}

impl Workers {
    /// Builds the workers over `parts`.
    pub fn new(parts: Parts) -> Self {
        let intake_wake = Arc::new(Notify::new());
        let delivery_wake = Arc::new(Notify::new());
        let (ready, ready_jobs) = match parts.hand_over {
            Some(capacity) => {
                let (queue, jobs) = crate::delivery::ready_queue(capacity);
                (Some(queue), Some(jobs))
            }
            None => (None, None),
        };
        Self {
            intake: Intake {
                store: parts.store.clone(),
                clock: parts.clock.clone(),
                rules: parts.rules.clone(),
                wake: intake_wake.clone(),
                delivery: delivery_wake.clone(),
                max_event_age: parts.max_event_age,
                ready,
                channels: parts.channels.clone(),
            },
            scheduler: Scheduler {
                store: parts.store.clone(),
                rules: parts.rules.clone(),
                clock: parts.clock.clone(),
                delivery: delivery_wake.clone(),
                groups: Some(Arc::new(parts.client.clone())),
            },
            delivery: Delivery {
                store: parts.store,
                clock: parts.clock,
                client: parts.client,
                policy: parts.retry,
                concurrency: parts.concurrency.max(1),
                wake: delivery_wake.clone(),
                observer: parts.observer,
                guards: Arc::new(guards(&parts.channels, parts.breaker, parts.whapi_rate)),
                assistant: parts.assistant,
                rules: parts.rules,
                ready: ready_jobs,
                lookups: parts.lookups,
            },
            intake_wake,
            delivery_wake,
        }
    }
}

/// A guard per channel: its own rate, else `whapi_rate`.
fn guards(channels: &Channels, breaker: BreakerPolicy, whapi_rate: Option<Duration>) -> Guards {
    let paces: Vec<(String, Option<Duration>)> = channels
        .list()
        .iter()
        .map(|c| (c.name.clone(), c.interval.or(whapi_rate)))
        .collect();
    Guards::new(&paces, &channels.default_channel().name, breaker)
}
