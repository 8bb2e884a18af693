//! The hot path in pieces: parsing a webhook body, matching an event (eight texts in turn)
//! against 10, 1,000 and 10,000 rules, rendering a template. Run with `cargo bench --bench engine`.

#[path = "support/generate.rs"]
mod generate;

use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use riposte::config::SourceFile;
use riposte::engine::evaluate;
use riposte::events::{Event, WebhookBody, parse_webhook, parse_webhook_owned};
use riposte::rules::{RuleSet, compile};

use riposte::templates::{Scope, Templates, to_value};
use riposte::vocab::{ChatState, Contact};

fn main() {
    divan::main();
}

fn body(text: &str) -> serde_json::Value {
    serde_json::json!({
        "messages": [{
            "id": "Qm7vT2xLp9.aB3cDe-gBgKa1Zr8k", "from_me": false, "type": "text",
            "chat_id": "4915112345678@s.whatsapp.net", "timestamp": 1767261600, "source": "mobile",
            "text": {"body": text}, "from": "4915112345678", "from_name": "Anna"
        }],
        "event": {"type": "messages", "event": "post"},
        "channel_id": "HERON-X4K9P"
    })
}

/// Texts of the kind a busy shop receives, cycled so the matchers do not see one text only.
/// The rules they name are among the first ten, so every size of rule set fires the same rules
/// for them and the sizes compare the same work.
const TEXTS: [&str; 8] = [
    "Hi, where is my order 4242 please?",
    "hallo, ist das angebot noch gültig?",
    "word5 is what I typed",
    "Can I change the delivery address for order #99812?",
    "👍",
    "STOP",
    "Do you ship to Österreich? And how much is phrase 9 with express?",
    "ok thanks, see you tomorrow at 10",
];

fn events() -> Vec<Event> {
    TEXTS
        .iter()
        .map(|text| {
            parse_webhook(WebhookBody {
                body: &body(text),
                path: "",
                method: "POST",
            })
            .remove(0)
        })
        .collect()
}

fn rule_set(n: usize) -> RuleSet {
    let source = SourceFile {
        path: PathBuf::from("bench.yaml"),
        text: generate::generate(n),
        root: None,
    };
    compile(&[source]).unwrap_or_else(|d| panic!("{}", d[0]))
}

#[divan::bench]
fn parse_webhook_body(bencher: divan::Bencher) {
    let text = body("Hallo, ist das Angebot noch gültig?").to_string();
    bencher.bench(|| {
        // As intake does: the body's tree is parsed, then its items are moved into the events.
        let value: serde_json::Value = serde_json::from_str(divan::black_box(&text)).unwrap();
        parse_webhook_owned(value, "", "POST")
    });
}

#[divan::bench(args = [10, 1_000, 10_000], sample_count = 1000)]
fn match_event(bencher: divan::Bencher, rules: usize) {
    let set = rule_set(rules);
    let events = events();
    let (contact, chat) = (Contact::default(), ChatState::default());
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap();
    let next = std::sync::atomic::AtomicUsize::new(0);
    bencher
        .with_inputs(|| {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            &events[i % events.len()]
        })
        .bench_refs(|event| evaluate(&set, divan::black_box(event), &contact, &chat, now, false));
}

#[divan::bench]
fn render_template(bencher: divan::Bencher) {
    let mut templates = Templates::new();
    let text = templates
        .text(
            "Order {{ match.order }} is on its way, {{ sender.name | default('there') }}!",
            Scope::Event {
                groups: &["order".into()],
                lookups: &[],
                data: None,
            },
        )
        .unwrap();
    let ctx = minijinja::context! { match => minijinja::context! { order => "4242" }, sender => to_value(&serde_json::json!({"name": "Anna"})) };
    bencher.bench(|| templates.render(&text, divan::black_box(&ctx)).unwrap());
}
