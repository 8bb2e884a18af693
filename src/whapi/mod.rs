//! The outbound HTTP client: makes a job's call to Whapi.Cloud (with the channel token) or to
//! another system's webhook, and classifies the answer for the retry logic. Its pool of
//! connections ([`Connections`]) also carries the language model's calls.

use std::time::Duration;

use bytes::Bytes;
use http::header::{
    AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, LOCATION, RETRY_AFTER, USER_AGENT,
};
use http::{Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioExecutor;

use crate::vocab::{OutboundRequest, Payload, Target};
use connect::Connect;

mod connect;
pub mod path;

/// Longest response body kept with a job (for dead letters and inspection).
const KEPT_RESPONSE: usize = 2048;
/// Longest response body read at all: past it the connection is dropped instead of reused.
const READ_RESPONSE: usize = 1 << 20;

/// How one call ended, as far as retrying is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    /// 2xx: the call did what it should.
    Delivered { status: u16, body: String },
    /// Network error, timeout, 429 or 5xx: worth trying again.
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Any other answer: retrying would give the same result.
    Rejected { error: String },
}

/// Why a client cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    #[error(
        "the Whapi.Cloud token of channel `{0}` cannot be sent in a header (it holds a line break or a control character)"
    )]
    Token(String),
}

/// The pooled connections every outbound call goes through: to Whapi.Cloud, to other systems'
/// webhooks and to the language model. TLS is rustls with the platform's trust store; hosts are
/// reached straight or through the proxies the environment names; no redirect is followed.
///
/// It is hyper's pooled client, driven directly: a call is already a finished request, so the
/// per-request URL parsing, header maps and middleware of a general client would be work done
/// for nothing on every reply. Clones share the pool.
#[derive(Clone)]
pub struct Connections {
    pool: Pool<hyper_rustls::HttpsConnector<Connect>, Full<Bytes>>,
}

impl Connections {
    /// Connections that give up connecting after `connect_timeout`.
    fn new(connect_timeout: Duration, proxies: Matcher) -> Result<Self, ClientError> {
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .try_with_platform_verifier()
            .map_err(|e| ClientError::Tls(e.to_string()))?
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(Connect::new(connector, proxies));
        Ok(Self {
            pool: Pool::builder(TokioExecutor::new()).build(https),
        })
    }

    /// Sends a request and returns the head of the answer; the body is read as it comes.
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        self.pool.request(request).await
    }
}

/// Makes outbound calls; in dry-run mode it only logs them.
#[derive(Clone)]
pub struct Client {
    http: Connections,
    base: String,
    /// One per channel, in the channels file's order.
    lines: std::sync::Arc<[Line]>,
    /// The line of calls that name no channel.
    default: usize,
    timeout: Duration,
    /// Every line is dry-run: calls to other systems are only logged too.
    dry_run: bool,
}

/// One channel's way to Whapi.Cloud.
struct Line {
    name: String,
    /// `Bearer <token>`, built once and marked sensitive so it is never logged.
    authorization: Option<HeaderValue>,
    dry_run: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The tokens are secrets: never print them.
        let lines: Vec<(&str, bool)> = self
            .lines
            .iter()
            .map(|l| (l.name.as_str(), l.dry_run))
            .collect();
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("dry_run", &self.dry_run)
            .field("channels", &lines)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for a Whapi.Cloud gate. Without a token the client is always in dry-run mode.
    /// Calls go through the proxies the environment names (`HTTPS_PROXY` and the like).
    pub fn new(
        base: &str,
        token: Option<String>,
        dry_run: bool,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let tokens = vec![(crate::vocab::DEFAULT_CHANNEL.to_owned(), token)];
        Self::with_proxies(base, tokens, dry_run, timeout, Matcher::from_env())
    }

    /// A client for several channels, each `(name, token)`: a channel without a token is
    /// dry-run. Calls that name no channel go through the one named `default`, else the first.
    pub fn for_channels(
        base: &str,
        tokens: Vec<(String, Option<String>)>,
        dry_run: bool,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        Self::with_proxies(base, tokens, dry_run, timeout, Matcher::from_env())
    }

