//! The committed JSON Schemas match the types, and every shipped YAML file points at them.

use std::path::Path;

fn check(file: &str, current: &str, command: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == current,
        "{file} is stale: run `cargo run -- {command} > {file}`"
    );
}

#[test]
fn committed_schemas_are_current() {
    check(
        "schema/rules.schema.json",
        &riposte::config::schema(),
        "schema",
    );
    check(
        "schema/rules-test.schema.json",
        &riposte::config::test_schema(),
        "schema --tests",
    );
    check(
        "schema/channels.schema.json",
        &riposte::config::channels_schema(),
        "schema --channels",
    );
}

#[test]
fn every_shipped_yaml_file_names_its_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut dirs = vec![root.join("rules"), root.join("examples")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        let first = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let name = file.file_name().unwrap().to_string_lossy();
        let schema = if name.contains(".test.") {
            "rules-test.schema.json"
        } else if name.starts_with("channels.") {
            "channels.schema.json"
        } else {
            "rules.schema.json"
        };
        assert!(
            first.starts_with("# yaml-language-server: $schema=") && first.ends_with(schema),
            "{} should start with `# yaml-language-server: $schema=.../schema/{schema}`",
            file.display()
        );
    }
}
