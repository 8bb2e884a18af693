//! What the rules see of a contact and a chat while events are processed one after another,
//! and the bookkeeping around one evaluation. Intake and `riposte simulate` run an event
//! through here alike, so the second message of a batch, or of a simulation, sees what the
//! first one did.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::engine::{self, Evaluation};
use crate::events::{Event, EventKind};
use crate::rules::RuleSet;
use crate::store::Op;
use crate::vocab::{ChatState, Contact, HandoffChange, Work};

/// Contacts and chats as the events processed so far left them.
#[derive(Debug, Default)]
pub struct Memory {
    /// By phone.
    pub contacts: HashMap<String, Contact>,
    /// By chat on its channel ([`Event::chat_key`]).
    pub chats: HashMap<String, ChatState>,
}

/// What the rules made of one event, with what they saw.
#[derive(Debug)]
pub struct Evaluated {
    pub evaluation: Evaluation,
    /// The contact as the rules saw it.
    pub contact: Contact,
    /// The chat as the rules saw it (a handoff an agent's message ended is gone already).
    pub chat: ChatState,
    /// A handoff an agent's message ended: applied before what the rules did.
    pub resumed: Option<Op>,
    /// `once_per` rules that fired: remembered for the chat, after what the rules did.
    pub fired: Vec<Op>,
}

/// The rules' code panicked on an event; the event is skipped, the worker goes on. A handoff an
/// agent's message ended is still ended.
#[derive(Debug)]
pub struct EnginePanicked {
    pub resumed: Option<Box<Op>>,
}

impl Memory {
    /// Evaluates `event` against `rules` with its contact and chat as they stand, then moves
    /// them on as the rules left them.
    pub fn evaluate(
        &mut self,
        rules: &RuleSet,
        event: &Event,
        now: DateTime<Utc>,
        explain: bool,
    ) -> Result<Evaluated, EnginePanicked> {
        let phone = event
            .sender
            .as_ref()
            .map(|s| s.phone.clone())
            .unwrap_or_default();
        let contact = self
            .contacts
            .get(&phone)
            .cloned()
            .unwrap_or_else(|| Contact {
                phone: phone.clone(),
                ..Contact::default()
            });
        let named;
        let event = match with_known_name(event, &contact) {
            Some(with_name) => {
                named = with_name;
                &named
            }
            None => event,
        };
        let chat_id = event.chat_key().unwrap_or_default();
        let mut chat = self.chats.get(&chat_id).cloned().unwrap_or_default();
        let resumed = agent_resume(event, &chat, now).map(|end| {
            chat.handoff = None;
            Op::Apply(Work::Handoff(end))
        });
        // A bug in the engine must cost one event, not stop the worker for every later one.
        let Ok(evaluation) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine::evaluate(rules, event, &contact, &chat, now, explain)
        })) else {
            return Err(EnginePanicked {
                resumed: resumed.map(Box::new),
            });
        };
        let mut after = chat.clone();
        let fired = evaluation
            .fired
            .iter()
            .map(|rule| {
                after.fired.insert(rule.clone(), now);
                Op::Fired {
                    rule: rule.clone(),
                    chat: chat_id.clone(),
                    at: now,
                }
            })
            .collect();
        after.handoff.clone_from(&evaluation.handoff);
        self.contacts.insert(phone, evaluation.contact.clone());
        self.chats.insert(chat_id, after);
        Ok(Evaluated {
            evaluation,
            contact,
            chat,
            resumed,
            fired,
        })
    }
}

/// Group membership events name a number only: the member's name is the contact's `name`
/// attribute when Riposte knows it (imported, set by a rule, or learned from WhatsApp).
fn with_known_name(event: &Event, contact: &Contact) -> Option<Event> {
    if !is_membership(&event.kind) || event.sender.as_ref()?.name.is_some() {
        return None;
    }
    let name = contact.attrs.get(NAME).filter(|n| !n.trim().is_empty())?;
    let mut named = event.clone();
    if let Some(sender) = named.sender.as_mut() {
        sender.name = Some(name.clone());
    }
    Some(named)
}

/// The contact attribute a person's name is kept in.
pub const NAME: &str = "name";

/// Whether an event is about a group member joining, leaving or changing role.
pub(crate) fn is_membership(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::GroupJoin
            | EventKind::GroupLeave
            | EventKind::GroupPromote
            | EventKind::GroupDemote
    )
}

/// A message from our own side (an agent on the phone) with the handoff's resume word ends it.
pub fn agent_resume(event: &Event, chat: &ChatState, now: DateTime<Utc>) -> Option<HandoffChange> {
    let handoff = chat.handoff.as_ref().filter(|h| h.until > now)?;
    let word = handoff.resume_on.as_deref()?;
    let text = event.text.as_deref()?;
    (event.from_me && text.to_lowercase().contains(&word.to_lowercase())).then(|| {
        HandoffChange::End {
            chat: handoff.chat.clone(),
        }
    })
}
