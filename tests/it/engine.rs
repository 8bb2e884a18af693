//! Conditions and rule flow, evaluated directly: which rules match, and what `--explain` says.

use std::fmt::Write;
use std::path::PathBuf;
use std::sync::LazyLock;

use chrono::{TimeZone, Utc};

use riposte::config::SourceFile;
use riposte::engine::{Evaluation, RuleOutcome, evaluate};
use riposte::events::{Event, WebhookBody, parse_webhook};
use riposte::rules::{RuleSet, compile};
use riposte::vocab::{ChatState, Contact, Payload, Work};

use serde_json::{Value, json};

use crate::support::fixture;

fn rules(yaml: &str) -> RuleSet {
    let source = SourceFile {
        path: PathBuf::from("test.yaml"),
        text: yaml.to_owned(),
        root: None,
    };
    compile(&[source]).unwrap_or_else(|d| {
        panic!(
            "{}",
            d.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

fn event(body: &Value) -> Event {
    parse_webhook(WebhookBody {
        body,
        path: "",
        method: "POST",
    })
    .remove(0)
}

fn text_message(text: &str, from: &str, chat: &str) -> Event {
    let mut body = fixture("message-text-private.json");
    body["messages"][0]["text"]["body"] = json!(text);
    body["messages"][0]["from"] = json!(from);
    body["messages"][0]["chat_id"] = json!(chat);
    event(&body)
}

fn run(set: &RuleSet, event: &Event, contact: &Contact) -> Evaluation {
    evaluate(
        set,
        event,
        contact,
        &ChatState::default(),
        Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap(),
        true,
    )
}

fn matched(evaluation: &Evaluation) -> Vec<&str> {
    evaluation
        .rules
        .iter()
        .filter(|r| matches!(r.outcome, RuleOutcome::Matched { .. }))
        .map(|r| r.rule.as_str())
        .collect()
}

fn why(evaluation: &Evaluation, rule: &str) -> String {
    let trace = evaluation.rules.iter().find(|r| r.rule == rule).unwrap();
    match &trace.outcome {
        RuleOutcome::Failed { condition, detail } => format!("{condition}: {detail}"),
        other => format!("{other:?}"),
    }
}

fn sent_texts(evaluation: &Evaluation) -> Vec<String> {
    evaluation
        .planned
        .iter()
        .filter_map(|p| match &p.work {
            Work::Call(r) => match &r.body {
                Some(Payload::Json(b)) => b["body"].as_str().map(str::to_owned),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn stop_shadow_and_disabled_shape_the_flow() {
    let set = rules(
        r#"
rules:
  - name: off
    enabled: false
    then: [{reply: "never"}]
  - name: trial
    mode: shadow
    then: [{reply: "shadow reply"}, {tag: tried}]
  - name: first
    when: {keywords: [hello]}
    then: [{reply: "first"}]
    stop: true
  - name: second
    then: [{reply: "second"}]
"#,
    );
    let result = run(
        &set,
        &text_message(
            "hello there",
            "4915112345678",
            "4915112345678@s.whatsapp.net",
        ),
        &Contact::default(),
    );
    assert_eq!(matched(&result), ["trial", "first"]);
    assert_eq!(sent_texts(&result), ["first"], "shadow rules plan nothing");
    assert!(
        result.contact.tags.is_empty(),
        "shadow rules change no contact"
    );
    assert_eq!(why(&result, "off"), "Disabled");
    assert_eq!(why(&result, "second"), "Stopped { by: \"first\" }");
}

#[test]
fn sender_chat_and_tag_conditions() {
    let set = rules(
        r#"
rules:
  - name: germany
    when: {from: "+49*", not_from: "4915199988877"}
    then: [{reply: "de"}]
  - name: groups-only
    when: {chat: group, chat_id: "*@g.us"}
    then: [{reply: "group"}]
  - name: vip
    when: {tags: {all: [vip], none: [blocked]}}
    then: [{reply: "vip"}]
  - name: either
    when:
      any:
        - {keywords: [refund]}
        - all: [{from: "4917*"}, {text: '(?i)angebot'}]
    then: [{reply: "either"}]
  - name: expression
    when:
      if: "text | length > 20 and 'vip' in contact.tags"
    then: [{reply: "long vip"}]
"#,
    );
    let vip = Contact {
        tags: ["vip".to_owned()].into(),
        ..Contact::default()
    };
    let result = run(
        &set,
        &text_message(
            "Ist das Angebot noch gültig bitte?",
            "4917098765432",
            "120363041234567890@g.us",
        ),
        &vip,
    );
    assert_eq!(
        matched(&result),
        ["germany", "groups-only", "vip", "either", "expression"]
    );

    let result = run(
        &set,
        &text_message("hi", "4915199988877", "4915199988877@s.whatsapp.net"),
        &Contact::default(),
    );
    assert_eq!(matched(&result), Vec::<&str>::new());
    assert_eq!(
        why(&result, "germany"),
        "not_from: sender \"4915199988877\" matches 4915199988877"
    );
    assert_eq!(
        why(&result, "groups-only"),
        "chat: chat is \"private\" not group"
    );
    assert_eq!(why(&result, "vip"), "tags: contact lacks `vip`");
    assert!(
        why(&result, "either")
            .starts_with("any: no block held (keywords: none of [refund] in \"hi\""),
        "{}",
        why(&result, "either")
    );
    assert_eq!(
        why(&result, "expression"),
        "if: `text | length > 20 and 'vip' in contact.tags` is false"
    );
}

/// Each part of an event's context is converted for the first rule that reads it; the rules
/// after it, and the ones before that read nothing of it, see the same values.
#[test]
fn rules_reading_different_parts_of_the_context_each_see_them() {
    let set = rules(
        r#"
rules:
  - name: plain
    when: {text: "^hello"}
    then: [{reply: "plain {{ text }} from {{ sender.name }}"}]
  - name: raw-item
    when: {text: "^hello", if: "item.from_me == false"}
    then: [{reply: "item {{ item.id }} {{ message.text.body }}"}]
  - name: plain-again
    when: {text: "^hello"}
    then: [{reply: "again {{ event.kind }} {{ chat.id }}"}]
"#,
    );
    let mut body = fixture("message-text-private.json");
    body["messages"][0]["text"]["body"] = json!("hello there");
    body["messages"][0]["id"] = json!("m-ctx");
    let event = event(&body);
    let sender = event.sender.as_ref().and_then(|s| s.name.clone()).unwrap();
    let chat = event.chat.as_ref().map(|c| c.id.clone()).unwrap();
    let result = run(&set, &event, &Contact::default());
    assert_eq!(
        sent_texts(&result),
        vec![
            format!("plain hello there from {sender}"),
            "item m-ctx hello there".to_owned(),
            format!("again message {chat}"),
        ]
    );
}

#[test]
fn keywords_match_whole_words_in_any_case() {
    let set = rules(
        "rules:\n  - name: k\n    when: {keywords: [stop, \"c++\", wie viel]}\n    then: [{reply: k}]\n",
    );
    for (text, expected) in [
        ("STOP", true),
        ("please stop!", true),
        ("stopping", false),
        ("nonstop", false),
        ("I like C++ a lot", true),
        ("Wie  viel kostet das?", true),
    ] {
        let result = run(
            &set,
            &text_message(text, "1", "1@s.whatsapp.net"),
            &Contact::default(),
        );
        assert_eq!(!matched(&result).is_empty(), expected, "{text}");
    }
}

#[test]
fn event_specific_conditions() {
    let set = rules(
        r#"
rules:
  - name: heart
    when: {event: reaction, emoji: ["❤️", "😍"]}
    then: [{react: "🙌"}]
  - name: read
    when: {event: status, status: [read, played]}
    then: [{tag: reads-us}]
  - name: cart
    when: {event: [custom:cart_abandoned, custom:cart_saved], name: cart_abandoned}
    then: [{reply: "cart {{ data.id }}"}]
  - name: images
    when: {type: [image, video]}
    then: [{reply: "nice picture"}]
"#,
    );
    let reaction = event(
        &fixture("batch-multiple-messages.json")["messages"][2]
            .clone()
            .pipe(|m| json!({"messages": [m]})),
    );
    assert_eq!(
        matched(&run(&set, &reaction, &Contact::default())),
        ["heart"]
    );
    let read = event(&fixture("status-read.json"));
    let result = run(&set, &read, &Contact::default());
    assert_eq!(matched(&result), ["read"]);
    assert!(result.contact.tags.contains("reads-us"));
    let cart = Event::custom(
        "cart_abandoned",
        "e1",
        json!({"phone": "4915112345678", "id": "c-9"}),
    );
    let result = run(&set, &cart, &Contact::default());
    assert_eq!(sent_texts(&result), ["cart c-9"]);
    assert_eq!(
        why(&result, "images"),
        "event: expected message but the event is custom:cart_abandoned"
    );
    let image = event(&fixture("message-image-caption.json"));
    assert_eq!(matched(&run(&set, &image, &Contact::default())), ["images"]);
}

#[test]
fn a_failing_action_does_not_stop_the_others() {
    let set = rules(
        "rules:\n  - name: r\n    then:\n      - reply: \"Hi {{ sender.name }}\"\n      - tag: reached\n",
    );
    let mut body = fixture("message-text-private.json");
    body["messages"][0]
        .as_object_mut()
        .unwrap()
        .remove("from_name");
    let result = run(&set, &event(&body), &Contact::default());
    let RuleOutcome::Matched { actions, .. } = &result.rules[0].outcome else {
        panic!("{:?}", result.rules[0])
    };
    assert_eq!(
        actions[0].error.as_deref(),
        Some("`sender.name` is not defined for this event (`sender` has: phone)")
    );
    assert_eq!(actions[0].source.as_deref(), Some("test.yaml:4"));
    assert!(result.contact.tags.contains("reached"));
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl Pipe for Value {}

/// Rules the prefilter gates in every way it can: by required literals (with word boundaries,
/// captures, Unicode case variants, optional letters and alternatives), by automaton (a regex
/// that matches the empty text, or one that requires no literal, whose Unicode classes the
/// prefilter widens to all of non-ASCII), keywords and phrases, a `text` inside `any` (never a
/// gate), and a rule with no text condition at all.
const GATED: &str = r#"
rules:
  - name: order
    when: {text: '(?i)\border\s+#?(?P<n>\d{2,})\b'}
    then: [{reply: "{{ match.n }}"}]
  - name: empty
    when: {text: '^$'}
    then: [{reply: "empty"}]
  - name: umlaut
    when: {text: '(?i)\bgrö(ß|ss)e\b'}
    then: [{reply: "size"}]
  - name: kelvin
    when: {text: '(?i)kelvin\s\d'}
    then: [{reply: "kelvin"}]
  - name: word-start
    when: {text: '\bab'}
    then: [{reply: "ab"}]
  - name: alternatives
    when: {text: '(?i)colou?r|refund|money\s?back'}
    then: [{reply: "alt"}]
  - name: no-literal
    when: {text: '^\w\s\d+$'}
    then: [{reply: "w d"}]
  - name: keywords
    when: {keywords: [stop, "wie viel", "c++", "👍"]}
    then: [{reply: "kw"}]
  - name: regex-and-keyword
    when: {keywords: [hello], text: '\d'}
    then: [{reply: "both"}]
  - name: inside-any
    when: {any: [{text: 'xyz'}, {keywords: [abc]}]}
    then: [{reply: "any"}]
  - name: always
    when: {chat: private}
    then: [{reply: "always"}]
"#;

/// [`GATED`] as it is.
static FEW: LazyLock<RuleSet> = LazyLock::new(|| rules(GATED));

/// [`GATED`] and 300 regex rules more, whose literals no test text holds: enough regexes for the
/// prefilter to gate them by their literals, which it does only where that spares a search.
static MANY: LazyLock<RuleSet> = LazyLock::new(|| {
    let mut yaml = GATED.to_owned();
    for i in 0..300 {
        let _ = writeln!(
            yaml,
            "  - name: filler-{i}\n    when: {{text: 'zq{i}x'}}\n    then: [{{reply: f}}]"
        );
    }
    rules(&yaml)
});

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// The prefilter only skips rules that would not have matched: the rules that fire are the
    /// same with it (the server's path) as without it (explain mode evaluates every rule).
    #[test]
    fn prefilter_skips_only_rules_that_cannot_match(
        words in proptest::collection::vec(
            proptest::sample::select(vec![
                "order", "ORDER", "#42", "4242", "reorder", "größe", "GRÖSSE", "grösser", "ab",
                "cab", "abc", "stop", "stopping", "Wie", "viel", "c++", "👍", "hello", "7", "xyz",
                "é", "", " ", "\n", ".", "Ω", "\u{212a}elvin", "kelvin", "\u{2003}", "٤٢",
                "colour", "COLOR", "colr", "money", "BAC\u{212a}", "moneyback", "Refund", "x",
            ]),
            0..8,
        ),
        glue in proptest::sample::select(vec!["", " ", "  ", "-"]),
    ) {
        let text = words.join(glue);
        let event = text_message(&text, "4915112345678", "4915112345678@s.whatsapp.net");
        let now = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap();
        let (contact, chat) = (Contact::default(), ChatState::default());
        for set in [&*FEW, &*MANY] {
            let fast = evaluate(set, &event, &contact, &chat, now, false);
            let full = evaluate(set, &event, &contact, &chat, now, true);
            proptest::prop_assert_eq!(matched(&fast), matched(&full), "text {:?}", text);
            proptest::prop_assert!(fast.checked <= set.rules.len());
        }
    }
}

/// A private text message evaluated as the server does, through the prefilter.
fn prefiltered(set: &RuleSet, text: &str) -> Evaluation {
    let event = text_message(text, "4915112345678", "4915112345678@s.whatsapp.net");
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap();
    evaluate(
        set,
        &event,
        &Contact::default(),
        &ChatState::default(),
        now,
        false,
    )
}

#[test]
fn prefilter_leaves_only_rules_without_a_gate_for_an_unrelated_text() {
    for set in [&*FEW, &*MANY] {
        let fast = prefiltered(set, "see you tomorrow");
        // `inside-any` and `always` have no gate; every other rule was ruled out unevaluated.
        assert_eq!(fast.checked, 2);
        assert_eq!(matched(&fast), ["always"]);
        assert_eq!(
            fast.rules.len(),
            1,
            "failed rules are not recorded outside explain mode"
        );
    }
}

#[test]
fn prefilter_searches_only_the_automata_whose_literals_are_in_the_text() {
    let checked = |text: &str| {
        let fast = prefiltered(&MANY, text);
        let fired: Vec<String> = matched(&fast).into_iter().map(str::to_owned).collect();
        (fast.checked, fired)
    };
    // `order` requires `order`, which opens its automaton; with the two rules without a gate,
    // three are evaluated, and a fourth for the digits (`regex-and-keyword` requires no
    // literal, so its automaton is searched for every text).
    assert_eq!(
        checked("ORDER #42"),
        (4, vec!["order".into(), "always".into()])
    );
    // The literal opens the automaton, which finds that the regex does not match.
    assert_eq!(checked("reorder soon"), (2, vec!["always".into()]));
    // Fillers share `order`'s chunk: the literal opens it, and its automaton tells them apart.
    assert_eq!(
        checked("zq7 order 42"),
        (4, vec!["order".into(), "always".into()])
    );
    assert_eq!(
        checked("zq7x"),
        (4, vec!["always".into(), "filler-7".into()])
    );
    assert_eq!(
        checked("Money back?"),
        (3, vec!["alternatives".into(), "always".into()])
    );
}

const DATES: &str = r#"
calendars:
  - name: bakery
    timezone: Europe/Bucharest
    open:
      - {days: Mon-Fri, between: "07:00-18:00"}
rules:
  - name: booked
    timezone: America/Sao_Paulo
    when:
      event: custom:booked
      if: "data.day == today"
    then:
      - send:
          to: "{{ data.phone }}"
          text: >-
            {{ today | date('%A %-d %B', 'pt') | capitalize }}, {{ data.at | date('%H:%M') }}:
            {{ data.total | money('BRL', 'pt') }}; bakery {{ hours_today('bakery') }}
      - tag: booked
"#;

/// 01:30 UTC on Tuesday 3 March: still Monday evening in São Paulo, Tuesday in Bucharest.
fn booked(data: Value) -> Evaluation {
    let set = rules(DATES);
    let event = Event::custom("booked", "b1", data);
    evaluate(
        &set,
        &event,
        &Contact::default(),
        &ChatState::default(),
        Utc.with_ymd_and_hms(2026, 3, 3, 1, 30, 0).unwrap(),
        true,
    )
}

#[test]
fn dates_money_and_today_are_written_in_the_rules_zone() {
    let result = booked(json!({
        "phone": "5511987654321",
        "day": "2026-03-02",
        "at": "2026-03-03T01:30:00Z",
        "total": 1234.5,
    }));
    assert_eq!(
        matched(&result),
        ["booked"],
        "`if:` sees today in the rule's zone"
    );
    // The calendar answers in its own zone, where it is already Tuesday.
    assert_eq!(
        sent_texts(&result),
        ["Segunda-feira 2 março, 22:30: R$\u{a0}1.234,50; bakery 07:00–18:00"]
    );
    let result = booked(json!({"phone": "5511987654321", "day": "2026-03-03"}));
    assert!(matched(&result).is_empty(), "UTC's date is not the rule's");
}

#[test]
fn a_date_the_rule_did_not_expect_names_the_field_it_came_from() {
    let result = booked(json!({
        "phone": "5511987654321",
        "day": "2026-03-02",
        "at": "amanhã 10h",
        "total": 10,
    }));
    let RuleOutcome::Matched { actions, .. } = &result.rules[0].outcome else {
        panic!("{:?}", result.rules[0])
    };
    let error = actions[0].error.as_deref().unwrap_or_default();
    assert!(
        error.contains("date: `data.at` is `amanhã 10h`, which is not a date (RFC 3339"),
        "{error}"
    );
    assert!(
        result.contact.tags.contains("booked"),
        "the next action ran"
    );
}

#[test]
fn after_a_lookup_the_rule_still_writes_in_its_zone() {
    let set = rules(
        r#"
rules:
  - name: pickup
    timezone: Asia/Tokyo
    when:
      event: custom:pickup
    then:
      - lookup: {as: slot, url: "https://shop.example/slot"}
      - send:
          to: "{{ data.phone }}"
          text: "{{ lookup.slot.at | date('%a %H:%M', 'fr') }} ({{ today }})"
"#,
    );
    let event = Event::custom("pickup", "p1", json!({"phone": "4915112345678"}));
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 20, 0, 0).unwrap();
    let asked = evaluate(
        &set,
        &event,
        &Contact::default(),
        &ChatState::default(),
        now,
        false,
    );
    let Some(Work::Lookup(call)) = asked.planned.first().map(|p| &p.work) else {
        panic!("{:?}", asked.planned)
    };
    let answer = json!({"at": "2026-03-02T23:15:00Z"});
    let later = now + chrono::Duration::minutes(1);
    let went_on =
        riposte::engine::resume(&set, call, Ok(answer), &Contact::default(), later).unwrap();
    // 23:15 UTC on Monday is 08:15 on Tuesday in Tokyo, where it is already 3 March.
    assert_eq!(sent_texts(&went_on), ["mar 08:15 (2026-03-03)"]);
}

#[test]
fn reply_id_globs_and_regexes_match_the_id_as_the_rule_sent_it() {
    let set = rules(
        r#"
rules:
  - name: exact
    when: {event: [button_reply, list_reply], reply_id: [btn_cancel, size_m]}
    then: [{tag: exact}]
  - name: glob
    when: {event: [button_reply, list_reply], reply_id: "btn_*"}
    then: [{tag: glob}]
  - name: one-char
    when: {event: list_reply, reply_id: "size_?"}
    then: [{tag: one-char}]
  - name: prefixed-glob
    when: {event: button_reply, reply_id: "ButtonsV3:btn_c*"}
    then: [{tag: prefixed}]
  - name: regex
    when: {event: [button_reply, list_reply], reply_id: '/^size_[sml]$/'}
    then: [{tag: regex}]
  - name: glob-is-whole-id
    when: {event: button_reply, reply_id: "confirm*"}
    then: [{tag: never}]
"#,
    );
    let button = event(&fixture("message-button-reply.json"));
    let list = event(&fixture("message-list-reply.json"));
    let tapped = run(&set, &button, &Contact::default());
    assert_eq!(matched(&tapped), ["glob", "prefixed-glob"]);
    assert_eq!(
        matched(&run(&set, &list, &Contact::default())),
        ["exact", "one-char", "regex"]
    );
    assert_eq!(
        why(&tapped, "exact"),
        r#"reply_id: "btn_confirm" is not btn_cancel or size_m"#
    );
    assert_eq!(
        why(&tapped, "regex"),
        r#"reply_id: "btn_confirm" does not match /^size_[sml]$/"#
    );
    assert_eq!(
        why(&tapped, "glob-is-whole-id"),
        r#"reply_id: "btn_confirm" does not match confirm*"#
    );
}

#[test]
fn a_reply_id_regex_that_does_not_compile_is_an_error_where_it_fails() {
    let source = SourceFile {
        path: PathBuf::from("test.yaml"),
        text: "rules:\n  - name: r\n    when:\n      event: button_reply\n      reply_id: [ok, '/slot-(\\d+/']\n    then: [{tag: x}]\n".to_owned(),
        root: None,
    };
    let Err(errors) = compile(&[source]) else {
        panic!("the regex is refused");
    };
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        ["test.yaml:5:29: error: invalid regex: unclosed group"]
    );
}
