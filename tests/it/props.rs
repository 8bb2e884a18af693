//! Property: whatever is posted as a webhook (random JSON, or a sample body damaged: nested
//! deep, made wide, given huge strings or wrong types, cut or garbled), the server answers
//! 2xx or 4xx, never 5xx, and keeps serving.

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};

use crate::support::{DEADLINE, HELLO_RULES, Riposte};

/// Keys Whapi.Cloud uses, so random bodies often reach deep into the parser.
const KEYS: &[&str] = &[
    "messages",
    "statuses",
    "groups_participants",
    "groups",
    "groups_updates",
    "chats",
    "chats_updates",
    "chats_removed",
    "contacts",
    "contacts_updates",
    "labels",
    "labels_removed",
    "presences",
    "calls",
    "health",
    "qr",
    "user",
    "messages_updates",
    "messages_removed",
    "messages_removed_all",
    "event",
    "channel_id",
    "id",
    "type",
    "from",
    "from_me",
    "chat_id",
    "timestamp",
    "text",
    "body",
    "reply",
    "buttons_reply",
    "list_reply",
    "action",
    "emoji",
    "target",
    "status",
    "recipient_id",
    "participants",
    "group_id",
    "after_update",
    "trigger",
    "image",
    "caption",
    "event",
    "method",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        prop::sample::select(KEYS).prop_map(|k| Value::String(k.to_owned())),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(KEYS).prop_map(str::to_owned),
                        "[a-z_]{1,8}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

#[test]
fn random_json_bodies_never_get_a_server_error() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let riposte = runtime.block_on(Riposte::start(HELLO_RULES));
    let client = reqwest::Client::new();
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&json(), |body| {
            let status = runtime.block_on(async {
                client
                    .post(format!("{}/webhook", riposte.url))
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            });
            let status = status.map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
            prop_assert!(status < 500, "{status} for {body}");
            prop_assert!(
                status == 200 || !body.is_object(),
                "a JSON object is always accepted: {status} for {body}"
            );
            Ok(())
        })
        .unwrap();
    // Everything accepted was processed without stopping intake.
    runtime.block_on(async {
        assert_eq!(riposte.send("GET", "/readyz", &[], "").await.0, 200);
        let events = riposte.get("/admin/events?limit=1").await;
        assert!(!events["events"].as_array().unwrap().is_empty());
    });
}

/// How one node of a sample body is damaged.
#[derive(Debug, Clone)]
enum Damage {
    /// Wrapped in this many lists (or objects): some within the nesting limit, some past it.
    Deep { levels: usize, objects: bool },
    /// Replaced by a list of this many small items: some within the item limit, some past it.
    Wide(usize),
    /// Replaced by a string this long, with escapes, quotes and non-ASCII in it.
    Huge(usize),
    /// Replaced by a value of another type.
    Retyped(Value),
    /// Taken out of its object or list.
    Removed,
}

/// What happens to the bytes once the damaged body is written out.
#[derive(Debug, Clone)]
enum Garble {
    Nothing,
    /// One byte overwritten.
    Flip(Index, u8),
    /// Cut short.
    Cut(Index),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        3 => (1usize..200, any::<bool>())
            .prop_map(|(levels, objects)| Damage::Deep { levels, objects }),
        2 => (1usize..2500).prop_map(Damage::Wide),
        2 => (1usize..300_000).prop_map(Damage::Huge),
        4 => json().prop_map(Damage::Retyped),
        2 => Just(Damage::Removed),
    ]
}

fn garble() -> impl Strategy<Value = Garble> {
    prop_oneof![
        6 => Just(Garble::Nothing),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Garble::Flip(at, byte)),
        1 => any::<Index>().prop_map(Garble::Cut),
    ]
}

/// The sample webhook bodies.
fn samples() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/whapi");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
        .collect()
}

/// The JSON pointer of every node below the root.
fn pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v))
            .collect(),
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => return,
    };
    for (key, child) in children {
        let pointer = format!("{at}/{key}");
        out.push(pointer.clone());
        pointers(child, &pointer, out);
    }
}

