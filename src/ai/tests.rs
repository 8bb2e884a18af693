use chrono::TimeZone;

use super::model::Usage;
use super::*;
use crate::vocab::{AiHandoff, JobId, JobStatus, Payload, RuleName};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

fn call() -> AiCall {
    AiCall {
        chat: "4915112345678@s.whatsapp.net".into(),
        system: "You help.".into(),
        knowledge: None,
        model: None,
        history: 20,
        history_chars: 8000,
        forget_after_s: 86_400,
        max_tokens: None,
        temperature: None,
        timeout_ms: 1000,
        attempts: 2,
        fallback: Some("A colleague will answer soon.".into()),
        max_reply: 1000,
        per_chat: None,
        shadow: false,
        handoff: Some(AiHandoff {
            for_s: 3600,
            resume_on: Some("#bot".into()),
            notify: Some(crate::vocab::OutboundRequest::text_message(
                "4930111",
                "Customer needs help",
            )),
            when_reply: Some("(?i)human colleague".into()),
            after_fallbacks: Some(3),
        }),
        channel: None,
    }
}

fn job(attempts: u32) -> Job {
    Job {
        id: JobId(7),
        kind: JobKind::Action,
        rule: RuleName::new("ai"),
        action: "ai_reply".into(),
        event: "e1".into(),
        work: Work::Ai(Box::new(call())),
        status: JobStatus::Sending,
        attempts,
        run_at: now(),
        key: None,
        contact: Some("4915112345678".into()),
        unless: None,
        vars: None,
        campaign_run: None,
        last_error: None,
        response: None,
        created_at: now(),
    }
}

fn text(t: &str) -> Result<Answer, ModelError> {
    Ok(Answer::Text {
        text: t.into(),
        usage: Usage::default(),
    })
}

/// `(action, body text)` of the jobs the decision starts.
fn sends(decided: &Decided) -> Vec<(String, String)> {
    decided
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::Job(job) => Some((
                job.action.clone(),
                match &job.work {
                    Work::Call(r) => match &r.body {
                        Some(Payload::Json(b)) => b["body"].as_str().unwrap_or("").to_owned(),
                        _ => String::new(),
                    },
                    _ => String::new(),
                },
            )),
            Op::Apply(Work::Handoff(_)) => Some(("handoff".into(), "<handoff>".into())),
            _ => None,
        })
        .collect()
}

#[test]
fn an_answer_is_sent_as_a_reply_and_resets_the_fallbacks() {
    let decided = decide(&job(1), &call(), text("  We open at 9.  "), 2, now());
    assert_eq!(
        sends(&decided),
        [("ai_reply".into(), "We open at 9.".into())]
    );
    assert!(decided.ops.contains(&Op::AiFallbacks {
        chat: call().chat,
        count: 0
    }));
    assert!(matches!(decided.result, JobResult::Done { .. }));
}

#[test]
fn an_empty_answer_is_never_sent() {
    let decided = decide(&job(1), &call(), text(" \n "), 0, now());
    assert_eq!(
        sends(&decided),
        [("ai_reply".into(), "A colleague will answer soon.".into())]
    );
}

#[test]
fn a_handoff_mutes_the_chat_and_tells_the_agents_why() {
    let handoff = Ok(Answer::Handoff {
        reason: "refund over 500".into(),
        usage: Usage::default(),
    });
    let decided = decide(&job(1), &call(), handoff, 0, now());
    assert_eq!(
        sends(&decided),
        [
            ("handoff".into(), "<handoff>".into()),
            (
                "handoff".into(),
                "Customer needs help\n\nReason: the model handed off: refund over 500".into()
            )
        ]
    );
    let matched = decide(
        &job(1),
        &call(),
        text("Let me get a human colleague."),
        0,
        now(),
    );
    assert_eq!(sends(&matched)[0].1, "<handoff>");
}

#[test]
fn a_timeout_is_tried_again_then_falls_back_then_hands_off() {
    let timeout = || {
        Err(ModelError {
            transient: true,
            message: "timed out".into(),
        })
    };
    let first = decide(&job(1), &call(), timeout(), 0, now());
    assert!(matches!(first.result, JobResult::Retry { .. }));
    assert!(first.ops.is_empty());
    let last = decide(&job(2), &call(), timeout(), 0, now());
    assert_eq!(
        sends(&last),
        [("ai_reply".into(), "A colleague will answer soon.".into())]
    );
    let third = decide(&job(2), &call(), timeout(), 2, now());
    assert_eq!(sends(&third)[0].1, "<handoff>");
}

#[test]
fn shadow_mode_records_the_answer_and_sends_nothing() {
    let shadow = AiCall {
        shadow: true,
        ..call()
    };
    for answer in [text("We open at 9."), text("")] {
        let decided = decide(&job(1), &shadow, answer, 0, now());
        assert!(decided.ops.is_empty(), "{decided:?}");
        let JobResult::Done { response } = decided.result else {
            panic!("{:?}", decided.result)
        };
        assert!(response.contains("\"shadow\":true"), "{response}");
    }
}

#[test]
fn long_answers_are_cut() {
    let short = AiCall {
        max_reply: 12,
        ..call()
    };
    let decided = decide(
        &job(1),
        &short,
        text("We open at nine every day."),
        0,
        now(),
    );
    assert_eq!(sends(&decided)[0].1, "We open at…");
}
