//! A reload takes the rules that did not change from the set it replaces: the result must be
//! exactly what compiling every rule again gives, errors included.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{TimeZone, Utc};

use riposte::config::SourceFile;
use riposte::engine::evaluate;
use riposte::events::{Event, WebhookBody, parse_webhook};
use riposte::rules::{RuleSet, compile_after, compile_in};
use riposte::vocab::{ChatState, Contact, Payload, Work};

use serde_json::json;

use crate::support::fixture;

const BASE: &str = r#"calendars:
  - name: office
    timezone: Europe/Berlin
    open:
      - {days: Mon-Fri, between: "09:00-18:00"}

rules:
  - name: order
    when:
      text: '(?i)order\s+(?P<number>\d+)'
    then:
      - reply: "Order {{ match.number }} is on its way"
  - name: hello
    when: {keywords: [hello]}
    then: [{reply: "Hi {{ sender.name }}"}]
  - name: open
    when: {hours: {calendar: office}, keywords: [open]}
    then: [{reply: "We are open"}]
  - name: closed
    when: {outside_hours: {calendar: office}, keywords: [open]}
    then: [{reply: "We are closed"}]
campaigns:
  - name: monday
    schedule: "0 9 * * MON"
    audience: {tags: {any: [newsletter]}}
    send: {text: "Hello {{ contact.phone }}"}
"#;

fn source(text: &str) -> SourceFile {
    SourceFile {
        path: PathBuf::from("rules.yaml"),
        text: text.to_owned(),
        root: None,
    }
}

fn cold(text: &str) -> Result<RuleSet, Vec<String>> {
    compile_in(&[source(text)], chrono_tz::UTC).map_err(strings)
}

fn after(previous: &RuleSet, text: &str) -> Result<RuleSet, Vec<String>> {
    compile_after(&[source(text)], chrono_tz::UTC, Some(previous)).map_err(strings)
}

fn strings(diagnostics: Vec<riposte::rules::Diagnostic>) -> Vec<String> {
    diagnostics.iter().map(ToString::to_string).collect()
}

fn message(text: &str) -> Event {
    let mut body = fixture("message-text-private.json");
    body["messages"][0]["text"]["body"] = json!(text);
    parse_webhook(WebhookBody {
        body: &body,
        path: "",
        method: "POST",
    })
    .remove(0)
}

/// What a set does and says about itself, for comparing two compiles of the same files.
fn behaviour(set: &RuleSet) -> Vec<String> {
    let mut out: Vec<String> = set
        .rules
        .iter()
        .map(|r| {
            format!(
                "{} {}:{} {:?} {:x} {:?} {}",
                r.name,
                r.file.display(),
                r.line,
                r.events,
                r.fingerprint,
                r.uses,
                r.enabled
            )
        })
        .collect();
    out.extend(set.campaigns.iter().map(|c| c.name.clone()));
    // Monday 10:00 and 20:00 in Berlin: the calendar decides which of two rules answers.
    for hour in [9, 19] {
        let at = Utc.with_ymd_and_hms(2026, 3, 2, hour, 0, 0).unwrap();
        for text in ["order 42", "hello", "open?", "nothing"] {
            let evaluation = evaluate(
                set,
                &message(text),
                &Contact::default(),
                &ChatState::default(),
                at,
                false,
            );
            for planned in &evaluation.planned {
                if let Work::Call(request) = &planned.work
                    && let Some(Payload::Json(body)) = &request.body
                {
                    out.push(format!("{hour}h {text} -> {}", body["body"]));
                }
            }
        }
    }
    out
}

fn same_as_cold(previous: &RuleSet, text: &str) -> Option<RuleSet> {
    let (kept, fresh) = (after(previous, text), cold(text));
    match (kept, fresh) {
        (Ok(kept), Ok(fresh)) => {
            assert_eq!(
                behaviour(&kept),
                behaviour(&fresh),
                "after editing to:\n{text}"
            );
            assert_eq!(kept.templates.len(), fresh.templates.len(), "{text}");
            Some(kept)
        }
        (Err(kept), Err(fresh)) => {
            assert_eq!(kept, fresh, "after editing to:\n{text}");
            None
        }
        (kept, fresh) => panic!(
            "reload and cold compile disagree on\n{text}\nreload: {:?}\ncold: {:?}",
            kept.map(|_| "ok"),
            fresh.map(|_| "ok")
        ),
    }
}

fn rule<'a>(set: &'a RuleSet, name: &str) -> &'a Arc<riposte::rules::Rule> {
    set.rules.iter().find(|r| r.name == name).expect(name)
}

