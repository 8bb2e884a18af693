//! Language models: the OpenAI-compatible chat-completions client (OpenAI, Azure-compatible
//! gateways, Ollama, vLLM, LiteLLM) and the scripted model rule tests use.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::Uri;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, LOCATION, USER_AGENT};
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::whapi::{Connections, chain};

/// The name of the tool the model calls to hand a chat to a human.
pub const HANDOFF_TOOL: &str = "handoff";

/// One message sent to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    pub content: String,
}

/// What is asked of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub model: Option<String>,
    pub messages: Vec<Message>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    /// Offer the `handoff` tool.
    pub offer_handoff: bool,
    pub timeout: Duration,
}

/// Tokens a call used, as the endpoint reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
}

/// What the model answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A reply to send (possibly empty: the caller checks).
    Text { text: String, usage: Usage },
    /// The model called the `handoff` tool.
    Handoff { reason: String, usage: Usage },
}

/// Why the model gave no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ModelError {
    /// A timeout, a network error, 429 or 5xx: another attempt may work.
    pub transient: bool,
    pub message: String,
}

impl ModelError {
    fn transient(message: impl Into<String>) -> Self {
        Self {
            transient: true,
            message: message.into(),
        }
    }

    fn permanent(message: impl Into<String>) -> Self {
        Self {
            transient: false,
            message: message.into(),
        }
    }
}

/// A chat model.
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// Asks for one answer.
    async fn complete(&self, request: &Request) -> Result<Answer, ModelError>;
}

/// Where the model is: `RIPOSTE_LLM_URL`, `RIPOSTE_LLM_KEY`, `RIPOSTE_LLM_MODEL`.
#[derive(Clone, Default)]
pub struct ModelSettings {
    /// The API base (`https://api.openai.com/v1`, `http://localhost:11434/v1`) or the full
    /// `…/chat/completions` URL.
    pub url: Option<String>,
    pub key: Option<String>,
    /// The model used when an `ai_reply` names none.
    pub model: Option<String>,
}

impl std::fmt::Debug for ModelSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: never print it.
        f.debug_struct("ModelSettings")
            .field("url", &self.url)
            .field("key", &self.key.as_ref().map(|_| "<set>"))
            .field("model", &self.model)
            .finish()
    }
}

/// An OpenAI-compatible chat-completions endpoint.
///
/// Its calls go through the same pooled connections as Whapi.Cloud's and webhooks' (the same
/// TLS, the same proxies from the environment, the same connect timeout), and like them follow
/// no redirect: a 307 or 308 would send the conversation to wherever the endpoint points,
/// another host included.
pub struct HttpModel {
    http: Connections,
    settings: ModelSettings,
}

impl HttpModel {
    /// A client for the endpoint in `settings`, calling through `http`.
    pub fn new(settings: ModelSettings, http: Connections) -> Self {
        Self { http, settings }
    }

    fn endpoint(&self) -> Option<String> {
        let url = self.settings.url.as_deref()?.trim_end_matches('/');
        Some(if url.ends_with("/chat/completions") {
            url.to_owned()
        } else {
            format!("{url}/chat/completions")
        })
    }

    /// The request of one call: the JSON body, the key as a bearer token.
    fn call(
        &self,
        url: &str,
        request: &Request,
        model: &str,
    ) -> Result<http::Request<Full<Bytes>>, ModelError> {
        let uri: Uri = url.parse().map_err(|e| {
            ModelError::permanent(format!("the model endpoint `{url}` is not a URL: {e}"))
        })?;
        let body = serde_json::to_vec(&request_body(request, model))
            .map_err(|e| ModelError::permanent(format!("cannot write the model's request: {e}")))?;
        let mut call = http::Request::post(uri)
            .header(USER_AGENT, concat!("riposte/", env!("CARGO_PKG_VERSION")))
            .header(ACCEPT, "*/*")
            .header(CONTENT_TYPE, "application/json");
        if let Some(key) = &self.settings.key {
            let mut value = HeaderValue::try_from(format!("Bearer {key}")).map_err(|_| {
                ModelError::permanent(
                    "RIPOSTE_LLM_KEY cannot be sent in a header (it holds a line break or a control character)",
                )
            })?;
            // A secret: never logged.
            value.set_sensitive(true);
            call = call.header(AUTHORIZATION, value);
        }
        call.body(Full::new(Bytes::from(body)))
            .map_err(|e| ModelError::permanent(format!("cannot make the model's request: {e}")))
    }
}

