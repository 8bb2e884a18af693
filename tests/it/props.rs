//! Property: whatever JSON is posted as a webhook, the server answers 2xx or 4xx, never 5xx,
//! and keeps serving.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value};

use crate::support::{HELLO_RULES, Riposte};

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
        let health = client
            .get(format!("{}/readyz", riposte.url))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status().as_u16(), 200);
        let events = riposte.get("/admin/events?limit=1").await;
        assert!(!events["events"].as_array().unwrap().is_empty());
    });
}
