//! The store's contract, split by concern: what intake, delivery, contacts and chats,
//! campaigns and the admin API each need from a database, in terms a backend shared by several
//! instances can keep: work is claimed by an instance for a lease, a dedupe key is taken by the
//! database's unique constraint when an event completes, and a chat's state is checked against
//! the version read before it is changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreResult;
use crate::vocab::{
    ChatState, Contact, Handoff, Job, JobId, JobResult, JobStatus, MessageStatus, NewJob,
    SentMessage, Turn, Work,
};

/// Where a stored body came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A Whapi.Cloud webhook; `path` is what followed `/webhook/`.
    Webhook { path: String, method: String },
    /// `POST /events/{name}`.
    Custom { name: String },
}

/// A body accepted with a 2xx and not yet processed.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub id: i64,
    pub source: Source,
    pub body: String,
    pub received_at: DateTime<Utc>,
}

/// One change in the result of processing a body, applied in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Work done where the event is processed: a contact change, a cancel, a handoff. A call
    /// or a model call is never applied: it is a job.
    Apply(Work),
    Job(Box<NewJob>),
    /// A `once_per` rule fired in a chat.
    Fired {
        rule: String,
        chat: String,
        at: DateTime<Utc>,
    },
    /// A message of a conversation, remembered for `ai_reply`.
    Turn(Turn),
    /// How many model fallbacks in a row a chat has had.
    AiFallbacks {
        chat: String,
        count: u32,
    },
    /// A channel reported its health.
    ChannelHealth(ChannelHealth),
    /// A message went out: Whapi.Cloud's id for it, and who sent it.
    Sent(Box<SentMessage>),
    /// Whapi.Cloud reported how far a sent message got (an earlier stage changes nothing).
    Status(MessageStatus),
    /// A chat wrote: the campaign messages sent to it in the day before count as answered.
    Replied {
        chat: String,
        at: DateTime<Utc>,
    },
    /// Someone posted in a group (`joined: false`) or joined it (`joined: true`).
    GroupActivity {
        group: String,
        phone: String,
        at: DateTime<Utc>,
        joined: bool,
    },
}

/// What Riposte saw of a group's members (see [`CampaignStore::group_activity`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupActivity {
    /// When Riposte first saw the group; `None` if never.
    pub watched_since: Option<DateTime<Utc>>,
    /// By phone: when the member last posted, and when they joined, as far as seen.
    pub members: HashMap<String, MemberSeen>,
}

/// When a member last posted in a group, and when they joined it, as far as Riposte saw.
pub type MemberSeen = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// What processing one stored body decided, committed atomically.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Dedupe keys of the events processed, with how long each is remembered.
    pub seen: Vec<(String, DateTime<Utc>)>,
    pub ops: Vec<Op>,
    /// One JSON record per event, as text: kind, id and each rule's result.
    pub records: Vec<String>,
}

/// How many of the calls that processing writes may be claimed on the spot, and until when.
#[derive(Debug, Clone, Copy)]
pub struct Handover {
    pub lease_until: DateTime<Utc>,
    pub limit: u32,
}

/// Which jobs a listing shows, newest first.
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    pub status: Option<JobStatus>,
    pub channel: Option<ChannelFilter>,
    pub limit: u32,
}

/// Jobs of one channel.
#[derive(Debug, Clone)]
pub struct ChannelFilter {
    pub name: String,
    /// It is the default channel, which also has the jobs that name no channel.
    pub is_default: bool,
}

/// A channel's health as Whapi.Cloud last reported it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChannelHealth {
    /// The channel's name.
    pub name: String,
    /// Whapi.Cloud's word for it (`AUTH`, `QR`, `LAUNCH`, `STOP`, ...), lower-cased.
    pub status: String,
    /// What else the event said (its text, or the raw item).
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

/// What an instance serves, as it last reported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstanceReport {
    pub name: String,
    /// The content hash of the rule set it serves.
    pub rules_version: String,
    pub rules: u32,
    pub started_at: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
}

/// A campaign run to be recorded.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub campaign: String,
    pub fire_at: DateTime<Utc>,
    /// `schedule`, `catch_up` or `manual`.
    pub trigger: String,
    /// Recipients left out when planning (opted out, excluded, invalid numbers).
    pub skipped: u32,
}

/// A campaign run as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignRun {
    pub id: i64,
    pub campaign: String,
    pub fire_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub trigger: String,
    pub planned: u32,
    /// Left out when planned plus skipped when due.
    pub skipped: u32,
    pub sent: u32,
    /// Of those sent: delivered (or further), read (or played), and answered by the
    /// recipient within a day of the send.
    pub delivered: u32,
    pub read: u32,
    pub replied: u32,
    /// Not sent (dead), or reported failed by Whapi.Cloud after it was sent.
    pub failed: u32,
    pub pending: u32,
}