/// The JSON body of a chat-completions request.
pub fn request_body(request: &Request, model: &str) -> Value {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| json!({"role": m.role, "content": m.content}))
        .collect();
    let mut body = json!({ "model": model, "messages": messages });
    if let Some(max) = request.max_tokens {
        body["max_tokens"] = json!(max);
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if request.offer_handoff {
        body["tools"] = json!([{
            "type": "function",
            "function": {
                "name": HANDOFF_TOOL,
                "description": "Hand the conversation to a human colleague. Use it when the customer asks for a person, or when you cannot help with their request.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "reason": {"type": "string", "description": "Why a human should take over, in one sentence."}
                    },
                    "required": ["reason"]
                }
            }
        }]);
    }
    body
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<UsageBody>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCall>,
}

#[derive(Deserialize)]
struct ToolCall {
    function: FunctionCall,
}

#[derive(Deserialize)]
struct FunctionCall {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize)]
struct UsageBody {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// Reads a chat-completions answer.
pub fn parse_answer(body: &str) -> Result<Answer, ModelError> {
    let completion: Completion = serde_json::from_str(body).map_err(|e| {
        ModelError::permanent(format!("the model's answer is not a chat completion: {e}"))
    })?;
    let usage = completion.usage.map_or_else(Usage::default, |u| Usage {
        prompt: u.prompt_tokens,
        completion: u.completion_tokens,
    });
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err(ModelError::permanent("the model's answer has no choices"));
    };
    if let Some(call) = choice
        .message
        .tool_calls
        .iter()
        .find(|c| c.function.name == HANDOFF_TOOL)
    {
        let reason = serde_json::from_str::<Value>(&call.function.arguments)
            .ok()
            .and_then(|args| {
                args.get("reason")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "the model asked for a human".to_owned());
        return Ok(Answer::Handoff { reason, usage });
    }
    Ok(Answer::Text {
        text: choice.message.content.unwrap_or_default(),
        usage,
    })
}

#[async_trait]
impl ChatModel for HttpModel {
    async fn complete(&self, request: &Request) -> Result<Answer, ModelError> {
        let Some(url) = self.endpoint() else {
            return Err(ModelError::permanent(
                "no model endpoint: set RIPOSTE_LLM_URL",
            ));
        };
        let Some(model) = request.model.as_ref().or(self.settings.model.as_ref()) else {
            return Err(ModelError::permanent(
                "no model named: set RIPOSTE_LLM_MODEL or the action's `model`",
            ));
        };
        let call = self.call(&url, request, model)?;
        // The timeout covers the whole call, the answer's body included.
        let (status, moved, body) = tokio::time::timeout(request.timeout, async {
            let response = self.http.send(call).await.map_err(|e| {
                ModelError::transient(format!("cannot reach the model: {}", chain(&e)))
            })?;
            let status = response.status();
            let moved = moved_to(&response);
            let body = response.into_body().collect().await.map_err(|e| {
                ModelError::transient(format!("the model's answer broke off: {}", chain(&e)))
            })?;
            Ok::<_, ModelError>((status, moved, body.to_bytes()))
        })
        .await
        .map_err(|_| {
            ModelError::transient(format!(
                "the model did not answer within {:?}",
                request.timeout
            ))
        })??;
        let body = String::from_utf8_lossy(&body);
        if status.is_success() {
            return parse_answer(&body);
        }
        let snippet: String = body.chars().take(300).collect();
        let message = format!("the model endpoint answered HTTP {status}{moved}: {snippet}");
        Err(if status.as_u16() == 429 || status.is_server_error() {
            ModelError::transient(message)
        } else {
            ModelError::permanent(message)
        })
    }
}

/// ` (moved to LOCATION; redirects are not followed)` for a redirect, so the operator can point
/// `RIPOSTE_LLM_URL` where the endpoint went if that is where it should go.
fn moved_to<B>(response: &http::Response<B>) -> String {
    if !response.status().is_redirection() {
        return String::new();
    }
    let to = response
        .headers()
        .get(LOCATION)
        .map_or("nowhere".into(), |v| String::from_utf8_lossy(v.as_bytes()));
    let to: String = to.chars().take(200).collect();
    format!(" (moved to {to}; redirects are not followed)")
}

/// A scripted model answer, for rule tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Scripted {
    Reply(String),
    Handoff(String),
    Fail(String),
}

