//! Test harness: the real Riposte server on a loopback port, with a stand-in Whapi.Cloud on
//! another loopback port that records every request it receives.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use riposte::clock::{ManualClock, SystemClock};
use riposte::delivery::RetryPolicy;
use riposte::serve::{self, Running, Settings};
use serde_json::Value;
use tokio::sync::Notify;

/// A rule set that greets "hallo" by name, for tests about plumbing rather than rules.
pub(crate) const HELLO_RULES: &str = r#"
rules:
  - name: hello
    when: {text: "(?i)hallo"}
    then:
      - reply: "Hi {{ sender.name }}"
"#;

/// How long any wait in a test may take before it fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// One request as the stand-in received it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// When it arrived.
    pub(crate) at: std::time::Instant,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

#[derive(Default)]
struct Recorder {
    received: Mutex<Vec<Received>>,
    /// Status codes to answer with, in order; after they run out, 200.
    script: Mutex<Vec<(u16, Option<u64>)>>,
    /// Answers computed from the request, after the script runs out.
    responder: Mutex<Option<Responder>>,
    /// Requests whose path starts with the prefix are answered this much later.
    delays: Mutex<Vec<(String, Duration)>>,
    arrived: Notify,
}

type Responder = Box<dyn Fn(&Received) -> (u16, String) + Send + Sync>;

/// A stand-in Whapi.Cloud (or any webhook target) on 127.0.0.1.
#[derive(Clone)]
pub(crate) struct StandIn {
    pub(crate) url: String,
    recorder: Arc<Recorder>,
}

async fn record(
    State(rec): State<Arc<Recorder>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let path = uri
        .path_and_query()
        .map(ToString::to_string)
        .unwrap_or_default();
    let next = {
        let mut script = rec.script.lock().unwrap();
        if script.is_empty() {
            None
        } else {
            Some(script.remove(0))
        }
    };
    let received = Received {
        at: std::time::Instant::now(),
        method: method.to_string(),
        path,
        headers,
        body,
    };
    let delay = rec
        .delays
        .lock()
        .unwrap()
        .iter()
        .find(|(prefix, _)| received.path.starts_with(prefix.as_str()))
        .map(|(_, d)| *d);
    let computed = rec.responder.lock().unwrap().as_ref().map(|f| f(&received));
    rec.received.lock().unwrap().push(received);
    rec.arrived.notify_waiters();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    match (next, computed) {
        (Some((status, retry_after)), _) => {
            let mut response = (
                StatusCode::from_u16(status).unwrap(),
                r#"{"error":{"code":1,"message":"scripted failure"}}"#,
            )
                .into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", seconds.to_string().parse().unwrap());
            }
            response
        }
        (None, Some((status, body))) => {
            (StatusCode::from_u16(status).unwrap(), body).into_response()
        }
        (None, None) => (
            StatusCode::OK,
            r#"{"sent":true,"message":{"id":"out-1","status":"pending"}}"#,
        )
            .into_response(),
    }
}

impl StandIn {
    /// Starts a stand-in that answers 200 to everything.
    pub(crate) async fn start() -> Self {
        let recorder = Arc::new(Recorder::default());
        let app = Router::new().fallback(record).with_state(recorder.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, recorder }
    }

    /// Answers the next calls with these statuses (and optional `Retry-After` seconds).
    pub(crate) fn fail_next(&self, script: &[(u16, Option<u64>)]) {
        self.recorder
            .script
            .lock()
            .unwrap()
            .extend_from_slice(script);
    }

    /// Answers requests with what `f` computes from them (after any scripted failures).
    pub(crate) fn respond_with(
        &self,
        f: impl Fn(&Received) -> (u16, String) + Send + Sync + 'static,
    ) {
        *self.recorder.responder.lock().unwrap() = Some(Box::new(f));
    }

    /// Answers requests under `prefix` only after `delay` (to make a caller time out).
    pub(crate) fn delay(&self, prefix: &str, delay: Duration) {
        self.recorder
            .delays
            .lock()
            .unwrap()
            .push((prefix.to_owned(), delay));
    }