    fn with_proxies(
        base: &str,
        tokens: Vec<(String, Option<String>)>,
        dry_run: bool,
        timeout: Duration,
        proxies: Matcher,
    ) -> Result<Self, ClientError> {
        let http = Connections::new(Duration::from_secs(5).min(timeout), proxies)?;
        let mut lines = Vec::with_capacity(tokens.len().max(1));
        for (name, token) in tokens {
            let authorization = token
                .as_ref()
                .map(|token| {
                    let mut value = HeaderValue::try_from(format!("Bearer {token}"))
                        .map_err(|_| ClientError::Token(name.clone()))?;
                    value.set_sensitive(true);
                    Ok(value)
                })
                .transpose()?;
            lines.push(Line {
                dry_run: dry_run || token.is_none(),
                name,
                authorization,
            });
        }
        if lines.is_empty() {
            lines.push(Line {
                name: crate::vocab::DEFAULT_CHANNEL.to_owned(),
                authorization: None,
                dry_run: true,
            });
        }
        let default = lines
            .iter()
            .position(|l| l.name == crate::vocab::DEFAULT_CHANNEL)
            .unwrap_or(0);
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            dry_run: lines.iter().all(|l| l.dry_run),
            lines: lines.into(),
            default,
            timeout,
        })
    }

    /// The pool this client's calls go through, for other calls to share (the model's).
    pub fn connections(&self) -> Connections {
        self.http.clone()
    }

    /// Whether every call is only logged (no channel has a token, or `--dry-run`).
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// The channels that are dry-run (their token is unset, or `--dry-run`).
    pub fn dry_channels(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|l| l.dry_run)
            .map(|l| l.name.as_str())
            .collect()
    }

    /// The line of a channel name; `None` names the default channel.
    fn line(&self, channel: Option<&str>) -> Option<&Line> {
        match channel {
            None => self.lines.get(self.default),
            Some(name) => self.lines.iter().find(|l| l.name == name),
        }
    }

    /// Whether a call is only logged: one to Whapi.Cloud when its channel is dry-run, one to
    /// another system when every channel is.
    pub fn is_dry(&self, request: &OutboundRequest) -> bool {
        match request.target {
            Target::Whapi => self
                .line(request.channel.as_deref())
                .is_none_or(|l| l.dry_run),
            Target::External => self.dry_run,
        }
    }

    /// Makes the call of a job. `idempotency_key` is sent to other systems' webhooks so they
    /// can recognise a retried call.
    pub async fn call(&self, request: &OutboundRequest, idempotency_key: &str) -> CallOutcome {
        // The path is joined to the gate's URL as text and the token goes with it: a path that
        // is not a route with encoded ids never leaves, not even as a dry-run log line.
        if request.target == Target::Whapi
            && let Err(error) = path::check_shape(&request.path)
        {
            return CallOutcome::Rejected { error };
        }
        if request.target == Target::Whapi && self.line(request.channel.as_deref()).is_none() {
            let names: Vec<&str> = self.lines.iter().map(|l| l.name.as_str()).collect();
            return CallOutcome::Rejected {
                error: format!(
                    "channel `{}` is not configured (channels: {}); add it to the channels file, restart, and retry the job",
                    crate::quote::quoted(request.channel.as_deref().unwrap_or_default(), 64),
                    names.join(", ")
                ),
            };
        }
        if self.is_dry(request) {
            let body = match &request.body {
                Some(Payload::Json(v)) => v.to_string(),
                Some(Payload::Text(t)) => t.clone(),
                None => String::new(),
            };
            let target = match request.target {
                Target::Whapi => format!("{}{}", self.base, request.path),
                Target::External => request.path.clone(),
            };
            tracing::info!(target: "riposte::dry_run", "dry-run: would call {} {target} {body}", request.method);
            return CallOutcome::Delivered {
                status: 200,
                body: dry_answer(request, idempotency_key),
            };
        }
        self.make(request, idempotency_key, KEPT_RESPONSE, self.timeout)
            .await
    }

    /// Reads from Whapi.Cloud (a `GET`), keeping the whole answer. A dry-run channel has no
    /// token to read with.
    pub async fn read(&self, request: &OutboundRequest) -> Result<String, String> {
        if request.target != Target::Whapi || request.method != "GET" {
            return Err("only a GET from Whapi.Cloud is a read".into());
        }
        path::check_shape(&request.path)?;
        if self.is_dry(request) {
            return Err(format!(
                "channel `{}` is in dry-run (it has no token), so nothing can be read from Whapi.Cloud",
                request
                    .channel
                    .as_deref()
                    .unwrap_or(crate::vocab::DEFAULT_CHANNEL)
            ));
        }
        match self.make(request, "", READ_RESPONSE, self.timeout).await {
            CallOutcome::Delivered { body, .. } => Ok(body),
            CallOutcome::Rejected { error } | CallOutcome::Retry { error, .. } => Err(error),
        }
    }

    /// Asks another system for a `lookup:`: made even in dry-run (what follows needs the
    /// answer, and a question changes nothing), within `timeout`, keeping the whole answer up
    /// to the most read at all.
    pub async fn ask(
        &self,
        request: &OutboundRequest,
        idempotency_key: &str,
        timeout: Duration,
    ) -> CallOutcome {
        if request.target != Target::External {
            return CallOutcome::Rejected {
                error: "a lookup asks another system, not Whapi.Cloud".into(),
            };
        }
        self.make(request, idempotency_key, READ_RESPONSE, timeout)
            .await
    }

    async fn make(
        &self,
        request: &OutboundRequest,
        idempotency_key: &str,
        keep: usize,
        timeout: Duration,
    ) -> CallOutcome {
        let sent = tokio::time::timeout(timeout, self.send(request, idempotency_key, keep)).await;
        match sent {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => CallOutcome::Retry {
                error,
                retry_after: None,
            },
            Err(_) => CallOutcome::Retry {
                error: format!("timed out after {timeout:?}"),
                retry_after: None,
            },
        }
    }

    /// The request of a job as hyper sends it.
    fn request(
        &self,
        request: &OutboundRequest,
        idempotency_key: &str,
    ) -> Result<Request<Full<Bytes>>, String> {
        let method = Method::from_bytes(request.method.as_bytes()).unwrap_or(Method::POST);
        let uri: Uri = match request.target {
            Target::Whapi => format!("{}{}", self.base, request.path).parse(),
            Target::External => request.path.parse(),
        }
        .map_err(|e| format!("request failed: bad URL `{}`: {e}", request.path))?;
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(USER_AGENT, concat!("riposte/", env!("CARGO_PKG_VERSION")));
        match request.target {
            Target::Whapi => {
                if let Some(authorization) = self
                    .line(request.channel.as_deref())
                    .and_then(|l| l.authorization.as_ref())
                {
                    builder = builder.header(AUTHORIZATION, authorization.clone());
                }
            }
            Target::External => {
                builder = builder.header("Idempotency-Key", idempotency_key);
                for (name, value) in &request.headers {
                    if let (Ok(name), Ok(value)) = (
                        HeaderName::from_bytes(name.as_bytes()),
                        HeaderValue::from_str(value),
                    ) {
                        builder = builder.header(name, value);
                    }
                }
            }
        }
        let body = match &request.body {
            Some(Payload::Json(value)) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(value).map_err(|e| format!("request failed: {e}"))?)
            }
            Some(Payload::Text(text)) => {
                builder = builder.header(CONTENT_TYPE, "text/plain; charset=utf-8");
                Bytes::from(text.clone())
            }
            None => Bytes::new(),
        };
        builder
            .body(Full::new(body))
            .map_err(|e| format!("request failed: {e}"))
    }

    async fn send(
        &self,
        request: &OutboundRequest,
        idempotency_key: &str,
        keep: usize,
    ) -> Result<CallOutcome, String> {
        // A request that cannot be built would fail the same way every time.
        let request = match self.request(request, idempotency_key) {
            Ok(request) => request,
            Err(error) => return Ok(CallOutcome::Rejected { error }),
        };
        let response = self.http.send(request).await.map_err(|e| describe(&e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // Redirects are not followed (a POST turned into a GET elsewhere would lose the
        // message): the job fails and says where the endpoint moved.
        let moved = status
            .is_redirection()
            .then(|| response.headers().get(LOCATION)?.to_str().ok())
            .flatten()
            .map(|to| format!(" (moved to {to})"))
            .unwrap_or_default();
        let body = kept_body(response.into_body(), keep).await;
        Ok(if status.is_success() {
            CallOutcome::Delivered {
                status: status.as_u16(),
                body,
            }
        } else if status.as_u16() == 429 || status.is_server_error() {
            CallOutcome::Retry {
                error: format!("HTTP {status}: {body}"),
                retry_after,
            }
        } else {
            CallOutcome::Rejected {
                error: format!("HTTP {status}{moved}: {body}"),
            }
        })
    }
}

/// What a dry-run call answers: for a message sent, Whapi.Cloud's answer with an id of its
/// form made from the job (so what follows a send, a pin, runs as it would), else `dry-run`.
fn dry_answer(request: &OutboundRequest, idempotency_key: &str) -> String {
    let sends = request.target == Target::Whapi
        && request.method == "POST"
        && request.path.starts_with("/messages/")
        && request.path.matches('/').count() == 2;
    if !sends {
        return "dry-run".into();
    }
    let job = idempotency_key.trim_start_matches("riposte-job-");
    serde_json::json!({"sent": true, "message": {"id": format!("DryRun.{job}-Riposte"), "status": "pending"}, "dry_run": true})
        .to_string()
}

/// The start of a response body as text. The rest is read and dropped, so the connection can
/// carry the next call, up to [`READ_RESPONSE`]; a body that breaks off keeps what came.
async fn kept_body(mut body: hyper::body::Incoming, keep: usize) -> String {
    let mut kept = Vec::new();
    let mut read = 0;
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        read += data.len();
        let room = keep.saturating_sub(kept.len());
        kept.extend_from_slice(&data[..room.min(data.len())]);
        if read > READ_RESPONSE {
            break;
        }
    }
    // The cut may have split a character at the end: keep the text before it.
    if let Err(err) = std::str::from_utf8(&kept)
        && err.error_len().is_none()
    {
        kept.truncate(err.valid_up_to());
    }
    String::from_utf8_lossy(&kept).into_owned()
}