fn apply(body: &mut Value, at: &Index, damage: &Damage) {
    let mut all = Vec::new();
    pointers(body, "", &mut all);
    if all.is_empty() {
        return;
    }
    let pointer = all[at.index(all.len())].clone();
    if let Damage::Removed = damage {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let key = key.replace("~1", "/").replace("~0", "~");
        match body.pointer_mut(parent) {
            Some(Value::Object(map)) => {
                map.remove(&key);
            }
            Some(Value::Array(list)) => {
                list.remove(key.parse::<usize>().unwrap());
            }
            _ => {}
        }
        return;
    }
    let Some(node) = body.pointer_mut(&pointer) else {
        return;
    };
    *node = match damage {
        Damage::Deep { levels, objects } => {
            let mut v = node.take();
            for _ in 0..*levels {
                v = if *objects {
                    json!({ "x": v })
                } else {
                    json!([v])
                };
            }
            v
        }
        Damage::Wide(n) => Value::Array((0..*n).map(|i| json!({ "id": i })).collect()),
        Damage::Huge(n) => {
            let unit = "ab\"\\\n\u{e9}\u{1F600}";
            Value::String(unit.chars().cycle().take(*n).collect())
        }
        Damage::Retyped(v) => v.clone(),
        Damage::Removed => unreachable!("handled above"),
    };
}

#[test]
fn damaged_sample_bodies_never_get_a_server_error() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let riposte = runtime.block_on(Riposte::start(HELLO_RULES));
    let client = reqwest::Client::new();
    let samples = samples();
    let strategy = (
        any::<Index>(),
        prop::collection::vec((any::<Index>(), damage()), 1..4),
        garble(),
    );
    let mut runner = TestRunner::new(Config {
        cases: 1000,
        failure_persistence: None,
        ..Config::default()
    });
    let answers = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    runner
        .run(&strategy, |(sample, damages, garble)| {
            let mut body = samples[sample.index(samples.len())].clone();
            for (at, damage) in &damages {
                apply(&mut body, at, damage);
            }
            let mut bytes = serde_json::to_vec(&body).unwrap();
            match garble {
                Garble::Nothing => {}
                Garble::Flip(at, byte) => {
                    let i = at.index(bytes.len());
                    bytes[i] = byte;
                }
                Garble::Cut(at) => bytes.truncate(at.index(bytes.len())),
            }
            let size = bytes.len();
            let status = runtime.block_on(async {
                client
                    .post(format!("{}/webhook", riposte.url))
                    .header("content-type", "application/json")
                    .body(bytes)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            });
            let status = status.map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
            prop_assert!(
                (200..500).contains(&status),
                "{status} for {damages:?} {garble:?} ({size} bytes)"
            );
            *answers.borrow_mut().entry(status).or_default() += 1;
            Ok(())
        })
        .unwrap();
    // The damage reached every door: stored, refused as malformed or too deep, too large.
    let answers = answers.into_inner();
    for status in [200, 400, 413] {
        assert!(
            answers.contains_key(&status),
            "no {status} among {answers:?}"
        );
    }
    // Still serving, and intake still turns bodies into events.
    runtime.block_on(async {
        assert_eq!(riposte.send("GET", "/readyz", &[], "").await.0, 200);
        let mut last = samples[0].clone();
        last["messages"] = json!([{
            "id": "Liveness.check-gAfter1000", "from_me": false, "type": "text",
            "chat_id": "4915112345678@s.whatsapp.net", "from": "4915112345678",
            "timestamp": 1_767_000_000, "text": {"body": "hallo"}
        }]);
        riposte.webhook(&last).await;
        let seen = async {
            loop {
                let events = riposte.get("/admin/events?limit=5").await;
                if events["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["id"] == "Liveness.check-gAfter1000")
                {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(DEADLINE, seen)
            .await
            .expect("the last body was processed");
    });
}
