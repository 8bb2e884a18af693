//! Every sample webhook body parses into the documented event kinds, and surprises never fail.

use riposte::events::{ChatKind, Event, WebhookBody, parse_webhook};
use serde_json::{Value, json};

use crate::support::fixture;

fn parse(body: &Value) -> Vec<Event> {
    parse_webhook(WebhookBody {
        body,
        path: "",
        method: "POST",
    })
}

fn kinds(name: &str) -> Vec<String> {
    parse(&fixture(name))
        .iter()
        .map(|e| e.kind.to_string())
        .collect()
}

#[test]
fn every_fixture_maps_to_its_event_kind() {
    let expected = [
        (
            "batch-multiple-messages.json",
            vec!["message", "message", "reaction"],
        ),
        ("call-incoming.json", vec!["call"]),
        ("channel-health-qr.json", vec!["channel_status"]),
        ("chat-created.json", vec!["chat_created"]),
        ("contact-created.json", vec!["contact_created"]),
        ("group-created.json", vec!["group_created"]),
        ("group-participant-add.json", vec!["group_join"]),
        ("group-participant-promote.json", vec!["group_promote"]),
        ("label-created.json", vec!["label_created"]),
        ("message-button-reply.json", vec!["button_reply"]),
        ("message-list-reply.json", vec!["list_reply"]),
        ("message-contact.json", vec!["message"]),
        ("message-deleted.json", vec!["message_deleted"]),
        ("message-edited-patch.json", vec!["message_edited"]),
        ("message-from-me-api.json", vec!["message"]),
        ("message-from-me.json", vec!["message"]),
        ("message-image-caption.json", vec!["message"]),
        ("message-document-caption.json", vec!["message"]),
        ("message-poll.json", vec!["message"]),
        ("message-reaction.json", vec!["reaction"]),
        ("message-sticker.json", vec!["message"]),
        ("message-text-group-mention.json", vec!["message"]),
        ("message-text-group.json", vec!["message"]),
        ("message-text-private.json", vec!["message"]),
        ("message-video-caption.json", vec!["message"]),
        ("presence-typing.json", vec!["presence"]),
        ("status-delivered.json", vec!["status"]),
        ("status-failed.json", vec!["status"]),
        ("status-read.json", vec!["status"]),
        ("story-from-contact.json", vec!["chat_updated"]),
        ("user-connected.json", vec!["channel_status"]),
    ];
    for (name, kinds_expected) in expected {
        assert_eq!(kinds(name), kinds_expected, "{name}");
    }
}

#[test]
fn message_fields_are_normalised() {
    let event = &parse(&fixture("message-image-caption.json"))[0];
    assert_eq!(
        event.text.as_deref(),
        Some("Foto vom Schaden an der Lieferung")
    );
    assert_eq!(event.message_type.as_deref(), Some("image"));
    assert_eq!(event.sender.as_ref().unwrap().phone, "4915112345678");
    assert_eq!(event.chat.as_ref().unwrap().kind, ChatKind::Private);
    assert_eq!(event.at, Some(1767261780));
    assert_eq!(
        event.item["image"]["sha256"],
        "I6JdJLuFp1L7ISaxRVbKxGgV9loH/nlgeoSs4kcSbW4="
    );

    let button = &parse(&fixture("message-button-reply.json"))[0];
    assert_eq!(button.reply_id.as_deref(), Some("btn_confirm"));
    assert_eq!(button.text.as_deref(), Some("Bestätigen"));

    let call = &parse(&fixture("call-incoming.json"))[0];
    assert_eq!(
        call.at,
        Some(1767262300),
        "call timestamps are milliseconds"
    );
    assert_eq!(call.sender.as_ref().unwrap().phone, "4915112345678");

    let edit = &parse(&fixture("message-edited-patch.json"))[0];
    assert_eq!(
        edit.text.as_deref(),
        Some("Hallo, ist das Angebot vom Montag noch gültig?")
    );
}

