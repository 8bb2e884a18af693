//! Integration tests: the real server, a stand-in Whapi.Cloud, and the exact requests made.

mod check;
mod delivery;
mod docs;
mod events;
mod intake;
mod schema;
mod support;
mod webhook;
