//! The reference a hand-written bot sets: parse the webhook, answer 200 at once, then match
//! one regex and call Whapi.Cloud from a spawned task. Nothing is stored, deduplicated or
//! retried, so a crash or a failed call loses the reply.
//!
//! Usage: `naive-bot LISTEN WHAPI_URL`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

struct Bot {
    client: reqwest::Client,
    url: String,
    rule: regex::Regex,
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:9200".into());
    let whapi = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:9100".into());
    let bot = Arc::new(Bot {
        client: reqwest::Client::new(),
        url: format!("{whapi}/messages/text"),
        rule: regex::Regex::new(r"(?i)\bparcel\s+#?(?P<parcel>\d+)").expect("rule regex"),
    });
    let app = Router::new()
        .route("/webhook", post(webhook))
        .with_state(bot);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {listen}: {e}"));
    axum::serve(listener, app).await.expect("naive bot server");
}

async fn webhook(State(bot): State<Arc<Bot>>, body: Bytes) -> StatusCode {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let messages = body.get("messages").and_then(Value::as_array);
    for message in messages.into_iter().flatten() {
        let text = message["text"]["body"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let chat = message["chat_id"].as_str().unwrap_or_default().to_owned();
        let bot = Arc::clone(&bot);
        tokio::spawn(async move {
            let Some(caps) = bot.rule.captures(&text) else {
                return;
            };
            let reply = format!("Parcel {}: {text}", &caps["parcel"]);
            let sent = bot
                .client
                .post(&bot.url)
                .json(&json!({"to": chat, "body": reply}))
                .send()
                .await;
            if let Err(err) = sent {
                eprintln!("call failed: {err}");
            }
        });
    }
    StatusCode::OK
}