fn describe(err: &hyper_util::client::legacy::Error) -> String {
    let kind = if err.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    format!("{kind}: {}", chain(err))
}

/// An error and each of its causes, joined by `: `. The token is a header, never part of an
/// error's text.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::extract::ConnectInfo;
    use axum::http::HeaderMap;
    use axum::routing::post;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    /// Serves `app` on a loopback port and returns its address.
    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn text_to(to: &str) -> OutboundRequest {
        crate::vocab::OutboundRequest::text_message(to, "hi")
    }

    #[tokio::test]
    async fn a_whapi_call_carries_the_token_the_json_body_and_its_type() {
        let seen: Arc<Mutex<Vec<(HeaderMap, String)>>> = Arc::default();
        let log = seen.clone();
        let app = Router::new().route(
            "/messages/text",
            post(move |headers: HeaderMap, body: String| async move {
                log.lock().unwrap().push((headers, body));
                r#"{"sent":true}"#
            }),
        );
        let base = serve(app).await;
        let client = Client::new(&base, Some("t0k".into()), false, Duration::from_secs(5)).unwrap();
        let outcome = client.call(&text_to("4915"), "k").await;
        assert_eq!(
            outcome,
            CallOutcome::Delivered {
                status: 200,
                body: r#"{"sent":true}"#.into()
            }
        );
        let seen = seen.lock().unwrap();
        let (headers, body) = &seen[0];
        assert_eq!(headers["authorization"], "Bearer t0k");
        assert_eq!(headers["content-type"], "application/json");
        assert!(
            headers["user-agent"]
                .to_str()
                .unwrap()
                .starts_with("riposte/")
        );
        assert!(
            headers.get("idempotency-key").is_none(),
            "only other systems get the key"
        );
        assert_eq!(body, r#"{"to":"4915","body":"hi"}"#);
    }

    #[tokio::test]
    async fn a_long_answer_is_kept_cut_at_a_character_and_the_connection_serves_the_next_call() {
        // Two-byte characters from an odd offset, so the cut at 2,048 bytes splits one.
        let answer = format!("x{}", "é".repeat(5000));
        let peers: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let log = peers.clone();
        let app = Router::new().route(
            "/messages/text",
            post(
                move |ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                    log.lock().unwrap().push(peer);
                    answer
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        let client = Client::new(&base, Some("t".into()), false, Duration::from_secs(5)).unwrap();
        for _ in 0..2 {
            let CallOutcome::Delivered { body, .. } = client.call(&text_to("1"), "k").await else {
                panic!("not delivered");
            };
            assert_eq!(body.len(), KEPT_RESPONSE - 1);
            assert!(body.starts_with("xé") && body.ends_with('é'));
        }
        let peers = peers.lock().unwrap();
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[0], peers[1], "the second call reused the connection");
    }

    #[tokio::test]
    async fn an_endpoint_that_never_answers_is_retried_after_the_timeout() {
        let app = Router::new().route("/messages/text", post(std::future::pending::<&'static str>));
        let base = serve(app).await;
        let client =
            Client::new(&base, Some("t".into()), false, Duration::from_millis(200)).unwrap();
        match client.call(&text_to("1"), "k").await {
            CallOutcome::Retry { error, retry_after } => {
                assert_eq!(error, "timed out after 200ms");
                assert_eq!(retry_after, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_and_the_failure_says_where_it_points() {
        let app = Router::new().route(
            "/messages/text",
            post(|| async {
                (
                    axum::http::StatusCode::PERMANENT_REDIRECT,
                    [("location", "https://elsewhere.example/messages/text")],
                    "moved",
                )
            }),
        );
        let base = serve(app).await;
        let client = Client::new(&base, Some("t".into()), false, Duration::from_secs(5)).unwrap();
        assert_eq!(
            client.call(&text_to("1"), "k").await,
            CallOutcome::Rejected {
                error: "HTTP 308 Permanent Redirect (moved to https://elsewhere.example/messages/text): moved"
                    .into()
            }
        );
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_retried_and_the_error_says_so() {
        // A port that was just free: nothing listens on it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let client = Client::new(&base, Some("t".into()), false, Duration::from_secs(5)).unwrap();
        match client.call(&text_to("1"), "k").await {
            CallOutcome::Retry { error, .. } => {
                assert!(error.starts_with("cannot connect: "), "{error}");
                assert!(!error.contains("Bearer"), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_url_that_is_not_one_is_rejected_not_retried() {
        let client = Client::new(
            "http://127.0.0.1:9",
            Some("t".into()),
            false,
            Duration::from_secs(5),
        )
        .unwrap();
        let mut request = text_to("1");
        request.target = Target::External;
        request.path = "http://exa mple.com/x".into();
        match client.call(&request, "k").await {
            CallOutcome::Rejected { error } => {
                assert!(error.contains("bad URL `http://exa mple.com/x`"), "{error}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_whapi_path_that_leaves_its_route_is_refused_before_any_call() {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = seen.clone();
        let app = Router::new().fallback(move |uri: axum::http::Uri| async move {
            log.lock().unwrap().push(uri.to_string());
            "ok"
        });
        let base = serve(app).await;
        let live = Client::new(&base, Some("t".into()), false, Duration::from_secs(5)).unwrap();
        let dry = Client::new(&base, Some("t".into()), true, Duration::from_secs(5)).unwrap();
        for path in [
            "/messages/../../users/me",
            "/messages/abc%2F..%2F/reaction",
            "@elsewhere.example/messages/text",
            "/messages/text?to=1",
        ] {
            let mut request = text_to("1");
            request.path = path.into();
            for client in [&live, &dry] {
                match client.call(&request, "k").await {
                    CallOutcome::Rejected { error } => {
                        assert!(error.starts_with("refused Whapi.Cloud path"), "{error}")
                    }
                    other => panic!("{path}: {other:?}"),
                }
            }
        }
        assert!(
            seen.lock().unwrap().is_empty(),
            "{:?}",
            seen.lock().unwrap()
        );
        // Another system's URL is the rule author's, not a Whapi route.
        let mut external = text_to("1");
        external.target = Target::External;
        external.path = format!("{base}/hooks/a%2Fb?x=1");
        assert!(matches!(
            live.call(&external, "k").await,
            CallOutcome::Delivered { .. }
        ));
        assert_eq!(*seen.lock().unwrap(), ["/hooks/a%2Fb?x=1"]);
    }

    /// A `CONNECT` proxy on loopback; returns its URL and the head of each request it got.
    async fn proxy() -> (String, Arc<Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = heads.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if client.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8(head).unwrap();
                    let target = head.split_whitespace().nth(1).unwrap().to_owned();
                    log.lock().unwrap().push(head);
                    let mut upstream = tokio::net::TcpStream::connect(&target).await.unwrap();
                    client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await
                        .unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
            }
        });
        (url, heads)
    }

    fn sent_app() -> Router {
        Router::new().route("/messages/text", post(|| async { "sent" }))
    }

    /// Makes one Whapi call to `base` with these proxies and checks it was delivered.
    async fn call_through(base: &str, proxies: Matcher) {
        let client = Client::with_proxies(
            base,
            vec![("default".into(), Some("t".into()))],
            false,
            Duration::from_secs(5),
            proxies,
        )
        .unwrap();
        assert!(matches!(
            client.call(&text_to("1"), "k").await,
            CallOutcome::Delivered { status: 200, .. }
        ));
    }

    #[tokio::test]
    async fn a_call_goes_through_the_proxy_in_a_tunnel_with_the_proxy_credentials() {
        let base = serve(sent_app()).await;
        let (proxy, heads) = proxy().await;
        let with_login = proxy.replace("http://", "http://ops:s3cret@");
        let proxies = Matcher::builder().all(with_login).build();
        call_through(&base, proxies).await;
        let heads = heads.lock().unwrap();
        assert_eq!(heads.len(), 1, "{heads:?}");
        let host = base.trim_start_matches("http://");
        assert!(
            heads[0].starts_with(&format!("CONNECT {host} HTTP/1.1\r\n")),
            "{}",
            heads[0]
        );
        // `ops:s3cret` in Base64.
        assert!(
            heads[0].contains("Proxy-Authorization: Basic b3BzOnMzY3JldA==\r\n"),
            "{}",
            heads[0]
        );
        assert!(
            !heads[0].contains("Bearer"),
            "the proxy never sees the token"
        );
    }

    #[tokio::test]
    async fn calls_shared_through_the_connections_take_the_same_proxy_tunnel() {
        // The model's calls are made this way: a request of their own, the client's pool.
        let app = Router::new().route(
            "/v1/chat/completions",
            post(|headers: HeaderMap| async move {
                headers
                    .get("authorization")
                    .map_or_else(String::new, |v| v.to_str().unwrap().to_owned())
            }),
        );
        let base = serve(app).await;
        let (proxy, heads) = proxy().await;
        let client = Client::with_proxies(
            "http://127.0.0.1:9",
            vec![("default".into(), None)],
            true,
            Duration::from_secs(5),
            Matcher::builder().all(proxy).build(),
        )
        .unwrap();
        let mut key = HeaderValue::from_static("Bearer sk-secret");
        key.set_sensitive(true);
        let request = Request::post(format!("{base}/v1/chat/completions"))
            .header(AUTHORIZATION, key)
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let response = client.connections().send(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "Bearer sk-secret");
        let heads = heads.lock().unwrap();
        assert_eq!(heads.len(), 1, "{heads:?}");
        let host = base.trim_start_matches("http://");
        assert!(
            heads[0].starts_with(&format!("CONNECT {host} HTTP/1.1\r\n")),
            "{}",
            heads[0]
        );
        assert!(!heads[0].contains("sk-secret"), "{}", heads[0]);
    }

    #[tokio::test]
    async fn a_host_named_in_no_proxy_is_called_straight() {
        let base = serve(sent_app()).await;
        let (proxy, heads) = proxy().await;
        let proxies = Matcher::builder().all(proxy).no("127.0.0.1").build();
        call_through(&base, proxies).await;
        assert!(heads.lock().unwrap().is_empty());
    }
}
