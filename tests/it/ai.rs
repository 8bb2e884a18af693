//! `ai_reply` against a stand-in language model on loopback (the stand-in Whapi.Cloud answers
//! `/v1/chat/completions` too): the exact prompt and history sent, answers, handoff, timeout,
//! memory across a restart, shadow mode.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::support::{Received, Riposte, fixture};

const AGENTS: &str = "120363041234567890@g.us";

fn rules(extra: &str) -> String {
    format!(
        r##"
rules:
  - name: opening-hours
    when: {{keywords: [hours]}}
    then:
      - reply: "We open 9 to 5."
    stop: true
  - name: assistant
    then:
      - ai_reply:
          system: "You answer for Acme. The customer is {{{{ sender.name }}}} on the {{{{ contact.attrs.plan | default('free') }}}} plan."
          knowledge: [faq.md]
          history: 3
          timeout: 1s
          attempts: 1
          fallback: "Sorry, a colleague will answer soon."
          handoff:
            for: 24h
            resume_on: "#bot"
            notify: {{to: "{AGENTS}", text: "{{{{ sender.name }}}} needs a human in {{{{ chat.id }}}}"}}
{extra}"##
    )
}

const FAQ: &str = "Returns are free within 30 days.";

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A text from the contact (or, with `source`, from the business's own phone).
fn message(n: u32, text: &str, from_me: Option<&str>) -> Value {
    let mut body = fixture("message-text-private.json");
    body["messages"][0]["id"] = json!(format!("msg-{n}"));
    body["messages"][0]["text"]["body"] = json!(text);
    if let Some(source) = from_me {
        body["messages"][0]["from_me"] = json!(true);
        body["messages"][0]["source"] = json!(source);
    }
    body
}

/// The stand-in model answers `Answer to: <last user message>`, with token usage; Whapi
/// sends get Whapi's answer.
fn answer_with_echo(riposte: &Riposte) {
    riposte.whapi.respond_with(|r| {
        if !is_model(r) {
            return (200, r#"{"sent":true,"message":{"id":"out-1"}}"#.into());
        }
        let last = r.body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_owned();
        let answer = json!({
            "choices": [{"message": {"role": "assistant", "content": format!("Answer to: {last}")}}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 8}
        });
        (200, answer.to_string())
    });
}

fn is_model(r: &Received) -> bool {
    r.path == "/v1/chat/completions"
}

fn model_calls(riposte: &Riposte) -> Vec<Received> {
    riposte
        .whapi
        .received()
        .into_iter()
        .filter(is_model)
        .collect()
}

/// `(to, text)` of every message sent through Whapi.Cloud.
fn sent(riposte: &Riposte) -> Vec<(String, String)> {
    riposte
        .whapi
        .received()
        .iter()
        .filter(|r| r.path == "/messages/text")
        .map(|r| {
            (
                r.body["to"].as_str().unwrap_or_default().to_owned(),
                r.body["body"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// `(role, content)` of a model request's messages after the system prompt.
fn turns(call: &Received) -> Vec<(String, String)> {
    call.body["messages"].as_array().unwrap()[1..]
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

const CHAT: &str = "4915112345678@s.whatsapp.net";

async fn say(riposte: &Riposte, n: u32, text: &str, from_me: Option<&str>) {
    riposte.webhook(&message(n, text, from_me)).await;
    riposte.wait_events(n as usize).await;
    riposte.wait_jobs_settled().await;
}

#[tokio::test]
async fn the_model_gets_the_prompt_the_knowledge_and_the_last_turns_and_its_answer_is_sent() {
    let riposte = Riposte::start_at(&rules(""), start(), &[("faq.md", FAQ)]).await;
    answer_with_echo(&riposte);
    let tokens_before = riposte.metric("riposte_ai_prompt_tokens_total").await;
    say(&riposte, 1, "Do you ship to Austria?", None).await;
    say(&riposte, 2, "What are your hours?", None).await;
    say(&riposte, 3, "Can I return shoes?", None).await;

    let calls = model_calls(&riposte);
    assert_eq!(
        calls.len(),
        2,
        "the keyword rule answered the second message"
    );
    let last = &calls[1];
    assert_eq!(
        last.headers["authorization"].to_str().unwrap(),
        "Bearer llm-test-key"
    );
    assert_eq!(last.body["model"], "test-model");
    assert_eq!(last.body["tools"][0]["function"]["name"], "handoff");
    let system = &last.body["messages"][0];
    assert_eq!(system["role"], "system");
    assert_eq!(
        system["content"],
        format!(
            "You answer for Acme. The customer is Anna on the free plan.\n\n# Knowledge\n\n## faq.md\n\n{FAQ}"
        )
    );
    // history: 3 — the first question and its answer are dropped; the rule's reply counts.
    assert_eq!(
        turns(last),
        [
            pair("user", "What are your hours?"),
            pair("assistant", "We open 9 to 5."),
            pair("user", "Can I return shoes?"),
        ]
    );
    assert_eq!(
        sent(&riposte),
        [
            pair(CHAT, "Answer to: Do you ship to Austria?"),
            pair(CHAT, "We open 9 to 5."),
            pair(CHAT, "Answer to: Can I return shoes?"),
        ]
    );
    assert!(riposte.metric("riposte_ai_prompt_tokens_total").await >= tokens_before + 240);
}

#[tokio::test]
async fn a_handoff_tool_call_mutes_the_bot_and_notifies_the_agents_with_the_reason() {
    let riposte = Riposte::start_at(&rules(""), start(), &[("faq.md", FAQ)]).await;
    riposte.whapi.respond_with(|r| {
        if !is_model(r) {
            return (200, r#"{"sent":true,"message":{"id":"out-1"}}"#.into());
        }
        let call = json!({"choices": [{"message": {"content": null, "tool_calls": [{
            "id": "call-1", "type": "function",
            "function": {"name": "handoff", "arguments": "{\"reason\":\"wants a refund of 800 EUR\"}"}
        }]}}]});
        (200, call.to_string())
    });
    say(&riposte, 1, "I want my money back", None).await;
    assert_eq!(
        sent(&riposte),
        [pair(
            AGENTS,
            &format!(
                "Anna needs a human in {CHAT}\n\nReason: the model handed off: wants a refund of 800 EUR"
            )
        )]
    );
    // The chat is the agent's now: the next message reaches neither the model nor the chat.
    say(&riposte, 2, "hello?", None).await;
    assert_eq!(model_calls(&riposte).len(), 1);
    assert_eq!(sent(&riposte).len(), 1);
    let events = riposte.wait_events(2).await;
    let held = events[1]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "assistant")
        .unwrap();
    assert_eq!(held["result"], "held", "{held}");
}

#[tokio::test]
async fn a_model_that_does_not_answer_in_time_gets_the_fallback_sent() {
    let riposte = Riposte::start_at(&rules(""), start(), &[("faq.md", FAQ)]).await;
    answer_with_echo(&riposte);
    riposte.whapi.delay("/v1/", Duration::from_secs(5));
    say(&riposte, 1, "Are you there?", None).await;
    assert_eq!(model_calls(&riposte).len(), 1);
    assert_eq!(
        sent(&riposte),
        [pair(CHAT, "Sorry, a colleague will answer soon.")]
    );
    let jobs = riposte.wait_jobs_settled().await;
    let model_job = jobs.iter().find(|j| j["work"]["ai"].is_object()).unwrap();
    let response = model_job["response"].as_str().unwrap();
    assert!(response.contains("did not answer within"), "{response}");
}

#[tokio::test]
async fn the_conversation_survives_a_restart_and_includes_the_agent_but_not_our_echo() {
    let mut riposte = Riposte::start_at(&rules(""), start(), &[("faq.md", FAQ)]).await;
    answer_with_echo(&riposte);
    say(&riposte, 1, "Is the red one in stock?", None).await;
    riposte.restart().await;
    // Our own API send comes back as `from_me` with `source: api`: already remembered.
    say(
        &riposte,
        2,
        "Answer to: Is the red one in stock?",
        Some("api"),
    )
    .await;
    say(&riposte, 3, "Let me check the warehouse.", Some("mobile")).await;
    say(&riposte, 4, "Thanks!", None).await;
    let calls = model_calls(&riposte);
    assert_eq!(calls.len(), 2);
    // history: 3 — the newest three turns, from before and after the restart.
    assert_eq!(
        turns(&calls[1]),
        [
            pair("assistant", "Answer to: Is the red one in stock?"),
            pair("assistant", "Let me check the warehouse."),
            pair("user", "Thanks!"),
        ]
    );
}

#[tokio::test]
async fn shadow_mode_asks_the_model_and_records_the_answer_without_sending() {
    let shadow = rules("          mode: shadow\n");
    let riposte = Riposte::start_at(&shadow, start(), &[("faq.md", FAQ)]).await;
    answer_with_echo(&riposte);
    say(&riposte, 1, "Do you deliver on Sundays?", None).await;
    assert_eq!(model_calls(&riposte).len(), 1);
    assert_eq!(sent(&riposte), []);
    let jobs = riposte.wait_jobs_settled().await;
    assert_eq!(jobs.len(), 1, "no send job: {jobs:?}");
    let response: Value = serde_json::from_str(jobs[0]["response"].as_str().unwrap()).unwrap();
    assert_eq!(
        response,
        json!({"shadow": true, "answer": "Answer to: Do you deliver on Sundays?"})
    );
}

/// Every problem `riposte check` reports for a rule file beside `files`.
fn check(rules: &str, files: &[(&str, String)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), rules).unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    match riposte::rules::load(&[dir.path().to_owned()]) {
        Ok(_) => Vec::new(),
        Err(diagnostics) => diagnostics
            .iter()
            .map(|d| {
                let shown = d.to_string();
                shown[shown.find("rules.yaml").unwrap()..].to_owned()
            })
            .collect(),
    }
}

#[test]
fn check_reports_knowledge_too_large_or_missing_and_bad_settings_where_they_are() {
    let rule = |knowledge: &str, extra: &str| {
        format!(
            "rules:\n  - name: a\n    then:\n      - ai_reply:\n          system: hi\n          knowledge: [{knowledge}]\n{extra}"
        )
    };
    assert_eq!(
        check(&rule("small.md", ""), &[("small.md", "ok".into())]),
        Vec::<String>::new()
    );
    assert_eq!(
        check(&rule("big.md", ""), &[("big.md", "x".repeat(70 * 1024))]),
        [
            "rules.yaml:6:22: error: knowledge is 71 KiB, more than the limit of 64 KiB (it is sent with every model call): shorten the files"
        ]
    );
    let missing = check(&rule("gone.md", ""), &[]);
    assert_eq!(missing.len(), 1);
    assert!(
        missing[0].starts_with("rules.yaml:6:22: error: cannot read knowledge file"),
        "{missing:?}"
    );
    let bad = "          temperature: 3\n          per_chat: 10/fortnight\n          histroy: 5\n";
    assert_eq!(
        check(&rule("small.md", bad), &[("small.md", "ok".into())]),
        ["rules.yaml:9:11: error: unknown field `histroy`, did you mean `history`?"]
    );
    let bad = "          temperature: 3\n          per_chat: 10/fortnight\n";
    assert_eq!(
        check(&rule("small.md", bad), &[("small.md", "ok".into())]),
        [
            "rules.yaml:7:24: error: `temperature` must be between 0 and 2",
            "rules.yaml:8:21: error: invalid rate `10/fortnight`, expected e.g. `30/min`, `1/s` or `500/h`"
        ]
    );
}

#[tokio::test]
async fn a_chat_over_its_per_chat_limit_gets_no_model_call() {
    let limited = rules("          per_chat: 1/h\n");
    let riposte = Riposte::start_at(&limited, start(), &[("faq.md", FAQ)]).await;
    answer_with_echo(&riposte);
    let limited_before = riposte.metric("riposte_ai_limited_total").await;
    say(&riposte, 1, "First question", None).await;
    say(&riposte, 2, "Second question", None).await;
    assert_eq!(model_calls(&riposte).len(), 1);
    assert_eq!(sent(&riposte), [pair(CHAT, "Answer to: First question")]);
    let jobs = riposte.wait_jobs_settled().await;
    assert!(
        jobs.iter().any(|j| j["status"] == "skipped"
            && j["last_error"]
                .as_str()
                .unwrap_or_default()
                .contains("per_chat")),
        "{jobs:#?}"
    );
    assert!(riposte.metric("riposte_ai_limited_total").await > limited_before);
}

#[tokio::test]
async fn a_message_queued_behind_a_handoff_is_left_to_the_person() {
    let riposte = Riposte::start_at(&rules(""), start(), &[("faq.md", FAQ)]).await;
    riposte.whapi.respond_with(|r| {
        if !is_model(r) {
            return (200, r#"{"sent":true,"message":{"id":"out-1"}}"#.into());
        }
        let call = json!({"choices": [{"message": {"tool_calls": [{
            "function": {"name": "handoff", "arguments": "{\"reason\":\"angry customer\"}"}
        }]}}]});
        (200, call.to_string())
    });
    // Two messages in one webhook: both model jobs are queued before the first one runs.
    let mut body = message(1, "This is the third time I write!", None);
    let mut second = body["messages"][0].clone();
    second["id"] = json!("msg-2");
    second["text"]["body"] = json!("Hello???");
    body["messages"].as_array_mut().unwrap().push(second);
    riposte.webhook(&body).await;
    riposte.wait_events(2).await;
    let jobs = riposte.wait_jobs_settled().await;
    assert_eq!(model_calls(&riposte).len(), 1, "{jobs:#?}");
    assert_eq!(sent(&riposte).len(), 1, "only the notification");
    assert!(
        jobs.iter().any(|j| j["status"] == "skipped"
            && j["last_error"]
                .as_str()
                .unwrap_or_default()
                .contains("a human has this chat")),
        "{jobs:#?}"
    );
}

#[tokio::test]
async fn model_jobs_over_the_global_rate_wait_their_turn_without_holding_a_worker() {
    const RULES: &str =
        "rules:\n  - name: ai\n    then:\n      - ai_reply: {system: hi, fallback: later}\n";
    let riposte = Riposte::start_with(RULES, |s| {
        s.llm_rate = Some(Duration::from_secs(3600));
    })
    .await;
    answer_with_echo(&riposte);
    riposte.webhook(&message(1, "first", None)).await;
    let mut other = message(2, "second", None);
    other["messages"][0]["chat_id"] = json!("4917000000001@s.whatsapp.net");
    other["messages"][0]["from"] = json!("4917000000001");
    riposte.webhook(&other).await;
    let jobs = riposte
        .wait_jobs("one answer and one model job waiting", |jobs| {
            jobs.iter().any(|j| {
                j["status"] == "pending"
                    && j["last_error"] == "waiting for the model's rate (--llm-rate)"
            }) && jobs.iter().filter(|j| j["status"] == "done").count() == 2
        })
        .await;
    assert_eq!(model_calls(&riposte).len(), 1, "{jobs:#?}");
    let waiting = jobs.iter().find(|j| j["status"] == "pending").unwrap();
    assert_eq!(
        waiting["attempts"], 0,
        "waiting is not an attempt: {waiting}"
    );
}
