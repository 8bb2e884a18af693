//! `riposte contacts verify`: batches, pacing, resuming after an interruption, the output
//! file and the import of valid numbers.

use std::process::Command;

use serde_json::{Value, json};

use crate::support::StandIn;

fn verify(dir: &std::path::Path, whapi: &str, extra: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args([
            "contacts",
            "verify",
            "numbers.csv",
            "--out",
            "checked.csv",
            "--batch",
            "2",
            "--every",
            "1ms",
        ])
        .args(extra)
        .current_dir(dir)
        .env("RIPOSTE_DB", dir.join("riposte.db"))
        .env("WHAPI_URL", whapi)
        .env("WHAPI_TOKEN", "test-token")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn an_interrupted_check_resumes_and_asks_about_each_number_once() {
    let dir = tempfile::tempdir().unwrap();
    let numbers = [
        "4915100000001",
        "4915100000002",
        "4915100000003",
        "4915100000004",
        "4915100000005",
    ];
    let csv = format!(
        "phone,name\n{}\n",
        numbers
            .iter()
            .map(|n| format!("+{n},x"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    std::fs::write(dir.path().join("numbers.csv"), csv).unwrap();
    let whapi = StandIn::start().await;
    // Even numbers are on WhatsApp; the second request is refused, which stops the first run.
    let calls = std::sync::atomic::AtomicUsize::new(0);
    whapi.respond_with(move |req| {
        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            return (400, r#"{"error":{"code":400,"message":"refused"}}"#.to_owned());
        }
        let asked = req.body["contacts"].as_array().cloned().unwrap_or_default();
        let contacts: Vec<Value> = asked
            .iter()
            .map(|n| {
                let n = n.as_str().unwrap();
                let valid = n.ends_with(['0', '2', '4', '6', '8']);
                json!({"input": n, "status": if valid { "valid" } else { "invalid" }, "wa_id": if valid { Some(n) } else { None }})
            })
            .collect();
        (200, json!({"contacts": contacts}).to_string())
    });
    let (code, _, stderr) = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        let url = whapi.url.clone();
        move || verify(&dir, &url, &[])
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("run the same command again to resume"),
        "{stderr}"
    );
    let (code, stdout, stderr) = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        let url = whapi.url.clone();
        move || verify(&dir, &url, &["--tag", "on-whatsapp"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("resuming: 2 of 5 numbers were checked before"),
        "{stderr}"
    );
    assert!(
        stdout.contains("5 numbers checked: 2 valid, 3 not on WhatsApp"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 valid numbers imported with tag `on-whatsapp`"),
        "{stdout}"
    );

    // Every number was asked about once, in batches of at most two (the refused call asked
    // about the third and fourth, which were asked again after the resume).
    let asked: Vec<Vec<String>> = whapi
        .received()
        .iter()
        .map(|r| {
            r.body["contacts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    assert!(asked.iter().all(|b| b.len() <= 2));
    assert_eq!(asked[0], ["4915100000001", "4915100000002"]);
    let after_resume: Vec<&String> = asked[2..].iter().flatten().collect();
    assert_eq!(
        after_resume,
        ["4915100000003", "4915100000004", "4915100000005"]
    );
    for request in whapi.received() {
        assert_eq!(request.path, "/contacts");
        assert_eq!(request.headers["authorization"], "Bearer test-token");
    }
    let written = std::fs::read_to_string(dir.path().join("checked.csv")).unwrap();
    assert_eq!(
        written,
        "phone,status,wa_id\n4915100000001,invalid,\n4915100000002,valid,4915100000002\n4915100000003,invalid,\n4915100000004,valid,4915100000004\n4915100000005,invalid,\n"
    );
}

#[tokio::test]
async fn numbers_are_checked_through_the_channel_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("numbers.csv"), "phone\n4915100000002\n").unwrap();
    std::fs::write(
        dir.path().join("channels.yaml"),
        "channels:\n  sales: {id: S-1, token_env: RIPOSTE_TEST_TOKEN_SALES}\n  support: {id: H-2, token_env: RIPOSTE_TEST_TOKEN_SUPPORT}\n",
    )
    .unwrap();
    let whapi = StandIn::start().await;
    whapi.respond_with(|_| {
        let contacts =
            json!([{"input": "4915100000002", "status": "valid", "wa_id": "4915100000002"}]);
        (200, json!({ "contacts": contacts }).to_string())
    });
    let run = |channel: &'static str| {
        let dir = dir.path().to_owned();
        let url = whapi.url.clone();
        tokio::task::spawn_blocking(move || {
            let output = Command::new(env!("CARGO_BIN_EXE_riposte"))
                .args([
                    "contacts",
                    "--channels",
                    "channels.yaml",
                    "verify",
                    "numbers.csv",
                ])
                .args(["--out", "checked.csv", "--channel", channel])
                .current_dir(&dir)
                .env("RIPOSTE_DB", dir.join("riposte.db"))
                .env("WHAPI_URL", url)
                .env("RIPOSTE_TEST_TOKEN_SALES", "tok-sales")
                .env("RIPOSTE_TEST_TOKEN_SUPPORT", "tok-support")
                .env_remove("WHAPI_TOKEN")
                .output()
                .unwrap();
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        })
    };
    let (code, stderr) = run("support").await.unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    let received = whapi.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].headers["authorization"], "Bearer tok-support");
    let (code, stderr) = run("suport").await.unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("unknown channel `suport`, did you mean `support`?"),
        "{stderr}"
    );
    assert_eq!(whapi.received().len(), 1);
}
