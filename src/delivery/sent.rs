//! What a successful send leaves behind: the id Whapi.Cloud gave the message, with the rule
//! or campaign that sent it, so its statuses (and the recipient's reply) can be told.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::store::Op;
use crate::vocab::{
    ChatId, Job, JobKind, JobResult, OutboundRequest, Payload, SentMessage, Target,
};

/// The record of a message a job sent, when it sent one and Whapi.Cloud said which.
pub(super) fn record(
    job: &Job,
    request: &OutboundRequest,
    result: &JobResult,
    now: DateTime<Utc>,
) -> Option<Op> {
    let JobResult::Done { response } = result else {
        return None;
    };
    if request.target != Target::Whapi || request.method != "POST" {
        return None;
    }
    let endpoint = request.path.strip_prefix("/messages/")?;
    // A forward (`/messages/{id}`) sends a message too; its kind says so.
    const SENDS: &[&str] = &[
        "text",
        "image",
        "video",
        "document",
        "audio",
        "location",
        "interactive",
        "poll",
    ];
    let kind = if SENDS.contains(&endpoint) {
        endpoint
    } else {
        "forward"
    };
    let answer: Value = serde_json::from_str(response).ok()?;
    let id = answer.pointer("/message/id")?.as_str()?.to_owned();
    let Some(Payload::Json(body)) = &request.body else {
        return None;
    };
    let to = body.get("to")?.as_str()?;
    let text = ["/body", "/body/text", "/caption", "/title"]
        .iter()
        .find_map(|p| body.pointer(p).and_then(Value::as_str))
        .map(str::to_owned);
    let options = body
        .get("options")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|o| o.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let campaign = (job.kind == JobKind::Campaign).then(|| job.rule.as_str().to_owned());
    Some(Op::Sent(Box::new(SentMessage {
        id,
        channel: request.channel.clone(),
        chat: ChatId::new(to).memory_key(),
        rule: job.rule.as_str().to_owned(),
        campaign_run: campaign.as_ref().and(job.campaign_run),
        campaign,
        text,
        kind: kind.to_owned(),
        sent_at: now,
        status: "sent".to_owned(),
        options,
    })))
}
