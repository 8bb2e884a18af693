//! The console at `/ui`, driven in a real browser: Debian's Chromium through ChromeDriver
//! (WebDriver). Each page is saved as a screenshot under `target/ui-screenshots/`.
//!
//! Where Chromium or ChromeDriver is not installed the tests say so and pass without running;
//! with `RIPOSTE_REQUIRE_BROWSER=1` (as `.ci/run` sets) that is a failure instead.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::{Riposte, fixture};

const TOKEN: &str = "console-test-token";

const RULES: &str = r#"
rules:
  - name: greeting
    when: {keywords: [hallo, hello]}
    then:
      - reply: "Hello {{ sender.name | default('there') }}!"
  - name: human
    when: {keywords: [agent]}
    then:
      - handoff: {for: 2h}
"#;

/// ChromeDriver on a free loopback port, with the browser's profile folder; both stopped
/// when dropped, even after a test failed before closing its session.
struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The browser outlives its driver when a session was not closed; its processes are
        // the ones naming this profile.
        let _ = Command::new("pkill")
            .args(["-KILL", "-f"])
            .arg(self.profile.path())
            .status();
    }
}

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A browser session, or `None` (with a notice) where no browser is installed.
async fn browser() -> Option<(Driver, Client)> {
    browser_with(&[]).await
}

