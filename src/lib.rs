//! Riposte: declarative automation rules for WhatsApp on Whapi.Cloud.
//!
//! The pipeline, module by module: `rules` compiles the rule files as written (`config`), their
//! actions included; `server` accepts webhooks into the `store`; `intake` parses them into
//! `events` and runs the `engine` over the compiled `rules`, whose `actions` render into durable
//! jobs; `delivery` makes each job's call through the `whapi` client, and asks the language model
//! for `ai` replies. What crosses these layers (an outbound call, a job and its work, a contact, a
//! chat's state, the ids that name them) is the `vocab`, which imports none of them; the `pace`
//! that spaces calls to Whapi.Cloud and to the model is a leaf too.

pub mod actions;
pub mod ai;
pub mod calendar;
pub mod campaigns;
pub mod channels;
pub mod cli;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod duration;
pub mod engine;
pub mod events;
pub mod intake;
pub mod logging;
pub mod metrics;
pub mod pace;
pub mod parallel;
pub mod quote;
pub mod reload;
pub mod rules;
pub mod ruletest;
pub mod scheduler;
pub mod serve;
pub mod server;
pub mod store;
pub mod templates;
pub mod verify;
pub mod vocab;
pub mod whapi;
pub mod workers;
