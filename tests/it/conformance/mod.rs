//! What every store backend must do, written against the store's traits only: claims that are
//! exclusive and lapse, dedupe decided by the database when two instances complete the same
//! event, chat state guarded by its version, jobs kept in order per chat and released only by
//! their instance, pruning, and migrations from an empty database and from the last release.
//!
//! A backend runs the suite by implementing [`Backend`] and calling each check (see
//! `sqlite.rs`).

mod postgres;
mod sqlite;

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use riposte::store::{
    ChannelFilter, ChannelHealth, Completed, Handover, InstanceReport, JobQuery, Lookup, NewRun,
    Op, Outcome, Source, Store,
};
use riposte::vocab::{
    HandoffChange, JobResult, JobStatus, MessageStatus, NewJob, OutboundRequest, SentMessage, Work,
};

/// Runs `$runner!` over every check of the suite, so each backend runs them all.
macro_rules! every_check {
    ($runner:ident) => {
        $runner!(
            claims_are_exclusive,
            a_lapsed_claim_is_taken_over,
            a_restarted_instance_takes_up_its_own_claim,
            one_of_two_racing_completions_of_an_event_wins,
            an_expired_dedupe_key_is_free_again,
            a_chat_changed_since_it_was_read_refuses_the_completion,
            jobs_of_one_chat_go_in_order,
            job_claims_belong_to_their_instance,
            calls_handed_over_belong_to_the_completing_instance,
            pruning_keeps_what_is_not_processed,
            migrations_from_empty_and_from_the_previous_release,
            jobs_and_health_are_kept_per_channel,
            a_lease_has_one_holder_until_it_lapses,
            sent_messages_keep_how_far_they_got,
            group_activity_keeps_the_latest_post_and_join,
            a_paused_campaign_is_kept_paused_until_resumed,
        );
    };
}
pub(crate) use every_check;

/// A database the suite can open as several instances.
#[async_trait::async_trait]
pub(crate) trait Backend: Send + Sync {
    /// A handle on the shared database, claiming as `instance`.
    async fn open(&self, instance: &str) -> Arc<dyn Store>;
    /// A handle on a database written by the previous release, if the backend had one.
    async fn previous_release(&self) -> Option<Arc<dyn Store>>;
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 10, 0, 0).unwrap()
}

fn lease(now: DateTime<Utc>) -> DateTime<Utc> {
    now + Duration::seconds(60)
}

async fn accept(store: &dyn Store, n: usize, now: DateTime<Utc>) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let source = Source::Custom { name: "e".into() };
        ids.push(
            store
                .accept(source, &format!(r#"{{"n":{i}}}"#), now)
                .await
                .unwrap(),
        );
    }
    ids
}

async fn claim(store: &dyn Store, limit: u32, now: DateTime<Utc>) -> Vec<i64> {
    let claimed = store.claim_inbound(limit, lease(now), now).await.unwrap();
    claimed.iter().map(|i| i.id).collect()
}

