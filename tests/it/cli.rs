//! The command line: `check` reports every mistake with its position; `simulate` shows what
//! webhooks would do without sending anything.

use std::path::Path;
use std::process::Command;

fn check(args: &[&str]) -> (i32, String, String) {
    riposte(&[&["check"], args].concat())
}

fn riposte(args: &[&str]) -> (i32, String, String) {
    run(Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR")))
}

/// Runs a command to its end: exit code, standard output, standard error.
fn run(command: &mut Command) -> (i32, String, String) {
    let output = command.output().expect("riposte runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn broken_rule_files_are_all_reported_with_positions() {
    let (code, stdout, stderr) = check(&["tests/fixtures/rules/broken"]);
    assert_eq!(code, 1);
    assert!(stderr.trim_end().ends_with("errors"), "{stderr}");
    insta::assert_snapshot!(stdout);
}

/// Each mistake people make in YAML, in the words `check` uses for it (one snapshot per file
/// of `tests/fixtures/rules/mistakes`).
#[test]
fn common_yaml_mistakes_are_explained_with_the_fix() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules/mistakes");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 8, "{names:?}");
    for name in names {
        let (code, stdout, _) = check(&[&format!("tests/fixtures/rules/mistakes/{name}")]);
        assert_eq!(code, 1, "{name}: {stdout}");
        insta::assert_snapshot!(name.trim_end_matches(".yaml").to_owned(), stdout);
    }
}

#[test]
fn every_reported_position_exists_in_its_file() {
    let (_, stdout, _) = check(&["tests/fixtures/rules/broken"]);
    for line in stdout.lines() {
        let mut parts = line.splitn(4, ':');
        let (file, row, col) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
        let row: usize = row.parse().unwrap();
        let col: usize = col.parse().unwrap();
        let source_line = text
            .lines()
            .nth(row - 1)
            .unwrap_or_else(|| panic!("{line}: no line {row}"));
        assert!(
            col <= source_line.chars().count() + 1,
            "{line}: column past the end of `{source_line}`"
        );
    }
}

#[test]
fn the_default_rules_and_the_test_rules_pass() {
    let (code, stdout, stderr) = check(&["rules"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("ok: "), "{stdout}");
}

#[test]
fn simulate_prints_rendered_actions_and_explains_the_rest() {
    let (code, stdout, stderr) = riposte(&[
        "simulate",
        "--rules",
        "rules",
        "--explain",
        "--at",
        "2026-03-02T10:00:00Z",
        "tests/fixtures/whapi/message-text-private.json",
        "tests/fixtures/whapi/message-from-me.json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!(stdout);
}

#[test]
fn simulate_json_carries_each_rules_result() {
    let (code, stdout, stderr) = riposte(&[
        "simulate",
        "--json",
        "--rules",
        "rules",
        "tests/fixtures/whapi/batch-multiple-messages.json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let events = report.as_array().unwrap();
    assert_eq!(events.len(), 3);
    let greeting = &events[0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["result"] == "matched")
        .unwrap()["actions"][0];
    assert_eq!(greeting["action"], "reply");
    assert_eq!(
        greeting["effects"][0]["request"]["body"]["json"]["body"],
        "Thanks for your message! We'll get back to you as soon as we can."
    );
}

#[test]
fn simulate_refuses_broken_rules() {
    let (code, _, stderr) = riposte(&[
        "simulate",
        "--rules",
        "tests/fixtures/rules/broken/04-bad-regex.yaml",
        "tests/fixtures/whapi/message-text-private.json",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("04-bad-regex.yaml:4:21: error: invalid regex"),
        "{stderr}"
    );
}

pub(crate) fn riposte_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    run(Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args(args)
        .current_dir(dir)
        .env("RIPOSTE_DB", dir.join("riposte.db"))
        .env("RIPOSTE_RULES", dir.join("rules")))
}

#[test]
fn contacts_campaigns_and_jobs_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("rules")).unwrap();
    std::fs::write(
        root.join("rules/deals.yaml"),
        "campaigns:\n  - name: deals\n    schedule: \"0 9 * * MON\"\n    timezone: Europe/Berlin\n    audience: {tags: {any: [deals]}}\n    send: \"Hi {{ contact.attrs.first_name }}\"\n",
    )
    .unwrap();
    std::fs::write(root.join("people.csv"), "phone,tags,first_name\n+49 151 12345678,deals;vip,Anna\n4917098765432,opted-out;deals,Jonas\nnot a phone,deals,X\n").unwrap();

    let (code, stdout, stderr) = riposte_in(
        root,
        &["contacts", "import", "people.csv", "--tag", "imported"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "imported 2 contacts\n");
    assert!(stderr.contains("skipped `not a phone`"), "{stderr}");
    let (_, export, _) = riposte_in(root, &["contacts", "export"]);
    assert_eq!(
        export,
        "phone,tags,first_name\n4915112345678,deals;imported;vip,Anna\n4917098765432,deals;imported;opted-out,Jonas\n"
    );

    let (code, preview, stderr) = riposte_in(root, &["campaigns", "preview", "deals"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        preview.contains("audience: 1 recipients, 1 left out"),
        "{preview}"
    );
    assert!(
        preview.contains(r#"/messages/text {"to":"4915112345678","body":"Hi Anna"}"#),
        "{preview}"
    );
    assert_eq!(
        preview
            .lines()
            .filter(|l| l.starts_with("  Mon ") && l.ends_with(":00:00 CET")
                || l.ends_with(":00:00 CEST"))
            .count(),
        5,
        "{preview}"
    );

    let (code, run, stderr) = riposte_in(root, &["campaigns", "run", "deals"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        run.starts_with("run 1: 1 messages planned in ") && run.contains(" s, 1 left out"),
        "{run}"
    );
    let (_, jobs, _) = riposte_in(root, &["jobs", "list"]);
    assert!(
        jobs.contains("pending")
            && jobs.contains("campaign")
            && jobs.contains("POST /messages/text"),
        "{jobs}"
    );
    let id = jobs.split_whitespace().next().unwrap();
    let (code, out, _) = riposte_in(root, &["jobs", "cancel", id]);
    assert_eq!(
        (code, out.trim()),
        (0, format!("job {id} is cancelled").as_str())
    );
    let (code, _, err) = riposte_in(root, &["jobs", "cancel", id]);
    assert_eq!(code, 1);
    assert!(err.contains("no pending or dead job"), "{err}");
    let (code, out, _) = riposte_in(root, &["jobs", "retry", id]);
    assert_eq!(
        (code, out.trim()),
        (0, format!("job {id} is queued again").as_str())
    );
}

#[test]
fn lint_warnings_are_reported_and_can_be_denied() {
    let (code, stdout, _) = check(&["--verbose", "tests/fixtures/rules/lint"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!(stdout);
    let (code, _, stderr) = check(&["--deny-warnings", "tests/fixtures/rules/lint"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("7 warnings (denied)"), "{stderr}");
}

#[test]
fn every_example_passes_check_with_warnings_denied() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec!["rules".to_owned()];
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            dirs.push(path.strip_prefix(root).unwrap().display().to_string());
        }
    }
    for dir in dirs {
        let channels = format!("{dir}/channels.yaml");
        let mut args = vec!["--deny-warnings"];
        if root.join(&channels).exists() {
            args.extend(["--channels", &channels]);
        }
        args.push(&dir);
        let (code, stdout, stderr) = check(&args);
        assert_eq!(code, 0, "{dir}:\n{stdout}{stderr}");
    }
}

#[test]
fn channels_the_rules_name_are_checked_against_the_channels_file() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: r\n    when: {channel: [sals, nobody]}\n    then:\n      - send: {to: \"1\", text: hi, channel: suport}\n  - name: r2\n    then:\n      - reply: {text: hi, channel: sales}\ncampaigns:\n  - name: c\n    schedule: \"0 9 * * *\"\n    audience: {numbers: [\"4915112345678\"]}\n    send: hi\n",
    )
    .unwrap();
    let channels = dir.path().join("channels.yaml");
    std::fs::write(
        &channels,
        "channels:\n  sales: {id: S-1, token_env: T_SALES}\n  support: {id: H-2, token_env: T_SUPPORT}\n",
    )
    .unwrap();
    let rules = rules.to_string_lossy().into_owned();
    let (code, stdout, _) = check(&["--channels", &channels.to_string_lossy(), &rules]);
    assert_eq!(code, 1, "{stdout}");
    // A reply cannot choose its number: that is a mistake in the rule itself, found first.
    assert!(
        stdout.contains(
            "rules.yaml:8:36: error: a `reply` goes out through the channel the event came in on"
        ),
        "{stdout}"
    );
    std::fs::write(
        &rules,
        std::fs::read_to_string(&rules)
            .unwrap()
            .replace("reply: {text: hi, channel: sales}", "reply: hi"),
    )
    .unwrap();
    let (code, stdout, _) = check(&["--channels", &channels.to_string_lossy(), &rules]);
    assert_eq!(code, 1, "{stdout}");
    let lines: Vec<String> = stdout
        .lines()
        .map(|l| l.replace(&rules, "rules.yaml"))
        .collect();
    assert_eq!(
        lines,
        [
            "rules.yaml:3:21: error: unknown channel `sals`, did you mean `sales`?",
            "rules.yaml:3:21: error: unknown channel `nobody` (the channels file names sales, support)",
            "rules.yaml:5:44: error: unknown channel `suport`, did you mean `support`?",
            "rules.yaml:10:1: error: campaign `c` needs `channel:` to say which number sends it: one of sales, support",
        ]
    );
    // The channels file's own mistakes are located too.
    std::fs::write(&channels, "channels:\n  sales: {id: S-1, token: abc}\n").unwrap();
    let (code, _, stderr) = check(&["--channels", &channels.to_string_lossy(), &rules]);
    assert_eq!(code, 1);
    assert!(stderr.contains("channels.yaml:2:"), "{stderr}");
    assert!(stderr.contains("unknown field `token`"), "{stderr}");
}

#[test]
fn failing_rule_tests_show_a_readable_diff() {
    let (code, stdout, _) = riposte(&["test", "tests/fixtures/ruletests/failing"]);
    assert_eq!(code, 1);
    assert!(
        stdout.trim_end().ends_with("2 passed, 4 failed"),
        "{stdout}"
    );
    insta::assert_snapshot!(stdout);
}
