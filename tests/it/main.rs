//! Integration tests: the real server, a stand-in Whapi.Cloud, and the exact requests made.

mod ai;
mod architecture;
mod campaigns;
mod channels;
mod chats;
mod cli;
mod conformance;
mod crash;
mod delivery;
mod docs;
mod engine;
mod events;
mod examples;
mod followups;
mod instances;
mod intake;
mod postgres;
mod props;
mod reload;
mod schema;
mod security;
mod support;
mod unchanged;
mod upgrade;
mod verify;
mod webhook;
