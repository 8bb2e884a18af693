//! What Riposte writes for others to read stays inert: spreadsheet cells, log lines, files it
//! may read for a model, redirects it will not follow.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use riposte::ai::model::{ChatModel, HttpModel, Message, ModelSettings, Request};
use serde_json::{Value, json};
use tracing_subscriber::EnvFilter;

use riposte::whapi::Client;

use crate::support::{Riposte, StandIn, fixture};

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

/// A log destination the test can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a sender could write to forge a log line of its own, and to recolour a terminal.
const FORGED: &str = "hi\n1999-12-31T23:59:59.000000Z ERROR riposte: forged\r\x1b[2K\u{85}";

/// The text-format subscriber writing into a buffer, with ANSI colours as on a terminal.
fn capture() -> (Captured, impl tracing::Subscriber + Send + Sync) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber =
        riposte::logging::text_subscriber(EnvFilter::new("info"), move || writer.clone());
    (captured, subscriber)
}

/// No forged line starts in `log`, and no control character it carried is left raw.
fn assert_inert(log: &str) {
    assert!(
        !log.lines().any(|l| l.starts_with("1999-12-31")),
        "a forged line: {log}"
    );
    assert!(
        !log.contains('\r') && !log.contains('\u{85}') && !log.contains("\x1b[2K"),
        "{log:?}"
    );
}

#[test]
fn a_line_break_or_terminal_control_in_any_logged_value_stays_escaped_on_its_line() {
    let (captured, subscriber) = capture();
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("request", uri = %FORGED);
        let _entered = span.enter();
        tracing::warn!(text = %FORGED, debug = ?FORGED, plain = FORGED, "got {FORGED}");
        let error: &(dyn std::error::Error + 'static) = &std::io::Error::other(FORGED);
        tracing::error!(error, "failed");
    });
    let log = captured.text();
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(
        log.contains(r"got hi\n1999-12-31T23:59:59.000000Z"),
        "{log}"
    );
    assert_inert(&log);
}

#[tokio::test]
async fn a_response_body_with_a_forged_log_line_is_logged_on_one_line() {
    let (captured, subscriber) = capture();
    // Every worker of the server runs on this test's one thread, so they log here.
    let _default = tracing::subscriber::set_default(subscriber);
    let rules = r#"
rules:
  - name: notify
    when: {event: "custom:ping"}
    then:
      - webhook: {url: "http://{{ data.host }}/hooks/ping", body: {n: 1}}
"#;
    let riposte = Riposte::start(rules).await;
    riposte.whapi.respond_with(|_| (400, FORGED.to_owned()));
    let host = riposte.whapi.url.trim_start_matches("http://").to_owned();
    riposte
        .post("/events/ping", json!({ "host": host }).to_string())
        .await;
    riposte.wait_events(1).await;
    riposte.wait_jobs_settled().await;
    let log = captured.text();
    let rejected: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("rejected, moved to dead letters"))
        .collect();
    assert_eq!(rejected.len(), 1, "{log}");
    assert!(
        rejected[0].contains(
            r"HTTP 400 Bad Request: hi\n1999-12-31T23:59:59.000000Z ERROR riposte: forged\r\x1b[2K\x85"
        ),
        "{log}"
    );
    assert_inert(&log);
}

