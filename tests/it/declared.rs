//! Declared custom events (`events:`): `check` holds rules to their fields, `/events/NAME`
//! refuses a body that lacks or mistypes one (and stores nothing), and the schema shows them.

use std::path::PathBuf;
use std::process::Command;

use riposte::config::SourceFile;
use riposte::rules::{compile, lint};
use serde_json::json;

use crate::support::Riposte;

const SHOP: &str = r#"
events:
  cart_abandoned:
    description: A shopper left items in the cart
    data: {phone: phone, cart_id: text, total: number, link: url, coupon: optional text}
rules:
  - name: cart-reminder
    when:
      event: custom:cart_abandoned
    then:
      - send:
          to: "{{ data.phone }}"
          text: "Your cart {{ data.cart_id }} ({{ data.total }} EUR) is waiting: {{ data.link }}"
"#;

fn source(text: &str) -> SourceFile {
    SourceFile {
        path: PathBuf::from("shop.yaml"),
        text: text.to_owned(),
        root: None,
    }
}

fn errors(text: &str) -> Vec<String> {
    match compile(&[source(text)]) {
        Ok(_) => Vec::new(),
        Err(d) => d.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_misspelt_field_of_a_declared_event_is_an_error_with_the_field_meant() {
    let text = SHOP.replace("data.phone", "data.phnoe");
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("shop.yaml:12:15: error: "),
        "{errors:?}"
    );
    assert!(
        errors[0].ends_with(
            "unknown template variable `data.phnoe`: the event does not declare `phnoe`, did you mean `data.phone`?"
        ),
        "{errors:?}"
    );
}

#[test]
fn declared_fields_pass_and_undeclared_events_take_any_field() {
    assert_eq!(errors(SHOP), Vec::<String>::new());
    let undeclared = SHOP.replace("custom:cart_abandoned", "custom:order_paid");
    assert_eq!(errors(&undeclared), Vec::<String>::new());
}

#[test]
fn unknown_field_types_and_twice_declared_events_are_errors() {
    let text = SHOP.replace("total: number", "total: nummber");
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("unknown type `nummber` for field `total`, did you mean `number`?"),
        "{errors:?}"
    );
    let other = source("events:\n  cart_abandoned:\n    data: {phone: phone}\n");
    let twice = compile(&[
        source(SHOP),
        SourceFile {
            path: "other.yaml".into(),
            ..other
        },
    ])
    .expect_err("an error");
    assert!(
        twice
            .iter()
            .any(|d| d.to_string().contains("`cart_abandoned`")),
        "{twice:?}"
    );
}

#[test]
fn a_rule_on_an_event_one_letter_off_a_declared_one_is_worth_a_warning() {
    let text = SHOP.replace("custom:cart_abandoned", "custom:cart_abandonned");
    let set = compile(&[source(&text)]).expect("compiles: undeclared events are allowed");
    let warnings: Vec<String> = lint(&set, chrono::Utc::now())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains(
            "listens to `custom:cart_abandonned`, which is not declared under `events:`; did you mean `custom:cart_abandoned`?"
        )),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn a_body_missing_or_mistyping_a_declared_field_is_refused_and_not_stored() {
    let riposte = Riposte::start(SHOP).await;
    let (status, answer) = riposte
        .post(
            "/events/cart_abandoned",
            json!({"phone": "4915112345678", "cart_id": "c-1", "total": "42,50"}).to_string(),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        answer["problems"],
        json!([
            "field `link` (url) is missing",
            "field `total` must be a number, got \"42,50\""
        ])
    );
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("`cart_abandoned` does not fit"),
        "{answer}"
    );

    let good = json!({"phone": "4915112345678", "cart_id": "c-1", "total": 42.5,
        "link": "https://shop.example/c/1", "source": "checkout"});
    let (status, answer) = riposte
        .post("/events/cart_abandoned", good.to_string())
        .await;
    assert_eq!(status, 202, "{answer}");
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(
        got[0].body,
        json!({"to": "4915112345678",
            "body": "Your cart c-1 (42.5 EUR) is waiting: https://shop.example/c/1"})
    );
    let events = riposte.wait_events(1).await;
    assert_eq!(events.len(), 1, "only the body that fits was stored");
}

#[test]
fn the_schema_of_declared_events_is_printed_for_their_senders() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shop.yaml"), SHOP).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args(["schema", "--events", "--rules"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let cart = &schema["$defs"]["cart_abandoned"];
    assert_eq!(
        cart["required"],
        json!(["cart_id", "link", "phone", "total"])
    );
    assert_eq!(cart["properties"]["total"], json!({"type": "number"}));
    assert_eq!(cart["description"], "A shopper left items in the cart");
}
