//! A group member's name, as WhatsApp's profile gives it, kept on the contact.

use serde_json::Value;

use crate::intake::LEARN_NAME;
use crate::store::Op;
use crate::vocab::{ContactChange, Job, JobResult, Work};

/// The contact's `name` from a profile Whapi.Cloud answered, for a job that asked for it.
pub(super) fn learned(job: &Job, result: &JobResult) -> Option<Op> {
    let JobResult::Done { response } = result else {
        return None;
    };
    if job.action != LEARN_NAME {
        return None;
    }
    let profile: Value = serde_json::from_str(response).ok()?;
    let name = profile.get("name")?.as_str()?.trim();
    if name.is_empty() {
        return None;
    }
    Some(Op::Apply(Work::Contact(ContactChange::Set {
        phone: job.contact.clone()?,
        key: crate::intake::NAME_ATTRIBUTE.to_owned(),
        value: name.chars().take(200).collect(),
    })))
}
