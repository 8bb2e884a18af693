//! What a rule author sees when a rule fails at run time, and `simulate` with custom events.

use serde_json::json;

use crate::support::Riposte;

const SHIPPED: &str = r#"
rules:
  - name: shipped
    when:
      event: custom:order_shipped
    then:
      - send:
          to: "{{ data.phone }}"
          text: "Order {{ data.order }} is on its way"
"#;

#[tokio::test]
async fn a_template_failing_at_run_time_names_the_variable_the_rule_and_the_line() {
    let riposte = Riposte::start(SHIPPED).await;
    let (status, _) = riposte
        .post(
            "/events/order_shipped",
            json!({"phone": "4915112345678", "order_id": "o-1"}).to_string(),
        )
        .await;
    assert_eq!(status, 202);
    let events = riposte.wait_events(1).await;
    let record = events[0].to_string();
    let rules_file = riposte.dir.path().join("rules").join("rules.yaml");
    let failed = &events[0]["rules"][0]["actions"][0];
    assert_eq!(failed["action"], "send", "{record}");
    assert_eq!(
        failed["error"],
        "`data.order` is not defined for this event (`data` has: order_id, phone)"
    );
    assert_eq!(failed["source"], format!("{}:7", rules_file.display()));
    assert!(!record.contains("undefined value"), "{record}");
    assert!(riposte.whapi.received().is_empty());
}

fn simulate(args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_riposte"))
        .arg("simulate")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn simulate_takes_a_custom_event_and_shows_the_time_and_the_follow_ups() {
    let (code, stdout, stderr) = simulate(&[
        "--rules",
        "examples/cart-recovery",
        "--at",
        "2026-03-02T10:00:00Z",
        "--event",
        "cart_abandoned",
        "tests/fixtures/simulate/cart.json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!(stdout);
}

#[test]
fn simulate_refuses_a_custom_event_its_declaration_would_refuse() {
    let (code, stdout, stderr) = simulate(&[
        "--rules",
        "examples/cart-recovery",
        "--event",
        "cart_abandoned",
        "tests/fixtures/simulate/cart-mistyped.json",
    ]);
    assert_eq!(code, 1);
    assert!(!stdout.contains("matched"), "{stdout}");
    assert!(
        stderr.contains("`cart_abandoned` would be refused at /events/cart_abandoned (422): field `cart_id` must be text (a JSON string), got 7; field `url` (url) is missing"),
        "{stderr}"
    );
}

#[test]
fn simulate_runs_a_file_of_steps_on_a_virtual_clock() {
    let (code, stdout, stderr) = simulate(&[
        "--rules",
        "examples/cart-recovery",
        "--steps",
        "tests/fixtures/simulate/cart.steps.yaml",
    ]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!(stdout);
}