#[test]
fn statuses_of_one_message_are_distinct_events() {
    let delivered = &parse(&fixture("status-delivered.json"))[0];
    let read = &parse(&fixture("status-read.json"))[0];
    assert_ne!(delivered.dedupe_key(), read.dedupe_key());
    assert_eq!(read.status.as_deref(), Some("read"));
}

#[test]
fn participant_changes_give_one_event_per_participant() {
    let body = json!({
        "groups_participants": [{"group_id": "120363041234567890@g.us", "participants": ["4915223344556", "4917098765432"], "action": "remove"}],
        "event": {"type": "groups", "event": "put"},
        "channel_id": "HERON-X4K9P"
    });
    let events = parse(&body);
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.kind.to_string() == "group_leave"));
    let phones: Vec<&str> = events
        .iter()
        .map(|e| e.sender.as_ref().unwrap().phone.as_str())
        .collect();
    assert_eq!(phones, ["4915223344556", "4917098765432"]);
    assert_ne!(events[0].dedupe_key(), events[1].dedupe_key());
}

#[test]
fn the_event_method_and_path_modes_are_understood() {
    let body = json!({"user": {"id": "4915199988877"}, "event": {"type": "users", "method": "delete"}, "channel_id": "C"});
    assert_eq!(parse(&body)[0].status.as_deref(), Some("LOGGED_OUT"));
    let body = json!({"user": {"id": "4915199988877"}, "channel_id": "C"});
    let events = parse_webhook(WebhookBody {
        body: &body,
        path: "users/delete",
        method: "POST",
    });
    assert_eq!(events[0].status.as_deref(), Some("LOGGED_OUT"));
    let events = parse_webhook(WebhookBody {
        body: &body,
        path: "users",
        method: "DELETE",
    });
    assert_eq!(events[0].status.as_deref(), Some("LOGGED_OUT"));
}

#[test]
fn surprising_shapes_never_fail() {
    let surprises = [
        json!({}),
        json!({"messages": null}),
        json!({"messages": [1, "two", null, {"type": 5}, {"id": {"nested": true}, "from_me": "yes"}]}),
        json!({"messages": {"id": "single-object"}}),
        json!({"statuses": [{"timestamp": "not a number"}]}),
        json!({"groups_participants": [{"participants": [{"id": "4915"}], "action": "request"}]}),
        json!({"health": "fine", "qr": 1, "user": []}),
        json!({"calls": [{"timestamp": 1.5e300}]}),
        json!({"event": "messages", "channel_id": 42, "labels_removed": ["New order"]}),
    ];
    for body in &surprises {
        let events = parse(body);
        assert!(!events.is_empty(), "every body is recorded: {body}");
    }
}

/// A body whose known families hold nothing to turn into events is still one event, of kind
/// `unknown`, carrying the body exactly as it came.
#[test]
fn a_body_with_only_empty_families_is_one_unknown_event_with_the_whole_body() {
    for body in [
        json!({"messages": [], "channel_id": "ch-1"}),
        json!({"statuses": null, "event": {"type": "statuses"}}),
        json!({"groups_participants": [{"group_id": "1@g.us", "participants": []}]}),
        json!({"channel_id": "ch-2"}),
    ] {
        let events = parse(&body);
        assert_eq!(events.len(), 1, "{body}");
        assert_eq!(events[0].kind.to_string(), "unknown", "{body}");
        assert_eq!(*events[0].item, body);
        let channel = body["channel_id"].as_str().unwrap_or("default");
        assert_eq!(events[0].channel, channel);
    }
    // One family with something in it is enough for no `unknown` event.
    let events = parse(&json!({
        "messages": [],
        "groups_participants": [{"group_id": "1@g.us", "participants": [], "action": "add"},
                                {"group_id": "1@g.us", "participants": ["49151"], "action": "add"}]
    }));
    let kinds: Vec<String> = events.iter().map(|e| e.kind.to_string()).collect();
    assert_eq!(kinds, ["group_join"]);
}
