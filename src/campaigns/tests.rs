//! Schedule arithmetic on a virtual clock: zones, both DST changes, catch-up and pacing.

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;

fn campaign(schedule: &str, zone: Tz, catch_up: CatchUp) -> Campaign {
    Campaign {
        name: "c".into(),
        description: None,
        file: PathBuf::new(),
        line: 1,
        schedule: schedule.into(),
        cron: parse_schedule(schedule).unwrap(),
        timezone: zone,
        audience: Audience::default(),
        content: Some(Content::Text(crate::templates::Text::Literal("hi".into()))),
        then: Vec::new(),
        extras: None,
        interval: Duration::seconds(2),
        rate: "30/min".into(),
        catch_up,
        exclude: Vec::new(),
        enabled: true,
        channel: None,
        channel_ref: None,
        fingerprint: 0,
    }
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn local(times: &[DateTime<Tz>]) -> Vec<String> {
    times.iter().map(DateTime::to_rfc3339).collect()
}

#[test]
fn weekly_in_two_zones() {
    let berlin = campaign("0 9 * * MON", chrono_tz::Europe::Berlin, CatchUp::Skip);
    assert_eq!(
        local(&berlin.next_fires(utc("2026-03-20T00:00:00Z"), 3)),
        [
            "2026-03-23T09:00:00+01:00",
            "2026-03-30T09:00:00+02:00",
            "2026-04-06T09:00:00+02:00"
        ]
    );
    let ny = campaign("0 9 * * MON", chrono_tz::America::New_York, CatchUp::Skip);
    assert_eq!(
        local(&ny.next_fires(utc("2026-03-06T00:00:00Z"), 2)),
        ["2026-03-09T09:00:00-04:00", "2026-03-16T09:00:00-04:00"]
    );
}

#[test]
fn spring_forward_fires_once_at_the_first_valid_time() {
    // 02:30 does not exist on these days; it fires once, at 03:00.
    let berlin = campaign("30 2 * * *", chrono_tz::Europe::Berlin, CatchUp::Skip);
    assert_eq!(
        local(&berlin.next_fires(utc("2026-03-28T12:00:00Z"), 3)),
        [
            "2026-03-29T03:00:00+02:00",
            "2026-03-30T02:30:00+02:00",
            "2026-03-31T02:30:00+02:00"
        ]
    );
    let ny = campaign("30 2 * * *", chrono_tz::America::New_York, CatchUp::Skip);
    assert_eq!(
        local(&ny.next_fires(utc("2026-03-07T12:00:00Z"), 2)),
        ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]
    );
}

#[test]
fn fall_back_fires_once_not_twice() {
    // 01:30 happens twice on these nights; it fires once.
    let ny = campaign("30 1 * * *", chrono_tz::America::New_York, CatchUp::Skip);
    assert_eq!(
        local(&ny.next_fires(utc("2026-10-31T12:00:00Z"), 3)),
        [
            "2026-11-01T01:30:00-04:00",
            "2026-11-02T01:30:00-05:00",
            "2026-11-03T01:30:00-05:00"
        ]
    );
    let berlin = campaign("30 2 * * *", chrono_tz::Europe::Berlin, CatchUp::Skip);
    assert_eq!(
        local(&berlin.next_fires(utc("2026-10-24T12:00:00Z"), 2)),
        ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    );
}

#[test]
fn due_runs_on_time_and_after_downtime_only_with_catch_up() {
    let skip = campaign("0 9 * * *", chrono_tz::Europe::Berlin, CatchUp::Skip);
    let once = campaign("0 9 * * *", chrono_tz::Europe::Berlin, CatchUp::Once);
    let fire = utc("2026-06-01T07:00:00Z");
    // Checked up to a second before, clock a second after: on time.
    assert_eq!(
        skip.due(fire - Duration::seconds(1), fire + Duration::seconds(1)),
        Some((fire, Trigger::Schedule))
    );
    // Already handled: nothing.
    assert_eq!(skip.due(fire, fire + Duration::seconds(1)), None);
    // Down from the day before until three days later: three runs missed.
    let back = utc("2026-06-03T12:00:00Z");
    let last_missed = utc("2026-06-03T07:00:00Z");
    assert_eq!(skip.due(utc("2026-05-31T12:00:00Z"), back), None);
    assert_eq!(
        once.due(utc("2026-05-31T12:00:00Z"), back),
        Some((last_missed, Trigger::CatchUp))
    );
    // Once caught up, the missed runs are not made again.
    assert_eq!(once.due(back, back + Duration::seconds(5)), None);
}