/// What a batch of events is about: its dedupe keys, and the phones and chats of its events.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    pub keys: Vec<String>,
    pub phones: Vec<String>,
    pub chats: Vec<String>,
    /// Ids of messages the events are about (statuses, poll votes), to find those Riposte sent.
    pub messages: Vec<String>,
    /// Chats (`ChatId::memory_key`) that wrote: which of them campaign messages await.
    pub writing: Vec<String>,
}

/// What the store knew about a batch before it was processed (see [`IntakeStore::known`]).
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// The dedupe keys already processed and still remembered.
    pub seen: BTreeSet<String>,
    /// Contacts with tags or attributes, by phone.
    pub contacts: HashMap<String, Contact>,
    /// Chats with a handoff or `once_per` memory, by id.
    pub chats: HashMap<String, ChatState>,
    /// The version of every chat looked up, as read: a completion names the versions it read,
    /// and is refused if one of those chats changed since (a later change gives a chat a higher
    /// version).
    pub versions: HashMap<String, u64>,
    /// The looked-up messages Riposte sent, by id.
    pub sent: HashMap<String, SentMessage>,
    /// Of the chats that wrote, those a campaign message sent in the day before awaits (only
    /// their answers are written down).
    pub awaited: BTreeSet<String>,
}

/// How a completion ended.
#[derive(Debug, Clone)]
pub enum Completed {
    /// Everything was committed; the calls handed over are claimed, to be run at once.
    Committed(Vec<Job>),
    /// Nothing was committed: see [`Conflict`]. The bodies stay claimed (unless the claim was
    /// lost); process them again from a fresh read.
    Conflict(Conflict),
}

/// Why a completion was refused: another instance (or another worker) got there first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conflict {
    /// Dedupe keys already taken: those events were completed elsewhere.
    pub taken: Vec<String>,
    /// Chats whose version is no longer the one read: their state changed meanwhile.
    pub changed: Vec<String>,
    /// The bodies' claim ran out and another instance holds them now.
    pub lost_claim: bool,
}