/// A browser session with extra Chromium arguments.
async fn browser_with(extra: &[&str]) -> Option<(Driver, Client)> {
    if !installed("chromedriver") || !installed("chromium") {
        assert!(
            std::env::var_os("RIPOSTE_REQUIRE_BROWSER").is_none(),
            "Chromium and ChromeDriver are required here (Debian packages chromium, chromium-driver)"
        );
        eprintln!("SKIPPED: chromium or chromedriver is not installed");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::Builder::new()
        .prefix("riposte-chromium-")
        .tempdir()
        .expect("a profile folder");
    let user_data = format!("--user-data-dir={}", profile.path().display());
    let driver = Driver {
        child,
        port,
        profile,
    };
    let mut args = vec![
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1200,1000",
    ];
    args.push(&user_data);
    args.extend_from_slice(extra);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": "/usr/bin/chromium", "args": args }),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
        {
            Ok(client) => return Some((driver, client)),
            Err(err) if tokio::time::Instant::now() > deadline => {
                panic!("cannot open a browser session: {err}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn with_token(settings: &mut riposte::serve::Settings) {
    settings.admin_token = Some(TOKEN.into());
}

/// Saves what the browser shows as `target/ui-screenshots/NAME.png`.
async fn screenshot(client: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn text_of(client: &Client, css: &str) -> String {
    // A page still loading can replace the element between finding and reading it.
    for _ in 0..50 {
        let element = client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}`: {e}"));
        if let Ok(text) = element.text().await {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("`{css}` never stayed long enough to be read")
}

/// Waits until the browser shows a page whose path `done` accepts (a click returns before
/// the page it leads to has loaded).
async fn wait_path(client: &Client, what: &str, done: impl Fn(&str) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let url = client.current_url().await.unwrap();
        if done(url.path()) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still at {url}, not {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Clicks what `locator` finds once the page shows it, and waits for the page it leads to
/// (every click here follows a link or sends a form): until the page it was on is gone.
async fn click(client: &Client, locator: Locator<'_>) {
    let before = client.find(Locator::Css("html")).await.unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(locator)
        .await
        .unwrap_or_else(|e| panic!("nothing to click: {e}"))
        .click()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while before.tag_name().await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the click led nowhere"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The field a label names, found by the label's text as a person (or a screen reader) finds it.
async fn labelled(client: &Client, text: &str) -> fantoccini::elements::Element {
    let label = client
        .find(Locator::XPath(&format!(
            "//label[starts-with(text(), '{text}')]"
        )))
        .await
        .unwrap_or_else(|e| panic!("no label `{text}`: {e}"));
    let id = label
        .attr("for")
        .await
        .unwrap()
        .expect("the label names its field");
    client.find(Locator::Id(&id)).await.unwrap()
}

async fn sign_in(client: &Client, riposte: &Riposte, page: &str) {
    client
        .goto(&format!("{}{page}", riposte.url))
        .await
        .unwrap();
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/ui/login")
    );
    labelled(client, "Admin token")
        .await
        .send_keys(TOKEN)
        .await
        .unwrap();
    click(client, Locator::Css("button[type=submit]")).await;
    wait_path(client, "a console page", |p| p != "/ui/login").await;
}

#[tokio::test]
async fn sign_in_leads_back_to_the_page_and_every_page_shows() {
    let Some((_driver, client)) = browser().await else {
        return;
    };
    let riposte = Riposte::start_with(RULES, with_token).await;
    riposte.webhook(&fixture("message-text-private.json")).await;
    riposte.wait_events(1).await;

    sign_in(&client, &riposte, "/ui/jobs").await;
    assert_eq!(client.current_url().await.unwrap().path(), "/ui/jobs");
    for (name, path, heading) in [
        ("Overview", "/ui", "Overview"),
        ("Events", "/ui/events", "Events"),
        ("Jobs", "/ui/jobs", "Jobs"),
        ("Campaigns", "/ui/campaigns", "Campaigns"),
        ("Inbox", "/ui/inbox", "Inbox"),
        ("Contacts", "/ui/contacts", "Contacts"),
        ("Rules", "/ui/rules", "Rules"),
    ] {
        click(&client, Locator::LinkText(name)).await;
        wait_path(&client, path, |p| p == path).await;
        assert_eq!(text_of(&client, "h1").await, heading);
        screenshot(&client, &name.to_lowercase()).await;
    }

    // The event is listed, and its page shows what the rules did.
    client
        .goto(&format!("{}/ui/events", riposte.url))
        .await
        .unwrap();
    let row = text_of(&client, "#events tbody tr").await;
    assert!(row.contains("greeting"), "{row}");
    // Searching by text narrows the list; a search that matches nothing says so.
    client
        .find(Locator::Id("text"))
        .await
        .unwrap()
        .send_keys("no such words")
        .await
        .unwrap();
    click(&client, Locator::XPath("//button[text()='Search']")).await;
    assert_eq!(
        text_of(&client, "main > p").await,
        "No events match this search."
    );
    client
        .find(Locator::Id("text"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    client
        .find(Locator::Id("rule"))
        .await
        .unwrap()
        .send_keys("greet")
        .await
        .unwrap();
    click(&client, Locator::XPath("//button[text()='Search']")).await;
    assert!(
        text_of(&client, "#events tbody tr")
            .await
            .contains("Angebot")
    );
    click(&client, Locator::Css("#events tbody tr a")).await;
    wait_path(&client, "the event's page", |p| {
        p.starts_with("/ui/events/")
    })
    .await;
    let outcomes = text_of(&client, "main table").await;
    assert!(outcomes.contains("greeting matched"), "{outcomes}");
    riposte
        .wait_jobs("the reply sent", |jobs| {
            jobs.iter().any(|j| j["status"] == "done")
        })
        .await;
    client.refresh().await.unwrap();
    let jobs = text_of(&client, "main table:nth-of-type(2)").await;
    assert!(jobs.contains("greeting reply done"), "{jobs}");
    click(
        &client,
        Locator::XPath("//button[text()='Simulate with current rules']"),
    )
    .await;
    let simulated = text_of(&client, "#simulated").await;
    assert!(simulated.contains("matched greeting"), "{simulated}");
    screenshot(&client, "event").await;

    // Signing out ends the session: the pages ask to sign in again.
    click(&client, Locator::XPath("//button[text()='Sign out']")).await;
    wait_path(&client, "the sign-in page", |p| p == "/ui/login").await;
    client
        .goto(&format!("{}/ui/events", riposte.url))
        .await
        .unwrap();
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/ui/login")
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn new_events_appear_in_the_list_without_reloading() {
    let Some((_driver, client)) = browser().await else {
        return;
    };
    let riposte = Riposte::start_with(RULES, with_token).await;
    sign_in(&client, &riposte, "/ui/events").await;
    assert_eq!(client.current_url().await.unwrap().path(), "/ui/events");
    riposte.webhook(&fixture("message-text-private.json")).await;
    let row = client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("#events tbody tr[data-seq]"))
        .await
        .expect("the new event shows up");
    assert!(row.text().await.unwrap().contains("message"));
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_dead_letter_is_retried_and_a_follow_up_cancelled_from_the_jobs_page() {
    let Some((_driver, client)) = browser().await else {
        return;
    };
    let rules = r#"
rules:
  - name: later
    when: {keywords: [later]}
    then:
      - reply: "Later it is"
        after: 2h
  - name: now
    when: {keywords: [now]}
    then:
      - reply: "Now"
"#;
    let riposte = Riposte::start_with(rules, with_token).await;
    riposte.whapi.fail_next(&[(400, None)]);
    let mut body = fixture("message-text-private.json");
    body["messages"][0]["text"]["body"] = json!("now");
    riposte.webhook(&body).await;
    riposte
        .wait_jobs("a dead letter", |jobs| {
            jobs.iter().any(|j| j["status"] == "dead")
        })
        .await;
    body["messages"][0]["text"]["body"] = json!("later");
    body["messages"][0]["id"] = json!("Qm7vT2xLp9.aB3cDe-gBgKa1Zr8z");
    riposte.webhook(&body).await;
    riposte
        .wait_jobs("a pending follow-up", |jobs| {
            jobs.iter().any(|j| j["status"] == "pending")
        })
        .await;

    sign_in(&client, &riposte, "/ui/jobs?status=dead").await;
    let dead = text_of(&client, "main table tbody").await;
    assert!(dead.contains("dead") && dead.contains("400"), "{dead}");
    screenshot(&client, "jobs-dead").await;
    click(&client, Locator::XPath("//button[text()='Retry']")).await;
    assert!(text_of(&client, ".notice").await.contains("queued again"));
    riposte
        .wait_jobs("the retried job sent", |jobs| {
            jobs.iter()
                .any(|j| j["action"] == "reply" && j["status"] == "done")
        })
        .await;

    client
        .goto(&format!("{}/ui/jobs?status=pending", riposte.url))
        .await
        .unwrap();
    click(&client, Locator::XPath("//button[text()='Cancel']")).await;
    assert!(text_of(&client, ".notice").await.contains("cancelled"));
    riposte
        .wait_jobs("the follow-up cancelled", |jobs| {
            jobs.iter().any(|j| j["status"] == "cancelled")
        })
        .await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_rule_edit_with_a_mistake_is_refused_at_its_line_and_a_good_one_goes_live() {
    let Some((_driver, client)) = browser().await else {
        return;
    };
    let riposte = Riposte::start_with(RULES, with_token).await;
    sign_in(&client, &riposte, "/ui/rules").await;
    click(&client, Locator::Css("main table a")).await;
    let editor = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("text"))
        .await
        .unwrap();
    let broken = RULES.replace("keywords: [hallo, hello]", "keywrds: [hallo, hello]");
    editor.clear().await.unwrap();
    editor.send_keys(&broken).await.unwrap();
    click(&client, Locator::XPath("//button[text()='Save']")).await;
    let error = text_of(&client, "li.has-error").await;
    assert!(
        error.contains("unknown field `keywrds`, did you mean `keywords`?"),
        "{error}"
    );
    screenshot(&client, "rules-refused").await;
    let on_disk = std::fs::read_to_string(riposte.dir.path().join("rules/rules.yaml")).unwrap();
    assert_eq!(on_disk, RULES, "nothing was written");

    let better = RULES.replace("Hello {{", "Welcome {{");
    let editor = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("text"))
        .await
        .unwrap();
    editor.clear().await.unwrap();
    editor.send_keys(&better).await.unwrap();
    click(&client, Locator::XPath("//button[text()='Save']")).await;
    let notice = text_of(&client, ".notice").await;
    assert!(notice.starts_with("Saved."), "{notice}");
    let on_disk = std::fs::read_to_string(riposte.dir.path().join("rules/rules.yaml")).unwrap();
    assert_eq!(on_disk, better);
    riposte.webhook(&fixture("message-text-private.json")).await;
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(got[0].body["body"], "Welcome Anna!");

    client
        .goto(&format!("{}/ui/rules", riposte.url))
        .await
        .unwrap();
    click(&client, Locator::XPath("//button[text()='Run tests']")).await;
    let report = text_of(&client, "pre.report").await;
    assert!(report.contains("0 passed, 0 failed"), "{report}");
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_is_refused() {
    let Some((_driver, client)) = browser().await else {
        return;
    };
    let riposte = Riposte::start_with(RULES, with_token).await;
    let mut body = fixture("message-text-private.json");
    body["messages"][0]["text"]["body"] = json!("agent");
    riposte.webhook(&body).await;
    riposte.wait_events(1).await;
    sign_in(&client, &riposte, "/ui/inbox").await;
    assert!(
        text_of(&client, "main section h2")
            .await
            .contains("4915112345678")
    );
    let last = text_of(&client, "ol.messages").await;
    assert!(last.contains("agent"), "{last}");
    // A reply goes out as the business, through the normal delivery.
    labelled(&client, "Reply to")
        .await
        .send_keys("A colleague will answer you in a minute.")
        .await
        .unwrap();
    click(&client, Locator::XPath("//button[text()='Send']")).await;
    assert!(text_of(&client, ".notice").await.contains("on its way"));
    let got = riposte.whapi.wait_for(1).await;
    assert_eq!(got[0].path, "/messages/text");
    assert_eq!(
        got[0].body,
        json!({"to": "4915112345678@s.whatsapp.net", "body": "A colleague will answer you in a minute."})
    );
    screenshot(&client, "inbox-chat").await;
    // The page's form, with its token changed: as a forged form would arrive.
    client
        .execute(
            "document.querySelectorAll('input[name=csrf]').forEach(function (i) { i.value = 'forged'; }); return null;",
            vec![],
        )
        .await
        .unwrap();
    click(&client, Locator::XPath("//button[text()='Resume']")).await;
    assert!(
        text_of(&client, "main p")
            .await
            .contains("did not come from the console")
    );
    assert_eq!(
        riposte.get("/admin/chats").await["handoffs"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "the chat is still with a person"
    );
    client
        .goto(&format!("{}/ui/inbox", riposte.url))
        .await
        .unwrap();
    click(&client, Locator::XPath("//button[text()='Resume']")).await;
    assert!(text_of(&client, ".notice").await.contains("again"));
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_campaign_shows_its_schedule_next_fire_times_and_each_runs_funnel() {
    let Some((_driver, client)) = browser().await else {
        return;
    };
    let rules = r#"
campaigns:
  - name: weekly-deals
    schedule: "0 9 * * MON"
    timezone: Europe/Berlin
    audience: {numbers: ["4915111111111", "4915122222222", "4915133333333"]}
    rate: 60/s
    send: {text: "This week's deals are in the shop."}
"#;
    let riposte = Riposte::start_with(rules, with_token).await;
    sign_in(&client, &riposte, "/ui/campaigns").await;
    click(&client, Locator::LinkText("Preview")).await;
    wait_path(&client, "the preview", |p| p.ends_with("/preview")).await;
    let preview = text_of(&client, "main").await;
    assert!(preview.contains("would reach 3 recipients"), "{preview}");
    assert!(
        preview.contains("4915122222222 send This week's deals are in the shop."),
        "{preview}"
    );
    screenshot(&client, "campaign-preview").await;
    assert!(
        riposte.whapi.received().is_empty(),
        "a preview sends nothing"
    );
    click(&client, Locator::LinkText("Run now")).await;
    click(
        &client,
        Locator::XPath("//button[text()='Send to 3 recipients now']"),
    )
    .await;
    assert!(
        text_of(&client, ".notice")
            .await
            .contains("3 messages planned")
    );
    riposte.whapi.wait_for(3).await;
    riposte
        .wait_jobs("the run's sends done", |jobs| {
            jobs.len() == 3 && jobs.iter().all(|j| j["status"] == "done")
        })
        .await;
    client.refresh().await.unwrap();
    let section = text_of(&client, "main section").await;
    assert!(
        section.contains("every Monday at 09:00, 0 9 * * MON (Europe/Berlin)"),
        "{section}"
    );
    let next = client
        .find_all(Locator::Css("main section dd ul li"))
        .await
        .unwrap();
    assert_eq!(next.len(), 5, "the next five fire times");
    let funnel = text_of(&client, "svg.funnel").await;
    assert!(
        funnel.contains("planned") && funnel.contains('3'),
        "{funnel}"
    );
    screenshot(&client, "campaign-funnel").await;
    click(&client, Locator::XPath("//button[text()='Pause']")).await;
    assert!(text_of(&client, ".notice").await.contains("is paused"));
    assert!(
        text_of(&client, "main section dd")
            .await
            .contains("paused since")
    );
    click(&client, Locator::XPath("//button[text()='Resume']")).await;
    assert!(text_of(&client, ".notice").await.contains("runs again"));
    assert_eq!(
        riposte.get("/admin/campaigns").await["campaigns"][0]["paused_at"],
        json!(null)
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn contacts_are_imported_from_csv_after_a_preview_and_found_by_tag() {
    let Some((_driver, client)) = browser().await else {
        return;
    };
    let riposte = Riposte::start_with(RULES, with_token).await;
    let csv = riposte.dir.path().join("customers.csv");
    std::fs::write(
        &csv,
        "phone,name,tags\n+49 151 1111 1111,Anna,vip;newsletter\n4915122222222,Ben,newsletter\nnot a number,Carl,\n",
    )
    .unwrap();
    sign_in(&client, &riposte, "/ui/contacts").await;
    labelled(&client, "CSV file")
        .await
        .send_keys(&csv.to_string_lossy())
        .await
        .unwrap();
    click(
        &client,
        Locator::XPath("//button[text()='Preview the import']"),
    )
    .await;
    let preview = text_of(&client, "main p").await;
    assert!(
        preview.contains("2 contacts") && preview.contains("not a number"),
        "{preview}"
    );
    assert_eq!(
        riposte.get("/admin/contacts").await["contacts"],
        json!([]),
        "a preview writes nothing"
    );
    screenshot(&client, "contacts-import").await;
    click(
        &client,
        Locator::XPath("//button[text()='Import 2 contacts']"),
    )
    .await;
    assert!(
        text_of(&client, ".notice")
            .await
            .contains("2 contacts imported")
    );

    let search = client.find(Locator::Id("q")).await.unwrap();
    search.send_keys("vip").await.unwrap();
    click(&client, Locator::XPath("//button[text()='Search']")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client.current_url().await.unwrap().query() != Some("q=vip") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the search did not load"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let found = text_of(&client, "main table tbody").await;
    assert!(
        found.contains("4915111111111") && found.contains("Anna"),
        "{found}"
    );
    assert!(!found.contains("Ben"), "{found}");
    client.close().await.unwrap();
}

#[tokio::test]
async fn the_pages_fit_a_phone_and_are_reached_by_keyboard() {
    let Some((_driver, client)) = browser_with(&["--window-size=390,844"]).await else {
        return;
    };
    let riposte = Riposte::start_with(RULES, with_token).await;
    riposte.webhook(&fixture("message-text-private.json")).await;
    riposte.wait_events(1).await;
    sign_in(&client, &riposte, "/ui").await;
    for (name, path) in [
        ("phone-overview", "/ui"),
        ("phone-events", "/ui/events"),
        ("phone-rules", "/ui/rules"),
    ] {
        client
            .goto(&format!("{}{path}", riposte.url))
            .await
            .unwrap();
        text_of(&client, "h1").await;
        let overflow = client
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            overflow.as_i64().unwrap_or(1) <= 0,
            "{path} is wider than the phone: {overflow}"
        );
        screenshot(&client, name).await;
    }
    // The first Tab reaches the link past the navigation, the next ones the pages' links.
    let body = client.find(Locator::Css("body")).await.unwrap();
    body.send_keys("\u{e004}").await.unwrap();
    let focused = client
        .execute("return document.activeElement.textContent;", vec![])
        .await
        .unwrap();
    assert_eq!(focused, json!("Skip to the page"));
    body.send_keys("\u{e004}").await.unwrap();
    let focused = client
        .execute("return document.activeElement.textContent;", vec![])
        .await
        .unwrap();
    assert_eq!(focused, json!("Overview"));
    client.close().await.unwrap();
}

#[tokio::test]
async fn the_pages_read_without_javascript() {
    let Some((_driver, client)) = browser_with(&["--blink-settings=scriptEnabled=false"]).await
    else {
        return;
    };
    let riposte = Riposte::start_with(RULES, with_token).await;
    riposte.webhook(&fixture("message-text-private.json")).await;
    riposte.wait_events(1).await;
    sign_in(&client, &riposte, "/ui/events").await;
    let row = text_of(&client, "#events tbody tr").await;
    assert!(row.contains("greeting"), "{row}");
    click(&client, Locator::Css("#events tbody tr a")).await;
    wait_path(&client, "the event's page", |p| {
        p.starts_with("/ui/events/")
    })
    .await;
    assert!(
        text_of(&client, "main table")
            .await
            .contains("greeting matched")
    );
    client.close().await.unwrap();
}