#[test]
fn six_fields_mean_seconds_and_bad_schedules_are_explained() {
    let every_ten_seconds = campaign("*/10 * * * * *", chrono_tz::UTC, CatchUp::Skip);
    assert_eq!(
        local(&every_ten_seconds.next_fires(utc("2026-01-01T00:00:00Z"), 2)),
        ["2026-01-01T00:00:10+00:00", "2026-01-01T00:00:20+00:00"]
    );
    assert!(
        parse_schedule("0 9 * *")
            .unwrap_err()
            .contains("has 4 fields")
    );
    assert!(
        parse_schedule("0 25 * * *")
            .unwrap_err()
            .starts_with("invalid cron schedule")
    );
    assert!(parse_schedule("0 9 * * FUNDAY").is_err());
}

#[test]
fn rates_become_intervals() {
    assert_eq!(parse_rate("30/min"), Ok(Duration::seconds(2)));
    assert_eq!(parse_rate("600/min"), Ok(Duration::milliseconds(100)));
    assert_eq!(parse_rate("1/s"), Ok(Duration::seconds(1)));
    assert_eq!(parse_rate("120/h"), Ok(Duration::seconds(30)));
    assert!(parse_rate("fast").is_err());
    assert!(parse_rate("0/min").unwrap_err().contains("sends nothing"));
}

#[test]
fn pacing_spreads_five_thousand_recipients_in_their_order_at_600_per_minute() {
    // Enough recipients that the messages are rendered on several threads.
    let mut c = campaign("0 9 * * *", chrono_tz::UTC, CatchUp::Skip);
    c.interval = parse_rate("600/min").unwrap();
    c.audience.numbers = (0..5000).map(|i| format!("49151{i:07}")).collect();
    let start = Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap();
    let planned = plan(&c, &crate::templates::Templates::new(), &[], &[], start);
    assert_eq!(planned.jobs.len(), 5000);
    assert_eq!(planned.jobs[0].run_at, start);
    let last = planned.jobs.last().unwrap().run_at;
    assert_eq!(last - start, Duration::milliseconds(499_900));
    // Evenly spaced: no two sends closer than the interval.
    assert!(
        planned
            .jobs
            .windows(2)
            .all(|w| w[1].run_at - w[0].run_at == Duration::milliseconds(100))
    );
    for (i, job) in planned.jobs.iter().enumerate() {
        assert_eq!(
            job.contact.as_deref(),
            Some(format!("49151{i:07}").as_str())
        );
    }
}

#[test]
fn the_audience_adds_up_without_doubles_and_leaves_out_opted_out_and_excluded() {
    let mut c = campaign("0 9 * * *", chrono_tz::UTC, CatchUp::Skip);
    c.audience.tags = Some((vec![], vec!["deals".into()], vec![]));
    c.audience.numbers = vec![
        "+49 151 1111111".into(),
        "4915222222222".into(),
        "12".into(),
    ];
    c.audience.chats = vec!["120363041234567890@g.us".into()];
    c.exclude = vec!["staff".into()];
    let known = [
        contact("491511111111", &["deals"]),
        contact("4915333333333", &["deals", "opted-out"]),
        contact("4915444444444", &["deals", "staff"]),
        contact("4915222222222", &[]),
    ];
    let start = Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap();
    let planned = plan(&c, &crate::templates::Templates::new(), &known, &[], start);
    let to: Vec<String> = planned
        .jobs
        .iter()
        .map(|j| match &j.work {
            crate::vocab::Work::Call(r) => r.lane.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        to,
        [
            "chat:491511111111",
            "chat:4915222222222",
            "chat:120363041234567890@g.us"
        ]
    );
    // Opted out, excluded by tag, and `12`, which is not a phone number.
    assert_eq!(planned.skipped, 3);
}

#[test]
fn all_reaches_every_known_contact_but_who_opted_out() {
    let mut c = campaign("0 9 * * *", chrono_tz::UTC, CatchUp::Skip);
    c.audience.everyone = true;
    let known = [
        contact("491511111111", &["deals"]),
        contact("4915333333333", &["opted-out"]),
        contact("4915222222222", &[]),
    ];
    let start = Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap();
    let planned = plan(&c, &crate::templates::Templates::new(), &known, &[], start);
    let to: Vec<Option<&str>> = planned.jobs.iter().map(|j| j.contact.as_deref()).collect();
    assert_eq!(to, [Some("491511111111"), Some("4915222222222")]);
    assert_eq!(planned.skipped, 1);
}

/// A known contact with these tags.
fn contact(phone: &str, tags: &[&str]) -> crate::vocab::Contact {
    crate::vocab::Contact {
        phone: phone.into(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        ..Default::default()
    }
}
