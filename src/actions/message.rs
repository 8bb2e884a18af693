//! Message content for `reply` and `send`, rendered into the exact Whapi.Cloud send request.

use serde_json::{Map, Value, json};

use super::{ActionError, RenderCx};
use crate::templates::Text;
use crate::vocab::{OutboundRequest, Payload, Target};

/// Who a message goes to.
#[derive(Debug, Clone)]
pub enum Recipient {
    /// The chat the event happened in (`reply`).
    EventChat,
    /// A number, chat, group or channel id (`send`).
    To(Text),
}

/// What a message carries. The kinds other than text are boxed: most steps send text, and a
/// rule set holds every rule's steps, so the enum stays the size of a text.
#[derive(Debug, Clone)]
pub enum Content {
    Text(Text),
    Media(Box<Media>),
    Location(Box<Location>),
    Buttons(Box<Buttons>),
    List(Box<List>),
    Poll(Box<Poll>),
}

/// A question with options people vote on.
#[derive(Debug, Clone)]
pub struct Poll {
    pub title: Text,
    pub options: Vec<Text>,
    /// Options one person may choose: 1, or 0 for any number.
    pub count: u8,
}

/// What a message may carry beyond its content; boxed where it is kept, as most messages
/// have none.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// Numbers mentioned (templates), for text, image and video.
    pub mentions: Vec<Text>,
    /// The channel a `send` goes out through (default: the event's).
    pub channel: Option<String>,
    /// Pin the message once sent, for this long.
    pub pin: Option<crate::vocab::PinFor>,
}

impl Extras {
    /// `None` when there is nothing in it, so a message without extras costs no allocation.
    pub fn boxed(self) -> Option<Box<Self>> {
        (!self.mentions.is_empty() || self.channel.is_some() || self.pin.is_some())
            .then(|| Box::new(self))
    }
}

/// An image, document, video or audio by URL.
#[derive(Debug, Clone)]
pub struct Media {
    pub kind: MediaKind,
    pub url: Text,
    pub caption: Option<Text>,
    pub filename: Option<Text>,
}

/// A pin on the map.
#[derive(Debug, Clone)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub name: Option<Text>,
    pub address: Option<Text>,
}

/// A text with up to three reply buttons: `(id, title)`.
#[derive(Debug, Clone)]
pub struct Buttons {
    pub body: Text,
    pub header: Option<Text>,
    pub footer: Option<Text>,
    pub buttons: Vec<(Text, Text)>,
}

/// A text with a menu of rows in sections.
#[derive(Debug, Clone)]
pub struct List {
    pub body: Text,
    pub header: Option<Text>,
    pub footer: Option<Text>,
    pub label: Text,
    pub sections: Vec<Section>,
}

/// Media a message can carry by URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Document,
    Video,
    Audio,
}

impl MediaKind {
    /// The key in rule files and the Whapi endpoint suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Document => "document",
            Self::Video => "video",
            Self::Audio => "audio",
        }
    }
}

/// A titled section of list rows: `(id, title, description)`.
#[derive(Debug, Clone)]
pub struct Section {
    pub title: Text,
    pub rows: Vec<(Text, Text, Option<Text>)>,
}

fn put(
    map: &mut Map<String, Value>,
    key: &str,
    cx: &RenderCx<'_>,
    text: Option<&Text>,
) -> Result<(), ActionError> {
    if let Some(text) = text {
        map.insert(key.to_owned(), Value::String(cx.text(text)?));
    }
    Ok(())
}

fn put_wrapped(
    map: &mut Map<String, Value>,
    key: &str,
    cx: &RenderCx<'_>,
    text: Option<&Text>,
) -> Result<(), ActionError> {
    if let Some(text) = text {
        map.insert(key.to_owned(), json!({ "text": cx.text(text)? }));
    }
    Ok(())
}

/// The parts buttons and lists share: type, header, body text and footer.
fn interactive_frame(
    map: &mut Map<String, Value>,
    kind: &str,
    cx: &RenderCx<'_>,
    text: &Text,
    header: Option<&Text>,
    footer: Option<&Text>,
) -> Result<(), ActionError> {
    map.insert("type".into(), json!(kind));
    put_wrapped(map, "header", cx, header)?;
    map.insert("body".into(), json!({ "text": cx.required(text, "text")? }));
    put_wrapped(map, "footer", cx, footer)
}