#[test]
fn knowledge_outside_the_rules_folder_is_refused_where_it_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let rules = root.join("rules");
    std::fs::create_dir_all(rules.join("team")).unwrap();
    std::fs::write(root.join("secret.md"), "the database password").unwrap();
    std::fs::write(rules.join("faq.md"), "Returns are free.").unwrap();
    std::os::unix::fs::symlink("../secret.md", rules.join("link.md")).unwrap();
    let secret = root.join("secret.md").canonicalize().unwrap();
    let rule = |name: &str, knowledge: &str| {
        format!(
            "  - name: {name}\n    then:\n      - ai_reply:\n          system: hi\n          knowledge: {knowledge}\n"
        )
    };
    let text = [
        "rules:\n".to_owned(),
        rule("passwd", "/etc/passwd"),
        rule("escape", "../secret.md"),
        rule("absolute", &secret.display().to_string()),
        rule("link", "link.md"),
        rule("inside", "[faq.md, team/../faq.md]"),
    ]
    .concat();
    std::fs::write(rules.join("bot.yaml"), text).unwrap();
    // A rule file in a subfolder may name a file elsewhere in the rules folder.
    let sub = "rules:\n".to_owned() + &rule("team", "../faq.md");
    std::fs::write(rules.join("team/sub.yaml"), sub).unwrap();

    let (code, stdout, stderr) = riposte_in(root, &["check", "rules"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let outside = "is outside the rules folder `rules`";
    let must = "files a rule reads must be inside it";
    let secret = secret.display();
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            format!("rules/bot.yaml:6:22: error: knowledge file `/etc/passwd` {outside}: {must}"),
            format!(
                "rules/bot.yaml:11:22: error: knowledge file `../secret.md` {outside} (it leads to `{secret}`): {must}"
            ),
            format!("rules/bot.yaml:16:22: error: knowledge file `{secret}` {outside}: {must}"),
            format!(
                "rules/bot.yaml:21:22: error: knowledge file `link.md` {outside} (it leads to `{secret}`): {must}"
            ),
        ]
    );
}

#[test]
fn an_audience_file_outside_the_rules_folder_is_refused_where_it_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let rules = root.join("rules");
    std::fs::create_dir_all(rules.join("audiences")).unwrap();
    std::fs::write(root.join("leads.csv"), "phone\n4915112345678\n").unwrap();
    std::fs::write(rules.join("audiences/vip.csv"), "phone\n4915112345678\n").unwrap();
    let campaign = |name: &str, file: &str| {
        format!(
            "  - name: {name}\n    schedule: \"0 9 * * MON\"\n    audience: {{file: {file}}}\n    send: {{text: hi}}\n"
        )
    };
    let text = [
        "campaigns:\n".to_owned(),
        campaign("passwd", "/etc/passwd"),
        campaign("escape", "../leads.csv"),
        campaign("inside", "audiences/vip.csv"),
    ]
    .concat();
    std::fs::write(rules.join("c.yaml"), text).unwrap();
    let (code, stdout, stderr) = riposte_in(root, &["check", "rules"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let leads = root.join("leads.csv").canonicalize().unwrap();
    let must = "is outside the rules folder `rules`";
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            format!(
                "rules/c.yaml:4:22: error: audience file `/etc/passwd` {must}: files a rule reads must be inside it"
            ),
            format!(
                "rules/c.yaml:8:22: error: audience file `../leads.csv` {must} (it leads to `{}`): files a rule reads must be inside it",
                leads.display()
            ),
        ]
    );
}

#[tokio::test]
async fn the_model_client_follows_no_redirect_so_neither_prompt_nor_key_goes_elsewhere() {
    let elsewhere = StandIn::start().await;
    let target = format!("{}/v1/chat/completions", elsewhere.url);
    let location = target.clone();
    let redirect = axum::Router::new().fallback(move || {
        let location = location.clone();
        async move {
            (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [("location", location)],
                "moved",
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let model_url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, redirect).await });

    let client = Client::new("http://127.0.0.1:9", None, true, Duration::from_secs(5)).unwrap();
    let model = HttpModel::new(
        ModelSettings {
            url: Some(model_url),
            key: Some("sk-secret".into()),
            model: Some("test-model".into()),
        },
        client.connections(),
    );
    let request = Request {
        model: None,
        messages: vec![Message {
            role: "user",
            content: "my order number is 12345".into(),
        }],
        max_tokens: None,
        temperature: None,
        offer_handoff: false,
        timeout: Duration::from_secs(5),
    };
    let answer = model.complete(&request).await;
    assert!(
        elsewhere.received().is_empty(),
        "{:?}",
        elsewhere.received()
    );
    let error = answer.unwrap_err();
    assert!(!error.transient, "{error:?}");
    assert_eq!(
        error.message,
        format!(
            "the model endpoint answered HTTP 307 Temporary Redirect (moved to {target}; redirects are not followed): moved"
        )
    );
    assert!(
        elsewhere.received().is_empty(),
        "{:?}",
        elsewhere.received()
    );
}