#[test]
fn an_edit_compiles_that_rule_and_takes_the_others_as_they_were() {
    let first = cold(BASE).expect("base compiles");
    let edited = BASE.replace("Hi {{ sender.name }}", "Hello {{ sender.name }}!");
    let second = same_as_cold(&first, &edited).expect("edit compiles");
    for name in ["order", "open", "closed"] {
        assert!(
            Arc::ptr_eq(rule(&first, name), rule(&second, name)),
            "`{name}` did not change and is taken as compiled"
        );
    }
    assert!(!Arc::ptr_eq(rule(&first, "hello"), rule(&second, "hello")));
    let says = behaviour(&second);
    assert!(
        says.contains(&"9h hello -> \"Hello Anna!\"".to_owned()),
        "{says:?}"
    );
    assert!(
        says.contains(&"9h order 42 -> \"Order 42 is on its way\"".to_owned()),
        "{says:?}"
    );
}

#[test]
fn every_kind_of_edit_gives_what_a_cold_compile_gives() {
    let edits: Vec<String> = vec![
        // Lines added above every rule: each moves down, none changes.
        format!("# rules of the shop\n\n{BASE}"),
        // A rule removed, one added, two swapped.
        BASE.replace(
            "  - name: hello\n    when: {keywords: [hello]}\n    then: [{reply: \"Hi {{ sender.name }}\"}]\n",
            "",
        ),
        BASE.replace(
            "campaigns:",
            "  - name: later\n    when: {keywords: [later]}\n    then: [{reply: later}]\ncampaigns:",
        ),
        BASE.replace("name: open\n", "name: tmp\n")
            .replace("name: closed\n", "name: open\n")
            .replace("name: tmp\n", "name: closed\n"),
        // The calendar the hours rules use changes, their texts do not.
        BASE.replace("09:00-18:00", "20:00-22:00"),
        // The campaign changes, nothing the rules use does.
        BASE.replace("0 9 * * MON", "0 10 * * MON"),
        // Errors: a duplicate name, a template variable that does not exist, broken YAML.
        BASE.replace("name: closed", "name: open"),
        BASE.replace("{{ match.number }}", "{{ match.numbr }}"),
        BASE.replace("then: [{reply: \"We are open\"}]", "then: [{reply: \"We are open\"]"),
        // Shared anchors: the file cannot be read rule by rule.
        BASE.replace(
            "    then: [{reply: \"We are open\"}]",
            "    then: &answer [{reply: \"We are open\"}]",
        )
        .replace("    then: [{reply: \"We are closed\"}]", "    then: *answer"),
    ];
    let mut current = cold(BASE).expect("base compiles");
    for text in &edits {
        if let Some(next) = same_as_cold(&current, text) {
            current = next;
        }
        // And back again, from whatever the edit left.
        if let Some(next) = same_as_cold(&current, BASE) {
            current = next;
        }
    }
}

#[test]
fn moved_rules_report_their_new_lines() {
    let first = cold(BASE).expect("base compiles");
    let moved = after(&first, &format!("\n\n\n{BASE}")).expect("compiles");
    for (before, now) in first.rules.iter().zip(&moved.rules) {
        assert_eq!(now.line, before.line + 3, "{}", now.name);
    }
}

#[test]
fn templates_no_rule_uses_any_more_are_dropped() {
    let mut current = cold(BASE).expect("base compiles");
    let held = current.templates.len();
    for n in 0..20 {
        let text = BASE.replace("We are open", &format!("We are open ({n}) {{{{ text }}}}"));
        current = after(&current, &text).expect("compiles");
        assert_eq!(current.templates.len(), held + 1, "edit {n}");
    }
}

#[test]
fn an_ai_reply_reads_its_knowledge_again_though_its_text_is_unchanged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = "rules:\n  - name: assistant\n    then:\n      - ai_reply:\n          system: Answer briefly.\n          knowledge: [faq.md]\n";
    std::fs::write(dir.path().join("rules.yaml"), rules).expect("write rules");
    std::fs::write(dir.path().join("faq.md"), "We open at nine.").expect("write faq");
    let paths = [dir.path().to_owned()];
    let first = riposte::rules::load(&paths).expect("loads");
    std::fs::write(dir.path().join("faq.md"), "We open at ten.").expect("write faq");
    let second = riposte::rules::load_after(&paths, chrono_tz::UTC, &first).expect("loads");
    let knowledge = second
        .knowledge("", "assistant")
        .expect("the rule has knowledge");
    assert!(knowledge.contains("We open at ten."), "{knowledge}");
}
