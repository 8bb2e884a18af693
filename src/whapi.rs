//! The outbound HTTP client: makes a job's call to Whapi.Cloud (with the channel token) or to
//! another system's webhook, and classifies the answer for the retry logic.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};

use crate::actions::{OutboundRequest, Payload, Target};

/// Longest response body kept with a job (for dead letters and inspection).
const KEPT_RESPONSE: usize = 2048;

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

/// Makes outbound calls; in dry-run mode it only logs them.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    dry_run: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never print it.
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for a Whapi.Cloud gate. Without a token the client is always in dry-run mode.
    pub fn new(
        base: &str,
        token: Option<String>,
        dry_run: bool,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .user_agent(concat!("riposte/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let dry_run = dry_run || token.is_none();
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
            dry_run,
        })
    }

    /// Whether calls are only logged.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// Makes the call of a job. `idempotency_key` is sent to other systems' webhooks so they
    /// can recognise a retried call.
    pub async fn call(&self, request: &OutboundRequest, idempotency_key: &str) -> CallOutcome {
        if self.dry_run {
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
                body: "dry-run".into(),
            };
        }
        match self.send(request, idempotency_key).await {
            Ok(outcome) => outcome,
            Err(err) => CallOutcome::Retry {
                error: describe(&err),
                retry_after: None,
            },
        }
    }

    async fn send(
        &self,
        request: &OutboundRequest,
        idempotency_key: &str,
    ) -> Result<CallOutcome, reqwest::Error> {
        let method =
            reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let url = match request.target {
            Target::Whapi => format!("{}{}", self.base, request.path),
            Target::External => request.path.clone(),
        };
        let mut builder = self.http.request(method, &url);
        match request.target {
            Target::Whapi => {
                if let Some(token) = &self.token {
                    builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
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
        builder = match &request.body {
            Some(Payload::Json(value)) => builder.json(value),
            Some(Payload::Text(text)) => builder
                .header(CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(text.clone()),
            None => builder,
        };
        let response = builder.send().await?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = response.text().await.unwrap_or_default();
        if body.len() > KEPT_RESPONSE {
            let cut = (0..=KEPT_RESPONSE)
                .rev()
                .find(|&i| body.is_char_boundary(i))
                .unwrap_or(0);
            body.truncate(cut);
        }
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
                error: format!("HTTP {status}: {body}"),
            }
        })
    }
}

fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    // reqwest errors name the URL, which for Whapi never carries the token (it is a header).
    let mut message = format!("{kind}: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    message
}
