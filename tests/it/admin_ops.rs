//! The admin operations the console's pages and buttons use, called as the API (the console
//! calls the same handlers; `console.rs` drives them through the browser).

use serde_json::{Value, json};

use crate::support::{Riposte, fixture};

const RULES: &str = r#"
rules:
  - name: greeting
    when: {keywords: [hallo]}
    then:
      - reply: "Hello {{ sender.name | default('there') }}!"
campaigns:
  - name: weekly-deals
    schedule: "0 9 * * MON"
    audience: {numbers: ["4915111111111", "not a number"]}
    send: "Deals for {{ contact.phone }}"
"#;

fn rules_file(riposte: &Riposte) -> String {
    riposte
        .dir
        .path()
        .join("rules/rules.yaml")
        .to_string_lossy()
        .into_owned()
}

async fn put(riposte: &Riposte, path: &str, body: &str) -> (u16, Value) {
    riposte.send("PUT", path, &[], body.to_owned()).await
}

#[tokio::test]
async fn an_event_is_simulated_with_the_rules_as_they_are_now() {
    let riposte = Riposte::start(RULES).await;
    riposte.webhook(&fixture("message-text-private.json")).await;
    riposte.wait_events(1).await;
    let file = rules_file(&riposte);
    let changed = RULES.replace("keywords: [hallo]", "keywords: [nope]");
    let (status, _) = put(
        &riposte,
        &format!("/admin/rules/file?path={file}"),
        &changed,
    )
    .await;
    assert_eq!(status, 200);
    let (status, simulated) = riposte.post("/admin/events/1/simulate", "").await;
    assert_eq!(status, 200, "{simulated}");
    assert_eq!(simulated["rules"][0]["rule"], "greeting");
    assert_eq!(simulated["rules"][0]["result"], "failed", "{simulated}");
    // The event's own record still says what happened then.
    let record = riposte.get("/admin/events/1").await;
    assert_eq!(record["rules"][0]["result"], "matched", "{record}");
    assert_eq!(record["body"]["messages"][0]["from"], "4915112345678");
}

#[tokio::test]
async fn a_rule_file_is_saved_only_when_the_rules_compile_with_it() {
    let riposte = Riposte::start(RULES).await;
    let file = rules_file(&riposte);
    let broken = RULES.replace("keywords: [hallo]", "keywrds: [hallo]");
    let (status, answer) = put(&riposte, &format!("/admin/rules/file?path={file}"), &broken).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["problems"][0]["line"], 4);
    assert!(
        answer["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `keywords`?")
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), RULES);
    let (status, answer) = put(&riposte, "/admin/rules/file?path=/etc/passwd", "x").await;
    assert_eq!(status, 404, "only a rule file of the set: {answer}");
    let (status, report) = riposte.post("/admin/rules/test", "").await;
    assert_eq!(status, 200);
    assert_eq!(report["report"], "0 passed, 0 failed\n");
}

