//! `riposte check`: every mistake reported with its file, line and column.

use std::path::Path;
use std::process::Command;

fn check(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_riposte"))
        .arg("check")
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