    /// Every request received so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.recorder.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived, then returns all of them.
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Received> {
        let wait = async {
            loop {
                let notified = self.recorder.arrived.notified();
                let got = self.received();
                if got.len() >= n {
                    return got;
                }
                notified.await;
            }
        };
        match tokio::time::timeout(DEADLINE, wait).await {
            Ok(got) => got,
            Err(_) => panic!(
                "expected {n} requests at the stand-in, got {:#?}",
                self.received()
            ),
        }
    }
}

/// The real server with a temporary rules folder and database.
pub(crate) struct Riposte {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) whapi: StandIn,
    pub(crate) url: String,
    running: Option<Running>,
    http: reqwest::Client,
    dry_run: bool,
    adjust: fn(&mut Settings),
    /// Set for tests on a virtual clock.
    pub(crate) clock: Option<Arc<ManualClock>>,
}

/// Where the sample webhook bodies live.
pub(crate) fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/whapi")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

impl Riposte {
    /// Starts Riposte on `rules` (YAML text) against a fresh stand-in.
    pub(crate) async fn start(rules: &str) -> Self {
        Self::start_with(rules, |_| {}).await
    }

    /// Starts Riposte with settings changed by `adjust`.
    pub(crate) async fn start_with(rules: &str, adjust: fn(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::write(dir.path().join("rules/rules.yaml"), rules).unwrap();
        let whapi = StandIn::start().await;
        let mut this = Self {
            dir,
            whapi,
            url: String::new(),
            running: None,
            http: reqwest::Client::new(),
            dry_run: false,
            adjust,
            clock: None,
        };
        this.boot().await;
        this
    }

    /// Starts Riposte on a virtual clock standing at `start`, with extra files beside the
    /// rules (name, content).
    pub(crate) async fn start_at(
        rules: &str,
        start: DateTime<Utc>,
        files: &[(&str, &str)],
    ) -> Self {
        let mut this = Self::start("rules: []").await;
        this.stop().await;
        for (name, content) in files {
            std::fs::write(this.dir.path().join("rules").join(name), content).unwrap();
        }
        std::fs::write(this.dir.path().join("rules/rules.yaml"), rules).unwrap();
        this.clock = Some(Arc::new(ManualClock::new(start)));
        this.boot().await;
        this
    }

    /// Moves the virtual clock forward and lets the workers see it.
    pub(crate) fn advance(&self, by: chrono::Duration) {
        let clock = self.clock.as_ref().expect("a test on the virtual clock");
        clock.advance(by);
        if let Some(running) = &self.running {
            running.wake();
        }
    }

    /// Starts Riposte with no Whapi token: dry-run.
    pub(crate) async fn start_dry_run(rules: &str) -> Self {
        let mut this = Self::start(rules).await;
        this.stop().await;
        this.dry_run = true;
        this.boot().await;
        this
    }

    fn settings(&self) -> Settings {
        let mut settings = Settings {
            listen: "127.0.0.1:0".into(),
            rules: vec![self.dir.path().join("rules")],
            db: self.db_path().to_string_lossy().into_owned(),
            instance: riposte::store::Instance::new("test"),
            whapi_url: self.whapi.url.clone(),
            channels: Arc::new(riposte::channels::Channels::single()),
            tokens: riposte::channels::Tokens::single(
                (!self.dry_run).then(|| "test-token".to_owned()),
            ),
            dry_run: false,
            timezone: chrono_tz::UTC,
            webhook_secret: None,
            webhook_allow: vec!["127.0.0.1:*".into()],
            events_token: None,
            admin_token: None,
            max_event_age: None,
            http: riposte::server::HttpLimits {
                max_body: 1024 * 1024,
                request_timeout: Duration::from_secs(10),
                ..Default::default()
            },
            insecure_open_webhook: false,
            call_timeout: Duration::from_secs(5),
            retry: RetryPolicy {
                base: Duration::from_millis(20),
                cap: Duration::from_millis(200),
                max_attempts: 5,
                max_age: Duration::from_secs(3600),
            },
            concurrency: 8,
            breaker: riposte::delivery::BreakerPolicy {
                threshold: 50,
                ..Default::default()
            },
            whapi_rate: None,
            watch: true,
            durability: riposte::store::Durability::default(),
            // The stand-in plays the language model too, under `/v1/chat/completions`.
            llm: riposte::ai::model::ModelSettings {
                url: Some(format!("{}/v1", self.whapi.url)),
                key: Some("llm-test-key".to_owned()),
                model: Some("test-model".to_owned()),
            },
            llm_rate: None,
            clock: match &self.clock {
                Some(manual) => manual.clone(),
                None => Arc::new(SystemClock),
            },
        };
        (self.adjust)(&mut settings);
        settings
    }

    /// The database file.
    pub(crate) fn db_path(&self) -> PathBuf {
        self.dir.path().join("riposte.db")
    }

    async fn boot(&mut self) {
        let running = serve::start(self.settings()).await.expect("server starts");
        self.url = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    /// Stops the server (the database stays).
    pub(crate) async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    /// Stops and starts again on the same database and rules.
    pub(crate) async fn restart(&mut self) {
        self.stop().await;
        self.boot().await;
    }

    /// Posts a body to a path; returns the status and the JSON answer.
    pub(crate) async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        self.post_with(path, &[], body).await
    }

    /// Posts a body with extra headers (a JSON content type unless they name one).
    pub(crate) async fn post_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let typed = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        let json = [("content-type", "application/json")];
        let headers = if typed {
            headers.to_vec()
        } else {
            [&json[..], headers].concat()
        };
        self.send("POST", path, &headers, body).await
    }

