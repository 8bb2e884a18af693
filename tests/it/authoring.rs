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
    let expected = format!(
        "`data.order` is not defined for this event (`data` has: order_id, phone) (in `send` of rule `shipped`, {}:7)",
        rules_file.display()
    );
    assert!(record.contains(&expected.replace('"', "\\\"")), "{record}");
    assert!(!record.contains("undefined value"), "{record}");
    assert!(riposte.whapi.received().is_empty());
}
