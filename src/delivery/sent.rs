//! What a successful send leaves behind: the id Whapi.Cloud gave the message, with the rule
//! or campaign that sent it, so its statuses (and the recipient's reply) can be told.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::store::Op;
use crate::vocab::{
    ChatId, Job, JobKind, JobResult, NewJob, OutboundRequest, Payload, SentMessage, Target, Work,
};
use crate::whapi::path::IdKind;

/// What a job that sent a message leaves: the record of the message (when `keep` and
/// Whapi.Cloud said which it was), and the job that pins it when the rule asked for that.
pub(super) fn record(
    job: &Job,
    request: &OutboundRequest,
    result: &JobResult,
    keep: bool,
    now: DateTime<Utc>,
) -> Vec<Op> {
    if !keep && request.pin.is_none() {
        return Vec::new();
    }
    let Some(sent) = sent(job, request, result, now) else {
        if request.pin.is_some() && matches!(result, JobResult::Done { .. }) {
            tracing::warn!(job = %job.id, rule = %job.rule, "sent, but Whapi.Cloud's answer names no message id: it cannot be pinned");
        }
        return Vec::new();
    };
    let pin = request
        .pin
        .and_then(|time| pin(job, request, &sent.id, time.as_str(), now));
    let mut ops = Vec::new();
    if keep {
        ops.push(Op::Sent(Box::new(sent)));
    }
    ops.extend(pin);
    ops
}

/// The job that pins the message `id` (`POST /messages/{id}/pin`), in the send's lane.
fn pin(
    job: &Job,
    request: &OutboundRequest,
    id: &str,
    time: &str,
    now: DateTime<Utc>,
) -> Option<Op> {
    let segment = match IdKind::Message.segment("the sent message's id, to pin it", id) {
        Ok(segment) => segment,
        Err(err) => {
            tracing::warn!(job = %job.id, rule = %job.rule, "{err}");
            return None;
        }
    };
    let mut call = OutboundRequest::whapi(
        "POST",
        format!("/messages/{segment}/pin"),
        Some(serde_json::json!({ "time": time })),
        &ChatId::new(""),
    );
    call.lane.clone_from(&request.lane);
    call.channel.clone_from(&request.channel);
    let mut pin = NewJob::action(job.rule.as_str(), "pin", &job.event, Work::Call(call), now);
    pin.kind = JobKind::Answer;
    Some(Op::Job(Box::new(pin)))
}

fn sent(
    job: &Job,
    request: &OutboundRequest,
    result: &JobResult,
    now: DateTime<Utc>,
) -> Option<SentMessage> {
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
    Some(SentMessage {
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
    })
}