#[tokio::test]
async fn contacts_are_previewed_imported_and_searched() {
    let riposte = Riposte::start(RULES).await;
    let csv = "phone,name,tags\n+49 151 1111 1111,Anna,vip\nnobody,x,\n";
    let (status, preview) = riposte
        .send(
            "POST",
            "/admin/contacts/import?dry_run=true",
            &[("content-type", "text/csv")],
            csv.to_owned(),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(
        (preview["contacts"].as_u64(), preview["written"].as_bool()),
        (Some(1), Some(false))
    );
    assert_eq!(preview["skipped"], json!(["nobody"]));
    assert_eq!(riposte.get("/admin/contacts").await["contacts"], json!([]));
    let (status, _) = riposte
        .send(
            "POST",
            "/admin/contacts/import",
            &[("content-type", "text/csv")],
            csv.to_owned(),
        )
        .await;
    assert_eq!(status, 200);
    let found = riposte.get("/admin/contacts?q=vip").await;
    assert_eq!(found["contacts"][0]["phone"], "4915111111111");
    assert_eq!(found["contacts"][0]["attrs"]["name"], "Anna");
    let (status, answer) = riposte
        .send(
            "POST",
            "/admin/contacts/import",
            &[("content-type", "text/csv")],
            "name\nx\n".to_owned(),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
}

#[tokio::test]
async fn a_campaign_is_previewed_paused_and_resumed() {
    let riposte = Riposte::start(RULES).await;
    let preview = riposte.get("/admin/campaigns/weekly-deals/preview").await;
    assert_eq!(preview["recipients"], 1, "{preview}");
    assert_eq!(preview["left_out"], 1);
    assert_eq!(
        preview["messages"][0]["work"]["call"]["body"]["json"]["body"],
        "Deals for 4915111111111"
    );
    assert!(riposte.whapi.received().is_empty());
    let (status, _) = riposte
        .post("/admin/campaigns/weekly-deals/pause", "")
        .await;
    assert_eq!(status, 200);
    let listed = riposte.get("/admin/campaigns").await;
    assert!(listed["campaigns"][0]["paused_at"].is_string());
    assert_eq!(
        listed["campaigns"][0]["schedule_words"],
        "every Monday at 09:00"
    );
    let (status, _) = riposte
        .post("/admin/campaigns/weekly-deals/resume", "")
        .await;
    assert_eq!(status, 200);
    let (status, _) = riposte.post("/admin/campaigns/nope/pause", "").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_message_is_sent_to_a_chat_as_the_business() {
    let riposte = Riposte::start(RULES).await;
    let (status, answer) = riposte
        .send(
            "POST",
            "/admin/chats/4915112345678@s.whatsapp.net/send",
            &[("content-type", "application/json")],
            json!({"text": "We are on it."}).to_string(),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(got[0].path, "/messages/text");
    assert_eq!(
        got[0].body,
        json!({"to": "4915112345678@s.whatsapp.net", "body": "We are on it."})
    );
    let (status, _) = riposte
        .send(
            "POST",
            "/admin/chats/4915112345678/send",
            &[("content-type", "application/json")],
            json!({"text": "  "}).to_string(),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn without_an_admin_token_the_console_answers_only_this_machine() {
    let riposte = Riposte::start(RULES).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(format!("{}/ui/login", riposte.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("No admin token is set"), "{page}");
    // The sign-in form's token comes with the page, in the form and in a cookie.
    let form = http
        .get(format!("{}/ui/login", riposte.url))
        .send()
        .await
        .unwrap();
    let login_cookie = form.headers()["set-cookie"].to_str().unwrap().to_owned();
    let login_cookie = login_cookie.split(';').next().unwrap().to_owned();
    let html = form.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let without_cookie = http
        .post(format!("{}/ui/login", riposte.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token=&next=%2Fui%2Fjobs&csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        without_cookie.status(),
        403,
        "a sign-in form from elsewhere"
    );
    let signed = http
        .post(format!("{}/ui/login", riposte.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &login_cookie)
        .header("x-forwarded-proto", "https")
        .body(format!("token=&next=%2Fui%2Fjobs&csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    assert_eq!(signed.headers()["location"], "/ui/jobs");
    let cookie = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("riposte_console="))
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Secure"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let page = http
        .get(format!("{}/ui/jobs", riposte.url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    // Through a proxy, the same browser is not this machine any more.
    let proxied = http
        .get(format!("{}/ui/jobs", riposte.url))
        .header("cookie", &session)
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 401);
    let proxied = http
        .post(format!("{}/ui/login", riposte.url))
        .header("x-forwarded-for", "203.0.113.9")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &login_cookie)
        .body(format!("token=&csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 401);
    // A form posted from another site is refused before it is read.
    let forged = http
        .post(format!("{}/ui/logout", riposte.url))
        .header("cookie", &session)
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=whatever")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
}
