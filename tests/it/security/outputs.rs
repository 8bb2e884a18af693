//! What Riposte writes for others to read stays inert: spreadsheet cells, log lines, files it
//! may read for a model, redirects it will not follow.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Riposte, fixture};

/// Runs the binary in `dir` on the database there: exit code, standard output and error.
fn riposte_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args(args)
        .current_dir(dir)
        .env("RIPOSTE_DB", dir.join("riposte.db"))
        .env_remove("RUST_LOG")
        .output()
        .expect("riposte runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn contacts_export_quotes_cells_a_spreadsheet_would_run_and_import_reads_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("people.csv"),
        "phone,tags,note,discount\n\
         4915112345678,vip,\"=HYPERLINK(\"\"http://evil.example\"\",\"\"open\"\")\",-5%\n\
         4917098765432,@admin,+1 call back,\"'=already quoted\"\n",
    )
    .unwrap();
    let (code, _, stderr) = riposte_in(root, &["contacts", "import", "people.csv"]);
    assert_eq!(code, 0, "{stderr}");

    let (code, export, stderr) = riposte_in(root, &["contacts", "export"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        export,
        "phone,tags,discount,note\n\
         4915112345678,vip,'-5%,\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"open\"\")\"\n\
         4917098765432,'@admin,'=already quoted,'+1 call back\n"
    );

    // The exported file imported elsewhere gives back exactly the same contacts.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("export.csv"), &export).unwrap();
    let (code, _, stderr) = riposte_in(other.path(), &["contacts", "import", "export.csv"]);
    assert_eq!(code, 0, "{stderr}");
    let (_, again, _) = riposte_in(other.path(), &["contacts", "export"]);
    assert_eq!(again, export);
}

#[tokio::test]
async fn a_sender_id_that_is_not_only_digits_gives_no_phone_and_no_contact() {
    let rules = r#"
rules:
  - name: remember
    then:
      - tag: wrote-in
      - reply: "number: [{{ sender.phone }}]"
"#;
    let mut riposte = Riposte::start(rules).await;
    let senders = [
        "4915=cmd|' /C calc'!A0",
        "+49 151 2345678",
        "120363041234567890@g.us",
        "4915112345678",
    ];
    for (n, from) in senders.iter().enumerate() {
        let mut body = fixture("message-text-private.json");
        body["messages"][0]["id"] = json!(format!("msg-{n}"));
        body["messages"][0]["from"] = json!(from);
        riposte.webhook(&body).await;
    }
    let events = riposte.wait_events(senders.len()).await;
    riposte.wait_jobs_settled().await;
    for event in &events[..3] {
        assert_eq!(event["sender"], "", "{event}");
        assert_eq!(
            event["rules"][0]["actions"][0]["error"],
            "`tag` needs a contact, and this message event's sender has no phone number",
            "{event}"
        );
    }
    assert_eq!(events[3]["sender"], "4915112345678");
    assert_eq!(events[3]["rules"][0]["actions"][0]["error"], Value::Null);
    let mut replies: Vec<String> = riposte
        .whapi
        .received()
        .iter()
        .map(|r| r.body["body"].as_str().unwrap_or_default().to_owned())
        .collect();
    replies.sort();
    assert_eq!(
        replies,
        [
            "number: [4915112345678]",
            "number: []",
            "number: []",
            "number: []"
        ]
    );

    riposte.stop().await;
    let (code, export, stderr) = riposte_in(riposte.dir.path(), &["contacts", "export"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(export, "phone,tags\n4915112345678,wrote-in\n");
}
