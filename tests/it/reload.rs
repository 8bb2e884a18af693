//! Hot reload: saves by rename while events stream in, broken saves, SIGHUP and the admin API.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{DEADLINE, Riposte, fixture};

fn rules(version: &str) -> String {
    format!("rules:\n  - name: echo\n    then:\n      - reply: \"{version}: {{{{ text }}}}\"\n")
}

fn message(n: usize) -> Value {
    let mut body = fixture("message-text-private.json");
    body["messages"][0]["id"] = json!(format!("reload-{n}"));
    body["messages"][0]["text"]["body"] = json!(format!("m{n}"));
    body
}

/// Writes a file the way editors do: a new file beside it, renamed over the old one.
fn save_by_rename(riposte: &Riposte, content: &str) {
    let dir = riposte.dir.path().join("rules");
    std::fs::write(dir.join(".rules.yaml.swp"), content).unwrap();
    std::fs::rename(dir.join(".rules.yaml.swp"), dir.join("rules.yaml")).unwrap();
}

/// Waits for a reload after the one `/admin/rules` reported last, and returns the new report.
async fn wait_reload(riposte: &Riposte, previous: &Value) -> Value {
    let wait = async {
        loop {
            let rules = riposte.get("/admin/rules").await;
            if rules["last_reload"] != previous["last_reload"] {
                return rules;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .expect("a reload")
}

#[tokio::test]
async fn a_save_by_rename_changes_the_reply_within_a_second_and_loses_nothing() {
    let riposte = Riposte::start(&rules("one")).await;
    let before = riposte.get("/admin/rules").await;
    let old = before["version"].as_str().unwrap().to_owned();
    let mut saved_at = None;
    let mut reloaded = None;
    let total = 60;
    for n in 0..total {
        riposte.webhook(&message(n)).await;
        if n == 20 {
            save_by_rename(&riposte, &rules("two"));
            saved_at = Some(Instant::now());
        }
        if n > 20 && reloaded.is_none() && riposte.get("/admin/rules").await["version"] != old {
            reloaded = Some(saved_at.unwrap().elapsed());
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let report = wait_reload(&riposte, &before).await;
    let reloaded = reloaded.unwrap_or_else(|| saved_at.unwrap().elapsed());
    assert!(
        reloaded < Duration::from_secs(1),
        "reload took {reloaded:?}"
    );
    assert_eq!(report["last_reload"]["changed"], json!(["echo"]));
    let got = riposte.whapi.wait_for(total).await;
    let texts: Vec<String> = got
        .iter()
        .map(|r| r.body["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts.len(), total, "no event doubled");
    for n in 0..total {
        let answers: Vec<&String> = texts
            .iter()
            .filter(|t| t.ends_with(&format!(": m{n}")))
            .collect();
        assert_eq!(answers.len(), 1, "message {n} answered once: {texts:?}");
    }
    assert!(texts[..20].iter().all(|t| t.starts_with("one:")));
    assert!(texts.last().unwrap().starts_with("two:"));
    // Once switched, never back: each event used one whole rule set.
    let first_two = texts.iter().position(|t| t.starts_with("two:")).unwrap();
    assert!(
        texts[first_two..].iter().all(|t| t.starts_with("two:")),
        "{texts:?}"
    );
}

#[tokio::test]
async fn a_broken_save_keeps_the_last_good_rules_and_says_where() {
    let riposte = Riposte::start(&rules("good")).await;
    let before = riposte.get("/admin/rules").await;
    let old = before["version"].as_str().unwrap().to_owned();
    save_by_rename(
        &riposte,
        "rules:\n  - name: echo\n    then:\n      - reply: \"{{ txt }}\"\n",
    );
    let report = wait_reload(&riposte, &before).await;
    assert_eq!(report["version"], old, "still the old set");
    let last = &report["last_reload"];
    assert_eq!(last["result"], "rejected");
    let error = last["errors"][0].as_str().unwrap();
    assert!(
        error.ends_with(
            "rules/rules.yaml:4:16: error: unknown template variable `txt`, did you mean `text`?"
        ),
        "{error}"
    );
    riposte.webhook(&message(1)).await;
    assert_eq!(riposte.whapi.wait_for(1).await[0].body["body"], "good: m1");
    assert!(riposte.metric("riposte_rules_reload_failures_total").await >= 1);

    save_by_rename(&riposte, &rules("fixed"));
    let report = wait_reload(&riposte, &report).await;
    assert_eq!(report["last_reload"]["result"], "reloaded");
    riposte.webhook(&message(2)).await;
    assert_eq!(riposte.whapi.wait_for(2).await[1].body["body"], "fixed: m2");
}

#[tokio::test]
async fn admin_reload_reports_unchanged_rejected_and_reloaded() {
    let riposte = Riposte::start_with(&rules("a"), |s| s.watch = false).await;
    let (status, report) = riposte.post("/admin/reload", "").await;
    assert_eq!(
        (status, report["result"].as_str()),
        (200, Some("unchanged"))
    );
    std::fs::write(
        riposte.dir.path().join("rules/extra.yaml"),
        "rules:\n  - name: echo\n    then: [{reply: dup}]\n",
    )
    .unwrap();
    let (status, report) = riposte.post("/admin/reload", "").await;
    assert_eq!((status, report["result"].as_str()), (422, Some("rejected")));
    assert!(
        report["errors"][0]
            .as_str()
            .unwrap()
            .contains("duplicate rule name `echo`"),
        "{report}"
    );
    std::fs::write(
        riposte.dir.path().join("rules/extra.yaml"),
        "rules:\n  - name: second\n    when: {keywords: [x]}\n    then: [{reply: x}]\n",
    )
    .unwrap();
    let (status, report) = riposte.post("/admin/reload", "").await;
    assert_eq!((status, report["result"].as_str()), (200, Some("reloaded")));
    assert_eq!(report["added"], json!(["second"]));
    let rules = riposte.get("/admin/rules").await;
    assert_eq!(rules["rules"].as_array().unwrap().len(), 2);
    assert_eq!(rules["files"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_event_s_detail_explains_every_rule_until_the_rules_change() {
    let explained = "rules:\n  - name: greeting\n    when: {text: '(?i)^hello'}\n    then: [{reply: hi}]\n  - name: tagged\n    when: {tags: {all: [vip]}}\n    then: [{reply: vip}]\n  - name: echo\n    then:\n      - reply: \"{{ text }}\"\n";
    let riposte = Riposte::start_with(explained, |s| s.watch = false).await;
    riposte.webhook(&message(1)).await;
    riposte.whapi.wait_for(1).await;
    let listed = riposte.wait_events(1).await;
    let matched: Vec<&Value> = listed[0]["rules"].as_array().unwrap().iter().collect();
    assert_eq!(matched.len(), 1, "the list shows what matched: {matched:?}");
    assert!(listed[0].get("explained").is_none() && listed[0].get("inputs").is_none());
    let detail = format!("/admin/events/{}", listed[0]["seq"]);
    let events = [riposte.get(&detail).await];
    let traces: Vec<String> = events[0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {} {}", r["rule"], r["result"], r["condition"]))
        .collect();
    assert_eq!(
        traces,
        [
            r#""greeting" "failed" "text""#,
            r#""tagged" "failed" "tags""#,
            r#""echo" "matched" null"#
        ]
    );
    assert_eq!(events[0]["explained"], true);
    assert!(
        events[0].get("inputs").is_none(),
        "internal inputs stay internal"
    );

    std::fs::write(riposte.dir.path().join("rules/rules.yaml"), rules("new")).unwrap();
    let (status, _) = riposte.post("/admin/reload", "").await;
    assert_eq!(status, 200);
    let events = [riposte.get(&detail).await];
    let rules = events[0]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "only what matched is kept: {rules:?}");
    assert_eq!(rules[0]["rule"], "echo");
    assert!(
        events[0]["explained"]
            .as_str()
            .unwrap()
            .contains("rules changed")
    );
}

/// Posts messages, one at a time, until one is answered by the rules saved as `version`;
/// returns when that answer reached Whapi.
async fn first_answer_from(riposte: &Riposte, version: &str, next: &mut usize) -> Instant {
    let wait = async {
        loop {
            let n = *next;
            *next += 1;
            let seen = riposte.whapi.received().len();
            riposte.webhook(&message(n)).await;
            let got = riposte.whapi.wait_for(seen + 1).await;
            let wanted = format!("{version}: m{n}");
            if let Some(answer) = got[seen..]
                .iter()
                .find(|r| r.body["body"].as_str() == Some(wanted.as_str()))
            {
                return answer.at;
            }
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .expect("the saved rules answer")
}

/// Save to live: from writing the file to the first answer the new rules sent, five saves,
/// by rename and in place (`--nocapture` prints the times; docs/PERFORMANCE.md has them).
/// The median must stay under a second. One save may take longer on a machine busy with
/// other tests, so a single save is only held to two seconds, which still fails a reload
/// as slow as 2.6 s.
#[tokio::test]
async fn a_saved_rule_file_answers_the_next_webhook_within_a_second() {
    let riposte = Riposte::start(&rules("v0")).await;
    let mut next = 0;
    first_answer_from(&riposte, "v0", &mut next).await;
    let mut took = Vec::new();
    for round in 1..=5 {
        let version = format!("v{round}");
        let saved = Instant::now();
        if round % 2 == 0 {
            std::fs::write(riposte.dir.path().join("rules/rules.yaml"), rules(&version)).unwrap();
        } else {
            save_by_rename(&riposte, &rules(&version));
        }
        let answered = first_answer_from(&riposte, &version, &mut next).await;
        took.push(answered - saved);
    }
    eprintln!("save to live, five saves: {took:?}");
    let mut sorted = took.clone();
    sorted.sort();
    assert!(
        sorted[2] < Duration::from_secs(1),
        "median over a second: {took:?}"
    );
    assert!(
        sorted[4] < Duration::from_secs(2),
        "a save took two seconds or more to serve: {took:?}"
    );
}