/// A model that gives scripted answers in order and keeps every request it was asked.
#[derive(Debug, Default)]
pub struct ScriptedModel {
    answers: Mutex<VecDeque<Scripted>>,
    /// Requests asked so far.
    pub asked: Mutex<Vec<Request>>,
}

impl ScriptedModel {
    /// A model that answers with `answers`, one per request.
    pub fn new(answers: Vec<Scripted>) -> Self {
        Self {
            answers: Mutex::new(answers.into()),
            asked: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl ChatModel for ScriptedModel {
    async fn complete(&self, request: &Request) -> Result<Answer, ModelError> {
        self.asked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(request.clone());
        let next = self
            .answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front();
        let usage = Usage::default();
        match next {
            Some(Scripted::Reply(text)) => Ok(Answer::Text { text, usage }),
            Some(Scripted::Handoff(reason)) => Ok(Answer::Handoff { reason, usage }),
            // A scripted failure goes straight to the fallback: a test should not need to
            // move the clock past retries to see it.
            Some(Scripted::Fail(message)) => Err(ModelError::permanent(message)),
            None => Err(ModelError::permanent(
                "the test scripted no more model answers (add one under `model:`)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_from_content_or_the_handoff_tool() {
        let text = r#"{"choices":[{"message":{"role":"assistant","content":"We open at 9."}}],"usage":{"prompt_tokens":12,"completion_tokens":5}}"#;
        assert_eq!(
            parse_answer(text).unwrap(),
            Answer::Text {
                text: "We open at 9.".into(),
                usage: Usage {
                    prompt: 12,
                    completion: 5
                }
            }
        );
        let tool = r#"{"choices":[{"message":{"content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"handoff","arguments":"{\"reason\":\"refund over 500\"}"}}]}}]}"#;
        assert_eq!(
            parse_answer(tool).unwrap(),
            Answer::Handoff {
                reason: "refund over 500".into(),
                usage: Usage::default()
            }
        );
        assert!(!parse_answer("<html>").unwrap_err().transient);
        assert!(!parse_answer(r#"{"choices":[]}"#).unwrap_err().transient);
    }

    #[tokio::test]
    async fn a_key_or_url_that_cannot_be_sent_fails_at_once_and_is_not_retried() {
        let client =
            crate::whapi::Client::new("http://127.0.0.1:9", None, true, Duration::from_secs(5))
                .unwrap();
        let request = Request {
            model: Some("m".into()),
            messages: Vec::new(),
            max_tokens: None,
            temperature: None,
            offer_handoff: false,
            timeout: Duration::from_secs(5),
        };
        let model = |url: &str, key: &str| {
            HttpModel::new(
                ModelSettings {
                    url: Some(url.into()),
                    key: Some(key.into()),
                    model: None,
                },
                client.connections(),
            )
        };
        let error = model("http://127.0.0.1:9/v1", "sk-1\nX-Other: 1")
            .complete(&request)
            .await
            .unwrap_err();
        assert!(!error.transient, "{error:?}");
        assert!(
            error.message.starts_with("RIPOSTE_LLM_KEY cannot be sent"),
            "{error:?}"
        );
        assert!(!error.message.contains("sk-1"), "{error:?}");
        let error = model("http://exa mple.com/v1", "sk-1")
            .complete(&request)
            .await
            .unwrap_err();
        assert!(!error.transient, "{error:?}");
        assert!(
            error.message.starts_with(
                "the model endpoint `http://exa mple.com/v1/chat/completions` is not a URL"
            ),
            "{error:?}"
        );
    }

    #[test]
    fn the_key_is_never_printed() {
        let settings = ModelSettings {
            url: Some("http://127.0.0.1:1/v1".into()),
            key: Some("sk-secret".into()),
            model: None,
        };
        assert!(!format!("{settings:?}").contains("sk-secret"));
    }
}
