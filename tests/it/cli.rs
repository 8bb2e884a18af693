//! The command line: `check` reports every mistake with its position; `simulate` shows what
//! webhooks would do without sending anything.

use std::path::Path;
use std::process::Command;

fn check(args: &[&str]) -> (i32, String, String) {
    riposte(&[&["check"], args].concat())
}

fn riposte(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("riposte runs");
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