/// An outcome that remembers one dedupe key and tags a contact.
fn outcome(key: &str, now: DateTime<Utc>) -> Outcome {
    Outcome {
        seen: vec![(key.to_owned(), now + Duration::hours(48))],
        ops: vec![Op::Apply(Work::Contact(
            riposte::vocab::ContactChange::Tag {
                phone: "4915112345678".into(),
                tag: key.to_owned(),
            },
        ))],
        records: vec![format!(r#"{{"key":"{key}"}}"#)],
    }
}

async fn complete(
    store: &dyn Store,
    done: Vec<(i64, Outcome)>,
    read: &[(String, u64)],
    now: DateTime<Utc>,
) -> Completed {
    store.complete(&done, read, now, None).await.unwrap()
}

/// Two instances never hold the same body, and a body comes back to its holder until done.
pub(crate) async fn claims_are_exclusive(backend: &dyn Backend) {
    let (a, b) = (backend.open("a").await, backend.open("b").await);
    let now = t0();
    let ids = accept(&*a, 5, now).await;
    let first = claim(&*a, 3, now).await;
    let second = claim(&*b, 3, now).await;
    assert_eq!(first, ids[..3]);
    assert_eq!(second, ids[3..], "b gets what a does not hold");
    assert_eq!(claim(&*a, 3, now).await, first, "a's own claim, again");
    assert!(claim(&*backend.open("c").await, 3, now).await.is_empty());
    let done = first.iter().map(|&id| (id, Outcome::default())).collect();
    assert!(matches!(
        complete(&*a, done, &[], now).await,
        Completed::Committed(_)
    ));
    assert!(claim(&*a, 3, now).await.is_empty(), "nothing is left for a");
    let done = second.iter().map(|&id| (id, Outcome::default())).collect();
    assert!(matches!(
        complete(&*b, done, &[], now).await,
        Completed::Committed(_)
    ));
    assert!(claim(&*backend.open("c").await, 10, now).await.is_empty());
}

/// A claim whose lease ran out is taken over; its old holder's completion is refused.
pub(crate) async fn a_lapsed_claim_is_taken_over(backend: &dyn Backend) {
    let (a, b) = (backend.open("a").await, backend.open("b").await);
    let now = t0();
    let ids = accept(&*a, 2, now).await;
    assert_eq!(claim(&*a, 10, now).await, ids);
    let later = lease(now) + Duration::seconds(1);
    assert_eq!(claim(&*b, 10, later).await, ids, "a's lease ran out");
    // One event per batch: its key, and the tag it puts on the contact, name the instance.
    let done = |key: &str| {
        let mut done: Vec<(i64, Outcome)> =
            ids.iter().map(|&id| (id, Outcome::default())).collect();
        done[0].1 = outcome(key, later);
        done
    };
    match complete(&*a, done("a"), &[], later).await {
        Completed::Conflict(conflict) => assert!(conflict.lost_claim, "{conflict:?}"),
        other => panic!("a completed a batch b holds: {other:?}"),
    }
    assert!(matches!(
        complete(&*b, done("b"), &[], later).await,
        Completed::Committed(_)
    ));
    let contact = b.contact("4915112345678").await.unwrap();
    assert_eq!(
        contact.tags.iter().collect::<Vec<_>>(),
        ["b"],
        "nothing of a's was written"
    );
}

/// An instance that starts again takes up its own claim at once, before its lease runs out.
pub(crate) async fn a_restarted_instance_takes_up_its_own_claim(backend: &dyn Backend) {
    let now = t0();
    let a = backend.open("a").await;
    let ids = accept(&*a, 3, now).await;
    assert_eq!(claim(&*a, 2, now).await, ids[..2]);
    drop(a);
    let again = backend.open("a").await;
    assert_eq!(claim(&*again, 10, now).await, ids[..2]);
    assert_eq!(claim(&*backend.open("b").await, 10, now).await, ids[2..]);
}

/// Two instances complete the same event (a webhook delivered twice, each copy claimed by
/// one of them) at the same moment: the database's unique key lets exactly one through, and
/// the other is told which key was taken and writes nothing.
pub(crate) async fn one_of_two_racing_completions_of_an_event_wins(backend: &dyn Backend) {
    for round in 0..20 {
        let (a, b) = (backend.open("a").await, backend.open("b").await);
        let now = t0() + Duration::days(round);
        let key = format!("channel|message|M{round}");
        let ids = accept(&*a, 2, now).await;
        let mine = claim(&*a, 1, now).await;
        let theirs = claim(&*b, 1, now).await;
        assert_eq!([mine.clone(), theirs.clone()].concat(), ids);
        let (left, right) = tokio::join!(
            complete(&*a, vec![(mine[0], outcome(&key, now))], &[], now),
            complete(&*b, vec![(theirs[0], outcome(&key, now))], &[], now),
        );
        let results = [left, right];
        let won = results
            .iter()
            .filter(|r| matches!(r, Completed::Committed(_)))
            .count();
        assert_eq!(won, 1, "round {round}: {results:?}");
        for (result, (store, id)) in results.iter().zip([(&a, mine[0]), (&b, theirs[0])]) {
            if let Completed::Conflict(conflict) = result {
                assert_eq!(conflict.taken, std::slice::from_ref(&key), "round {round}");
                assert!(!conflict.lost_claim);
                // The loser processes its copy again, as a duplicate: it completes.
                let again = complete(&**store, vec![(id, Outcome::default())], &[], now).await;
                assert!(matches!(again, Completed::Committed(_)), "{again:?}");
            }
        }
        let known = a
            .known(
                Lookup {
                    keys: vec![key.clone()],
                    ..Lookup::default()
                },
                now,
            )
            .await
            .unwrap();
        assert!(known.seen.contains(&key));
    }
}

/// A dedupe key is taken while it is remembered, and free again once it expired.
pub(crate) async fn an_expired_dedupe_key_is_free_again(backend: &dyn Backend) {
    let store = backend.open("a").await;
    let now = t0();
    let key = "channel|group_join|x";
    let mut short = outcome(key, now);
    short.seen[0].1 = now + Duration::minutes(10);
    let ids = accept(&*store, 1, now).await;
    claim(&*store, 1, now).await;
    assert!(matches!(
        complete(&*store, vec![(ids[0], short)], &[], now).await,
        Completed::Committed(_)
    ));
    let soon = now + Duration::minutes(5);
    let ids = accept(&*store, 1, soon).await;
    claim(&*store, 1, soon).await;
    assert!(matches!(
        complete(&*store, vec![(ids[0], outcome(key, soon))], &[], soon).await,
        Completed::Conflict(_)
    ));
    let later = now + Duration::minutes(11);
    assert!(matches!(
        complete(&*store, vec![(ids[0], outcome(key, later))], &[], later).await,
        Completed::Committed(_)
    ));
}

/// A completion that read a chat is refused once the chat's state changed meanwhile, and goes
/// through once it read the chat again.
pub(crate) async fn a_chat_changed_since_it_was_read_refuses_the_completion(backend: &dyn Backend) {
    let store = backend.open("a").await;
    let now = t0();
    let chat = "4915112345678@s.whatsapp.net".to_owned();
    let look = || Lookup {
        chats: vec![chat.clone()],
        ..Lookup::default()
    };
    let read = store.known(look(), now).await.unwrap().versions[&chat];
    let handoff = HandoffChange::Start {
        chat: chat.clone(),
        until: now + Duration::hours(1),
        resume_on: None,
        rule: "human".into(),
    };
    store
        .apply(&[Op::Apply(Work::Handoff(handoff))], now)
        .await
        .unwrap();
    let ids = accept(&*store, 1, now).await;
    claim(&*store, 1, now).await;
    let stale = [(chat.clone(), read)];
    match complete(&*store, vec![(ids[0], outcome("k1", now))], &stale, now).await {
        Completed::Conflict(conflict) => assert_eq!(conflict.changed, std::slice::from_ref(&chat)),
        other => panic!("completed on a chat read before its handoff: {other:?}"),
    }
    let known = store.known(look(), now).await.unwrap();
    assert!(known.chats[&chat].handoff.is_some());
    let fresh = [(chat.clone(), known.versions[&chat])];
    assert!(matches!(
        complete(&*store, vec![(ids[0], outcome("k1", now))], &fresh, now).await,
        Completed::Committed(_)
    ));
}

fn call(lane: &str, n: usize, now: DateTime<Utc>) -> Op {
    let request = OutboundRequest::text_message(lane, &format!("message {n}"));
    Op::Job(Box::new(NewJob::action(
        "rule",
        &format!("reply {n}"),
        "event",
        Work::Call(request),
        now,
    )))
}

/// One chat's calls are claimed one at a time, in order; different chats' at once.
pub(crate) async fn jobs_of_one_chat_go_in_order(backend: &dyn Backend) {
    let store = backend.open("a").await;
    let now = t0();
    let ops: Vec<Op> = (0..3)
        .flat_map(|n| [call("4915111111111", n, now), call("4915122222222", n, now)])
        .collect();
    store.apply(&ops, now).await.unwrap();
    let mut sent = Vec::new();
    for _ in 0..3 {
        let jobs = store.claim_jobs(now, lease(now), 10).await.unwrap();
        assert_eq!(jobs.len(), 2, "one per chat: {jobs:?}");
        for job in jobs {
            sent.push((job.work.clone(), job.action.clone()));
            let done = JobResult::Done {
                response: String::new(),
            };
            store.finish_job(job.id, &done, now).await.unwrap();
        }
    }
    let order = |chat: &str| -> Vec<String> {
        sent.iter()
            .filter(|(work, _)| matches!(work, Work::Call(r) if r.lane.ends_with(chat)))
            .map(|(_, action)| action.clone())
            .collect()
    };
    assert_eq!(order("4915111111111"), ["reply 0", "reply 1", "reply 2"]);
    assert_eq!(order("4915122222222"), ["reply 0", "reply 1", "reply 2"]);
}

/// A job being sent belongs to the instance that claimed it: another instance neither
/// releases it nor claims it before its lease runs out; its own instance releases it when it
/// starts again.
pub(crate) async fn job_claims_belong_to_their_instance(backend: &dyn Backend) {
    let (a, b) = (backend.open("a").await, backend.open("b").await);
    let now = t0();
    a.apply(&[call("4915111111111", 0, now)], now)
        .await
        .unwrap();
    let held = a.claim_jobs(now, lease(now), 10).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(b.release_claims().await.unwrap(), 0, "not b's to release");
    assert!(b.claim_jobs(now, lease(now), 10).await.unwrap().is_empty());
    assert_eq!(backend.open("a").await.release_claims().await.unwrap(), 1);
    let again = b.claim_jobs(now, lease(now), 10).await.unwrap();
    assert_eq!(again.len(), 1, "released, so b may take it");
    let later = lease(now) + Duration::seconds(1);
    let taken = a.claim_jobs(later, lease(later), 10).await.unwrap();
    assert_eq!(taken.len(), 1, "b's lease ran out");
    assert_eq!(taken[0].id, held[0].id);
    let job = a.job(held[0].id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Sending);
    assert_eq!(job.attempts, 3);
}

/// Calls written claimed as a batch completes are claimed for the completing instance.
pub(crate) async fn calls_handed_over_belong_to_the_completing_instance(backend: &dyn Backend) {
    let (a, b) = (backend.open("a").await, backend.open("b").await);
    let now = t0();
    let ids = accept(&*a, 1, now).await;
    claim(&*a, 1, now).await;
    let done = Outcome {
        ops: vec![call("4915111111111", 0, now)],
        ..Outcome::default()
    };
    let handover = Handover {
        lease_until: lease(now),
        limit: 4,
    };
    let Completed::Committed(jobs) = a
        .complete(&[(ids[0], done)], &[], now, Some(handover))
        .await
        .unwrap()
    else {
        panic!("refused");
    };
    assert_eq!(jobs.len(), 1);
    assert_eq!(b.release_claims().await.unwrap(), 0);
    assert_eq!(a.release_claims().await.unwrap(), 1);
}

/// Processed bodies go after a day, their events' records after a week; a body not processed
/// yet is never pruned.
pub(crate) async fn pruning_keeps_what_is_not_processed(backend: &dyn Backend) {
    let store = backend.open("a").await;
    let now = t0();
    let ids = accept(&*store, 3, now).await;
    claim(&*store, 2, now).await;
    let done = ids[..2]
        .iter()
        .enumerate()
        .map(|(n, &id)| (id, outcome(&format!("key{n}"), now)))
        .collect();
    assert!(matches!(
        complete(&*store, done, &[], now).await,
        Completed::Committed(_)
    ));
    store.prune(now + Duration::hours(25)).await.unwrap();
    assert!(store.inbound(ids[0]).await.unwrap().is_none());
    assert!(store.inbound(ids[2]).await.unwrap().is_some());
    assert_eq!(store.recent_events(10).await.unwrap().len(), 2);
    store.prune(now + Duration::days(8)).await.unwrap();
    assert!(store.recent_events(10).await.unwrap().is_empty());
    assert!(store.inbound(ids[2]).await.unwrap().is_some());
    assert_eq!(claim(&*store, 10, now + Duration::days(8)).await, ids[2..]);
}

/// An empty database is made ready; one written by the previous release is brought up to date
/// with its pending jobs readable.
pub(crate) async fn migrations_from_empty_and_from_the_previous_release(backend: &dyn Backend) {
    let fresh = backend.open("a").await;
    fresh.ready().await.unwrap();
    let all = |limit| JobQuery {
        limit,
        ..JobQuery::default()
    };
    assert!(fresh.jobs(all(10)).await.unwrap().is_empty());
    let Some(previous) = backend.previous_release().await else {
        return;
    };
    previous.ready().await.unwrap();
    let pending = previous
        .jobs(JobQuery {
            status: Some(JobStatus::Pending),
            ..all(100)
        })
        .await
        .unwrap();
    assert_eq!(pending.len(), 14, "{pending:?}");
}

/// Jobs are listed by channel (the default channel's include those that name none), open jobs
/// are counted per channel, and a channel's health is its latest report.
pub(crate) async fn jobs_and_health_are_kept_per_channel(backend: &dyn Backend) {
    let store = backend.open("a").await;
    let now = t0();
    let through = |channel: Option<&str>, n| {
        let Op::Job(mut job) = call("4915111111111", n, now) else {
            unreachable!()
        };
        if let (Some(channel), Work::Call(request)) = (channel, &mut job.work) {
            request.through(channel);
        }
        Op::Job(job)
    };
    let ops = [
        through(None, 0),
        through(Some("sales"), 1),
        through(Some("support"), 2),
    ];
    store.apply(&ops, now).await.unwrap();
    let listed = |name: &str, is_default| {
        let store = store.clone();
        let query = JobQuery {
            channel: Some(ChannelFilter {
                name: name.to_owned(),
                is_default,
            }),
            limit: 10,
            ..JobQuery::default()
        };
        async move {
            let jobs = store.jobs(query).await.unwrap();
            jobs.iter().map(|j| j.action.clone()).collect::<Vec<_>>()
        }
    };
    assert_eq!(listed("support", false).await, ["reply 2"]);
    assert_eq!(listed("sales", true).await, ["reply 1", "reply 0"]);
    let mut open = store.open_jobs_by_channel().await.unwrap();
    open.sort();
    assert_eq!(
        open,
        [
            (None, 1),
            (Some("sales".to_owned()), 1),
            (Some("support".to_owned()), 1)
        ]
    );
    let report = |status: &str, at| {
        Op::ChannelHealth(ChannelHealth {
            name: "support".into(),
            status: status.into(),
            detail: None,
            at,
        })
    };
    let later = now + Duration::seconds(5);
    store.apply(&[report("qr", later)], later).await.unwrap();
    // A report that arrives late for an earlier time does not overwrite a newer one.
    store
        .apply(&[report("logged_in", now)], later)
        .await
        .unwrap();
    let health = store.channel_health().await.unwrap();
    assert_eq!(health.len(), 1, "{health:?}");
    assert_eq!((health[0].status.as_str(), health[0].at), ("qr", later));
}

/// One instance at a time holds a lease; its holder renews it, and another takes it over only
/// once it lapses. What each instance serves is reported and read back.
pub(crate) async fn a_lease_has_one_holder_until_it_lapses(backend: &dyn Backend) {
    let (a, b) = (backend.open("a").await, backend.open("b").await);
    let now = t0();
    let later = |s| now + Duration::seconds(s);
    assert!(a.hold_lease("scheduler", later(15), now).await.unwrap());
    assert!(
        !b.hold_lease("scheduler", later(20), later(5))
            .await
            .unwrap()
    );
    assert!(
        a.hold_lease("scheduler", later(25), later(10))
            .await
            .unwrap()
    );
    assert!(
        !b.hold_lease("scheduler", later(35), later(20))
            .await
            .unwrap()
    );
    assert!(
        b.hold_lease("scheduler", later(40), later(25))
            .await
            .unwrap()
    );
    assert!(
        !a.hold_lease("scheduler", later(45), later(30))
            .await
            .unwrap()
    );
    let report = |name: &str, version: &str| InstanceReport {
        name: name.into(),
        rules_version: version.into(),
        rules: 3,
        started_at: now,
        seen_at: later(1),
    };
    a.report_instance(&report("a", "v1")).await.unwrap();
    b.report_instance(&report("b", "v1")).await.unwrap();
    a.report_instance(&report("a", "v2")).await.unwrap();
    let seen = b.instances().await.unwrap();
    assert_eq!(seen, [report("a", "v2"), report("b", "v1")]);
}

/// A message Riposte sent, as delivery records it.
fn sent(id: &str, chat: &str, campaign_run: Option<i64>, at: DateTime<Utc>) -> Op {
    Op::Sent(Box::new(SentMessage {
        id: id.into(),
        channel: None,
        chat: chat.into(),
        rule: "promo".into(),
        campaign: campaign_run.map(|_| "promo".to_owned()),
        campaign_run,
        text: Some("Which day?".into()),
        kind: "poll".into(),
        sent_at: at,
        status: "sent".into(),
        options: vec!["Mon".into(), "Tue".into()],
    }))
}

fn status(id: &str, status: &str, at: DateTime<Utc>) -> Op {
    Op::Status(MessageStatus {
        id: id.into(),
        status: status.into(),
        at,
    })
}

pub(crate) async fn sent_messages_keep_how_far_they_got(backend: &dyn Backend) {
    let store = backend.open("a").await;
    let now = t0();
    let run = NewRun {
        campaign: "promo".into(),
        fire_at: now,
        trigger: "manual".into(),
        skipped: 0,
    };
    let run = store
        .start_campaign_run(&run, &[], now)
        .await
        .unwrap()
        .unwrap();
    let (anna, ben, cleo) = ("4915111111111", "4915122222222", "4915133333333");
    let later = |minutes| now + Duration::minutes(minutes);
    store
        .apply(
            &[
                sent("m1", anna, Some(run), now),
                sent("m2", ben, Some(run), now),
                sent("m3", cleo, None, now),
                // Recorded twice (a retried commit): the first record stands.
                sent("m3", anna, None, now),
            ],
            now,
        )
        .await
        .unwrap();
    store
        .apply(
            &[
                status("m1", "read", later(1)),
                // Late news of an earlier stage changes nothing.
                status("m1", "delivered", later(2)),
                status("m2", "failed", later(1)),
                status("m3", "delivered", later(1)),
                // A status of a message Riposte did not send is nobody's.
                status("elsewhere", "read", later(1)),
                Op::Replied {
                    chat: anna.into(),
                    at: later(30),
                },
                // Two days on, Ben writing does not answer the campaign.
                Op::Replied {
                    chat: ben.into(),
                    at: later(2 * 24 * 60),
                },
            ],
            later(30),
        )
        .await
        .unwrap();
    let lookup = Lookup {
        messages: ["m1", "m2", "m3", "nope"].map(String::from).to_vec(),
        ..Lookup::default()
    };
    let known = store.known(lookup, later(30)).await.unwrap();
    let mut statuses: Vec<(String, String, String)> = known
        .sent
        .values()
        .map(|s| (s.id.clone(), s.status.clone(), s.chat.clone()))
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [
            ("m1".to_owned(), "read".to_owned(), anna.to_owned()),
            ("m2".into(), "failed".into(), ben.into()),
            ("m3".into(), "delivered".into(), cleo.into()),
        ]
    );
    let m1 = &known.sent["m1"];
    assert_eq!(m1.campaign.as_deref(), Some("promo"));
    assert_eq!(m1.options, ["Mon", "Tue"]);
    assert_eq!(m1.sent_at, now);
    let runs = store.campaign_runs(Some("promo"), 5).await.unwrap();
    let funnel = (
        runs[0].delivered,
        runs[0].read,
        runs[0].replied,
        runs[0].failed,
    );
    assert_eq!(funnel, (1, 1, 1, 1), "{:?}", runs[0]);
}

pub(crate) async fn group_activity_keeps_the_latest_post_and_join(backend: &dyn Backend) {
    let store = backend.open("a").await;
    let now = t0();
    let group = "120363041234567890@g.us";
    let seen = |phone: &str, minutes, joined| Op::GroupActivity {
        group: group.into(),
        phone: phone.into(),
        at: now + Duration::minutes(minutes),
        joined,
    };
    let nothing = store.group_activity(group).await.unwrap();
    assert_eq!(nothing.watched_since, None);
    store
        .apply(
            &[
                seen("4915111111111", 10, false),
                // A late report of an earlier post changes nothing.
                seen("4915111111111", 5, false),
                seen("4915122222222", 20, true),
                seen("4915122222222", 30, false),
            ],
            now,
        )
        .await
        .unwrap();
    let activity = store.group_activity(group).await.unwrap();
    assert_eq!(activity.watched_since, Some(now + Duration::minutes(10)));
    let at = |m| Some(now + Duration::minutes(m));
    assert_eq!(activity.members["4915111111111"], (at(10), None));
    assert_eq!(activity.members["4915122222222"], (at(30), at(20)));
    assert_eq!(activity.members.len(), 2);
}

pub(crate) async fn a_paused_campaign_is_kept_paused_until_resumed(backend: &dyn Backend) {
    let a = backend.open("a").await;
    let b = backend.open("b").await;
    let now = t0();
    a.set_campaign_checked("weekly", now - Duration::days(3))
        .await
        .unwrap();
    assert!(a.paused_campaigns().await.unwrap().is_empty());
    a.set_campaign_paused("weekly", true, now).await.unwrap();
    // Another instance sees the pause, and a campaign never checked can be paused too.
    a.set_campaign_paused("new", true, now).await.unwrap();
    let mut paused = b.paused_campaigns().await.unwrap();
    paused.sort();
    assert_eq!(
        paused,
        vec![("new".to_owned(), now), ("weekly".to_owned(), now)]
    );
    let later = now + Duration::days(2);
    b.set_campaign_paused("weekly", false, later).await.unwrap();
    assert_eq!(
        a.paused_campaigns().await.unwrap(),
        vec![("new".to_owned(), now)]
    );
    // The fire times the pause held count as handled.
    assert_eq!(a.campaign_checked("weekly").await.unwrap(), Some(later));
}
