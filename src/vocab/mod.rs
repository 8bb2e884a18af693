//! The shared vocabulary: the data that crosses layers (an outbound call, a job and its work, a
//! contact, a chat and its state, the ids that name them). Behaviour modules produce and consume
//! these types; nothing here imports a behaviour module, so any layer may use them without
//! tying itself to another.
//!
//! Several of these types are stored (inside jobs and chat state). Their serde names are the
//! stored format: each field and variant is named explicitly, so renaming a Rust item never
//! changes what is written, and `job::StoredWork` gives the format a version.

pub mod channel;
pub mod chat;
pub mod contact;
pub mod ids;
pub mod job;
pub mod lookup;
pub mod outbound;
pub mod sent;

pub use channel::{DEFAULT_CHANNEL, scoped};
pub use chat::{ChatId, ChatState, Handoff, HandoffChange, Role, Turn};
pub use contact::{Contact, ContactChange};
pub use ids::{JobId, MessageId, RuleName};
pub use job::{AiCall, AiHandoff, Job, JobKind, JobResult, JobStatus, NewJob, PerChatLimit, Work};
pub use lookup::LookupCall;
pub use outbound::{OutboundRequest, Payload, PinFor, Target};
pub use sent::{MessageStatus, SentMessage};
