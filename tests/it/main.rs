//! Integration tests: the real server, a stand-in Whapi.Cloud, and the exact requests made.

mod cli;
mod delivery;
mod docs;
mod engine;
mod events;
mod intake;
mod schema;
mod security;
mod support;
mod webhook;