/// Intake's part: stored bodies, claimed by an instance and completed with what their events
/// decided.
#[async_trait]
pub trait IntakeStore: Send + Sync {
    /// Stores a body durably and returns its id; a 2xx may be answered once this returns.
    async fn accept(&self, source: Source, body: &str, at: DateTime<Utc>) -> StoreResult<i64>;
    /// Claims for this instance, until `lease_until`, up to `limit` stored bodies that are not
    /// processed and not held by another instance's unexpired claim, oldest first. Bodies this
    /// instance holds already are handed out again (with the lease renewed) before new ones.
    async fn claim_inbound(
        &self,
        limit: u32,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Inbound>>;
    /// One stored body, while it is kept (to explain an event again).
    async fn inbound(&self, id: i64) -> StoreResult<Option<Inbound>>;
    /// What intake needs before the rules run over a batch, in one look: which of its dedupe
    /// keys were seen, and the contacts and chats it is about, with the chats' versions.
    async fn known(&self, lookup: Lookup, now: DateTime<Utc>) -> StoreResult<Known>;
    /// Commits everything processing these claimed bodies decided and marks them processed,
    /// atomically, or nothing at all: if a dedupe key of theirs is already taken (the database's
    /// unique constraint decides) or a chat in `read` has changed from the version given, the
    /// result is [`Completed::Conflict`]. With a `handover`, calls to be made now whose chat has
    /// nothing else open are written claimed, as [`JobStore::claim_jobs`] would claim them, and
    /// returned to be run at once.
    async fn complete(
        &self,
        done: &[(i64, Outcome)],
        read: &[(String, u64)],
        now: DateTime<Utc>,
        handover: Option<Handover>,
    ) -> StoreResult<Completed>;
}

/// Delivery's part: jobs, claimed by an instance one lane at a time.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Claims due jobs for this instance, at most one per ordering lane, until `lease_until`.
    async fn claim_jobs(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Job>>;
    /// Releases the jobs this instance held when it last stopped (called as it starts): they
    /// run again now instead of after their lease. A call that was made but not recorded
    /// before a crash is made again. Other instances' claims are left to their leases.
    async fn release_claims(&self) -> StoreResult<u64>;
    /// Records how a claimed job ended.
    async fn finish_job(
        &self,
        id: JobId,
        result: &JobResult,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.finish_job_with(id, result, Vec::new(), now).await?;
        Ok(())
    }
    /// Records how a claimed job ended and applies what it decided (jobs it starts, memory),
    /// atomically: a crash leaves either both or neither. Returns whether another job of its
    /// lane is due, and so claimable now that this one is done.
    async fn finish_job_with(
        &self,
        id: JobId,
        result: &JobResult,
        ops: Vec<Op>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// When the next pending job is due, if any.
    async fn next_job_due(&self) -> StoreResult<Option<DateTime<Utc>>>;
    /// Jobs, newest first, optionally of one status.
    async fn jobs(&self, query: JobQuery) -> StoreResult<Vec<Job>>;
    /// How many jobs are open (pending or being sent) per channel; `None` is the default
    /// channel.
    async fn open_jobs_by_channel(&self) -> StoreResult<Vec<(Option<String>, u64)>>;
    /// One job by id.
    async fn job(&self, id: JobId) -> StoreResult<Option<Job>>;
    /// Puts a dead or cancelled job back in the queue; false if no such job.
    async fn retry_job(&self, id: JobId, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Cancels a pending job, or drops a dead one; false if no such job.
    async fn cancel_job(&self, id: JobId, now: DateTime<Utc>) -> StoreResult<bool>;
}

/// Contacts, and what is remembered per chat: handoffs, `once_per`, the conversation.
#[async_trait]
pub trait ContactStore: Send + Sync {
    /// A contact's tags and attributes (empty if unknown).
    async fn contact(&self, phone: &str) -> StoreResult<Contact>;
    /// Several contacts at once, by phone; unknown phones are left out.
    async fn contacts_of(&self, phones: &[String]) -> StoreResult<HashMap<String, Contact>>;
    /// Every contact with tags or attributes (for campaign audiences and export).
    async fn contacts(&self) -> StoreResult<Vec<Contact>>;
    /// Several chats' handoffs and `once_per` memory; chats with neither are left out.
    async fn chat_states(&self, chats: &[String]) -> StoreResult<HashMap<String, ChatState>>;
    /// Chats a human has now.
    async fn handoffs(&self, now: DateTime<Utc>) -> StoreResult<Vec<Handoff>>;
    /// Applies ops outside of intake (a follow-up's local work, an import, a resume), atomically.
    async fn apply(&self, ops: &[Op], now: DateTime<Utc>) -> StoreResult<()>;
    /// The last `limit` messages of a chat's conversation (by memory key), oldest first.
    async fn turns(&self, chat: &str, limit: u32) -> StoreResult<Vec<Turn>>;
    /// Forgets conversation messages older than `before`.
    async fn forget_turns(&self, before: DateTime<Utc>) -> StoreResult<u64>;
    /// Model fallbacks in a row in a chat.
    async fn ai_fallbacks(&self, chat: &str) -> StoreResult<u32>;
}

/// Campaign runs and schedules, and number verification runs.
#[async_trait]
pub trait CampaignStore: Send + Sync {
    /// When a campaign's schedule was last handled.
    async fn campaign_checked(&self, name: &str) -> StoreResult<Option<DateTime<Utc>>>;
    /// Records that a campaign's fire times up to `at` are handled.
    async fn set_campaign_checked(&self, name: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// Pauses a campaign (its fire times pass without a run) or resumes it; fire times up to
    /// `now` count as handled either way, so a resume never sends the runs the pause held.
    async fn set_campaign_paused(
        &self,
        name: &str,
        paused: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The paused campaigns, with when each was paused.
    async fn paused_campaigns(&self) -> StoreResult<Vec<(String, DateTime<Utc>)>>;
    /// Records a campaign run and its jobs at once; `None` if that fire time already ran.
    async fn start_campaign_run(
        &self,
        run: &NewRun,
        jobs: &[NewJob],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<i64>>;
    /// Recent runs of a campaign (all campaigns if `None`), newest first.
    async fn campaign_runs(
        &self,
        campaign: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<CampaignRun>>;
    /// What Riposte saw of a group's members: when each last posted and joined.
    async fn group_activity(&self, group: &str) -> StoreResult<GroupActivity>;
    /// Numbers already checked in a verification run: phone → (status, WhatsApp id).
    async fn verified(&self, run: &str) -> StoreResult<BTreeMap<String, (String, Option<String>)>>;
    /// Records checked numbers of a verification run.
    async fn record_verified(
        &self,
        run: &str,
        checked: &[(String, String, Option<String>)],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
}

/// The admin API's queries, and the upkeep of the database.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Most recent event records, newest first, each with its `seq` (its place in the log).
    async fn recent_events(&self, limit: u32) -> StoreResult<Vec<serde_json::Value>>;
    /// One event record by its `seq`.
    async fn event_record(&self, seq: i64) -> StoreResult<Option<serde_json::Value>>;
    /// Forgets dedupe keys past their time, old event records and old finished jobs.
    async fn prune(&self, now: DateTime<Utc>) -> StoreResult<()>;
    /// Whether the database answers and accepts writes.
    async fn ready(&self) -> StoreResult<()>;
    /// Each channel's last reported health, by name.
    async fn channel_health(&self) -> StoreResult<Vec<ChannelHealth>>;
    /// Takes the lease `name` for this instance until `until`, or renews it, unless another
    /// instance holds it past `now`; whether this instance holds it now.
    async fn hold_lease(
        &self,
        name: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Records which rule set this instance serves (and that it is alive).
    async fn report_instance(&self, report: &InstanceReport) -> StoreResult<()>;
    /// What every instance last reported, by name.
    async fn instances(&self) -> StoreResult<Vec<InstanceReport>>;
}

/// The whole contract: what `serve` opens and hands out to every part.
pub trait Store:
    IntakeStore + JobStore + ContactStore + CampaignStore + AdminStore + 'static
{
}

impl<T> Store for T where
    T: IntakeStore + JobStore + ContactStore + CampaignStore + AdminStore + 'static
{
}