    /// Sends a request exactly as given; returns the status and the answer (JSON if it is).
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.body(body).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Posts a webhook body and asserts it was accepted.
    pub(crate) async fn webhook(&self, body: &Value) {
        let (status, answer) = self.post("/webhook", body.to_string()).await;
        assert_eq!(status, 200, "webhook refused: {answer}");
    }

    /// The value of a counter at `/metrics`.
    pub(crate) async fn metric(&self, name: &str) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(' '))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or_else(|| panic!("no metric `{name}` in:\n{text}"))
    }

    /// A request with the admin token, when the server has one (only `get` sends it: the
    /// other requests are the tests' own, with the headers they choose).
    fn authorised(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.settings().admin_token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `GET` a path and return the JSON answer.
    pub(crate) async fn get(&self, path: &str) -> Value {
        self.authorised(self.http.get(format!("{}{path}", self.url)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls `GET path`'s list under `key` until `done` accepts it (or the deadline passes).
    async fn poll_list(
        &self,
        path: &str,
        key: &str,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let wait = async {
            loop {
                let list = self.get(path).await[key]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if done(&list) {
                    return list;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    /// Waits until `/admin/events` holds at least `n` records (the intake worker has committed
    /// them), and returns them oldest first.
    pub(crate) async fn wait_events(&self, n: usize) -> Vec<Value> {
        let events = self
            .poll_list(
                "/admin/events?limit=1000",
                "events",
                &format!("{n} processed events"),
                |e| e.len() >= n,
            )
            .await;
        events.into_iter().rev().collect()
    }

    /// Waits until the jobs satisfy `done`, and returns them (newest first).
    pub(crate) async fn wait_jobs(
        &self,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        self.poll_list("/admin/jobs?limit=1000", "jobs", what, done)
            .await
    }

    /// Waits until no job is pending or being sent.
    pub(crate) async fn wait_jobs_settled(&self) -> Vec<Value> {
        self.wait_jobs("jobs to settle", |jobs| {
            jobs.iter()
                .all(|j| j["status"] != "pending" && j["status"] != "sending")
        })
        .await
    }
}
