//! The committed JSON Schema matches the rule types.

#[test]
fn committed_schema_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/rules.schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let current = riposte::config::schema();
    assert!(
        committed == current,
        "schema/rules.schema.json is stale: run `cargo run -- schema > schema/rules.schema.json`"
    );
}
