//! Any bytes posted as a webhook: the server's JSON check, then parsing into events, must never
//! panic, whatever the body's shape.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riposte::events::{WebhookBody, parse_webhook};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for (path, method) in [("", "POST"), ("messages/post", "POST"), ("users", "DELETE")] {
        for event in parse_webhook(WebhookBody { body: &body, path, method }) {
            let _ = event.dedupe_key();
            let _ = event.folded_text();
        }
    }
});