/// Renders a message into its Whapi request: `POST /messages/{text,image,...,interactive}`.
pub(super) fn render(
    cx: &RenderCx<'_>,
    to: &Recipient,
    content: &Content,
    quote: bool,
    typing: Option<u8>,
    extras: Option<&Extras>,
) -> Result<OutboundRequest, ActionError> {
    let to =
        match to {
            Recipient::EventChat => cx.event.chat.as_ref().map(|c| c.id.clone()).ok_or_else(
                || {
                    ActionError::Missing(format!(
                        "`reply` needs a chat, and this {} event has none; use `send` with `to`",
                        cx.event.kind
                    ))
                },
            )?,
            Recipient::To(text) => cx.required(text, "send.to")?,
        };
    let mut body = Map::new();
    body.insert("to".into(), Value::String(to.clone()));
    let endpoint = match content {
        Content::Text(text) => {
            let text = cx.required(text, "text")?;
            body.insert("body".into(), Value::String(text));
            "text"
        }
        Content::Media(media) => {
            let Media {
                kind,
                url,
                caption,
                filename,
            } = &**media;
            body.insert(
                "media".into(),
                Value::String(cx.required(url, kind.as_str())?),
            );
            put(&mut body, "caption", cx, caption.as_ref())?;
            put(&mut body, "filename", cx, filename.as_ref())?;
            kind.as_str()
        }
        Content::Location(location) => {
            let Location {
                latitude,
                longitude,
                name,
                address,
            } = &**location;
            body.insert("latitude".into(), json!(latitude));
            body.insert("longitude".into(), json!(longitude));
            put(&mut body, "name", cx, name.as_ref())?;
            put(&mut body, "address", cx, address.as_ref())?;
            "location"
        }
        Content::Buttons(content) => {
            let Buttons {
                body: text,
                header,
                footer,
                buttons,
            } = &**content;
            interactive_frame(
                &mut body,
                "button",
                cx,
                text,
                header.as_ref(),
                footer.as_ref(),
            )?;
            let mut list = Vec::with_capacity(buttons.len());
            for (id, title) in buttons {
                list.push(json!({ "type": "quick_reply", "title": cx.required(title, "buttons.title")?, "id": cx.required(id, "buttons.id")? }));
            }
            body.insert("action".into(), json!({ "buttons": list }));
            "interactive"
        }
        Content::List(content) => {
            let List {
                body: text,
                header,
                footer,
                label,
                sections,
            } = &**content;
            interactive_frame(
                &mut body,
                "list",
                cx,
                text,
                header.as_ref(),
                footer.as_ref(),
            )?;
            let mut rendered = Vec::with_capacity(sections.len());
            for section in sections {
                let mut rows = Vec::with_capacity(section.rows.len());
                for (id, title, description) in &section.rows {
                    let mut row = Map::new();
                    row.insert("id".into(), Value::String(cx.required(id, "rows.id")?));
                    row.insert(
                        "title".into(),
                        Value::String(cx.required(title, "rows.title")?),
                    );
                    put(&mut row, "description", cx, description.as_ref())?;
                    rows.push(Value::Object(row));
                }
                rendered.push(json!({ "title": cx.text(&section.title)?, "rows": rows }));
            }
            body.insert("action".into(), json!({ "list": { "label": cx.required(label, "list.label")?, "sections": rendered } }));
            "interactive"
        }
        Content::Poll(poll) => {
            body.insert(
                "title".into(),
                Value::String(cx.required(&poll.title, "poll.title")?),
            );
            let options = poll
                .options
                .iter()
                .map(|o| cx.required(o, "poll.options"))
                .collect::<Result<Vec<_>, _>>()?;
            body.insert("options".into(), json!(options));
            body.insert("count".into(), json!(poll.count));
            "poll"
        }
    };
    if let Some(extras) = extras.filter(|e| !e.mentions.is_empty()) {
        let mentions = extras
            .mentions
            .iter()
            .map(|m| mention(cx, m))
            .collect::<Result<Vec<_>, _>>()?;
        body.insert("mentions".into(), json!(mentions));
    }
    if quote {
        body.insert(
            "quoted".into(),
            Value::String(cx.message_id("quote")?.to_owned()),
        );
    }
    if let Some(seconds) = typing {
        body.insert("typing_time".into(), json!(seconds));
    }
    Ok(OutboundRequest {
        target: Target::Whapi,
        method: "POST".into(),
        path: format!("/messages/{endpoint}"),
        headers: Vec::new(),
        body: Some(Payload::Json(Value::Object(body))),
        lane: crate::vocab::ChatId::new(&to).lane(),
        channel: None,
        pin: extras.and_then(|e| e.pin),
    })
}

/// A mentioned number as Whapi.Cloud takes it: 7 to 15 digits.
fn mention(cx: &RenderCx<'_>, text: &Text) -> Result<String, ActionError> {
    let written = cx.required(text, "mentions")?;
    mention_number(&written).ok_or_else(|| {
        ActionError::Missing(format!(
            "`mentions` takes phone numbers, and `{written}` is not one"
        ))
    })
}

/// The digits of a number as people write it (`+49 151 1234-5678`, `4915112345678@s.whatsapp.net`),
/// when it is one.
pub(crate) fn mention_number(written: &str) -> Option<String> {
    let kept: String = written
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let phone = crate::events::bare_phone(&kept);
    ((7..=15).contains(&phone.len()) && phone.bytes().all(|b| b.is_ascii_digit())).then_some(phone)
}
