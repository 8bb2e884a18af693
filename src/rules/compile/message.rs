//! `reply` and `send` → a compiled message [`Action`]: who it goes to, the typing delay, and
//! its [`Content`] (text, media, location, buttons or a list), which campaigns share.

use super::Compiler;
use crate::actions::{
    Action, Buttons, Content, Extras, List, Location, Media, MediaKind, Poll, Recipient, Section,
};
use crate::config::{Located, MessageContent, MessageSpec};
use crate::duration;
use crate::templates::Text;

fn opt(cx: &mut Compiler<'_>, text: Option<&Located<String>>) -> Result<Option<Text>, ()> {
    match text {
        None => Ok(None),
        Some(t) => cx.text(t).map(Some).ok_or(()),
    }
}

/// Compiles a `reply` (or, with `is_send`, a `send`) into its action.
pub(super) fn message(
    spec: &Located<MessageContent>,
    is_send: bool,
    cx: &mut Compiler<'_>,
) -> Option<Action> {
    let (line, column) = (spec.line, spec.column);
    let m = match &spec.value {
        MessageContent::Text(text) => &MessageSpec {
            text: Some(Located {
                value: text.clone(),
                line,
                column,
            }),
            ..MessageSpec::default()
        },
        MessageContent::Full(m) => m,
    };
    let action = if is_send { "send" } else { "reply" };
    let to = match (&m.to, is_send) {
        (Some(to), true) => Recipient::To(cx.text(to)?),
        (None, true) => {
            cx.error(
                line,
                column,
                "`send` needs `to:` (a number, chat, group or channel id)",
            );
            return None;
        }
        (Some(to), false) => {
            cx.error(
                to.line,
                to.column,
                "`reply` always answers in the event's chat; use `send` to choose `to`",
            );
            return None;
        }
        (None, false) => Recipient::EventChat,
    };
    let typing = match &m.typing {
        None => None,
        Some(t) => match duration::parse(&t.value) {
            Ok(d) if d.as_secs() <= 60 => Some(d.as_secs().max(1) as u8),
            Ok(_) => {
                cx.error(t.line, t.column, "`typing` is at most 60s");
                return None;
            }
            Err(e) => {
                cx.error(t.line, t.column, e);
                return None;
            }
        },
    };
    let channel = match (&m.channel, is_send) {
        (Some(channel), true) => Some(cx.channel(channel)),
        (Some(channel), false) => {
            cx.error(
                channel.line,
                channel.column,
                "a `reply` goes out through the channel the event came in on; use `send` with `to` to choose the channel",
            );
            return None;
        }
        (None, _) => None,
    };
    let content = content(m, action, line, column, cx)?;
    let mut extras = extras(m, &content, cx)?;
    extras.channel = channel;
    Some(Action::Message {
        to,
        content,
        quote: m.quote,
        typing,
        extras: extras.boxed(),
    })
}

/// Compiles what a message adds to its content (`mentions`); `None` when it is wrong.
pub(super) fn extras(m: &MessageSpec, content: &Content, cx: &mut Compiler<'_>) -> Option<Extras> {
    let mut extras = Extras::default();
    if let Some(pin) = &m.pin {
        use crate::vocab::PinFor;
        let written = pin.value.trim();
        let Some((_, length)) = PinFor::ALL.iter().find(|(name, _)| *name == written) else {
            let hint = crate::rules::did_you_mean(written, PinFor::ALL.iter().map(|(n, _)| *n))
                .map_or_else(String::new, |b| format!(", did you mean `{b}`?"));
            cx.error(
                pin.line,
                pin.column,
                format!("`pin: {written}`: a message is pinned for a day, week or month{hint}"),
            );
            return None;
        };
        extras.pin = Some(*length);
    }
    if let Some(mentions) = &m.mentions {
        let carries_text = match content {
            Content::Text(_) => true,
            Content::Media(media) => matches!(media.kind, MediaKind::Image | MediaKind::Video),
            _ => false,
        };
        if !carries_text {
            cx.error(
                mentions.line,
                mentions.column,
                "`mentions` go with a text, an image or a video",
            );
            return None;
        }
        for written in mentions.value.iter() {
            if !written.contains("{{") && crate::actions::mention_number(written).is_none() {
                cx.error(
                    mentions.line,
                    mentions.column,
                    format!("`mentions` takes phone numbers (digits, country code first), and `{written}` is not one"),
                );
                return None;
            }
            extras
                .mentions
                .push(cx.text_at(written, mentions.line, mentions.column)?);
        }
    }
    Some(extras)
}

/// Compiles a poll: 2 to 12 different options, one choice or any number.
fn poll(spec: &Located<crate::config::PollSpec>, cx: &mut Compiler<'_>) -> Option<Content> {
    let p = &spec.value;
    let written = &p.options.value;
    if !(2..=12).contains(&written.len()) {
        cx.error(
            p.options.line,
            p.options.column,
            format!("a poll has 2 to 12 options, this has {}", written.len()),
        );
        return None;
    }
    for (i, option) in written.iter().enumerate() {
        if option.trim().is_empty() {
            cx.error(p.options.line, p.options.column, "a poll option is empty");
            return None;
        }
        if written[..i].contains(option) {
            cx.error(
                p.options.line,
                p.options.column,
                format!(
                    "the poll option `{option}` is there twice; votes could not tell them apart"
                ),
            );
            return None;
        }
    }
    let count = match &p.count {
        None => 1,
        Some(c) if c.value <= 1 => c.value,
        Some(c) => {
            cx.error(
                c.line,
                c.column,
                "`count` is 1 (one choice) or 0 (any number of choices)",
            );
            return None;
        }
    };
    let mut options = Vec::with_capacity(written.len());
    for option in written {
        options.push(cx.text_at(option, p.options.line, p.options.column)?);
    }
    Some(Content::Poll(Box::new(Poll {
        title: cx.text(&p.title)?,
        options,
        count,
    })))
}

/// Compiles what a message carries; `action` names it in errors.
pub(super) fn content(
    m: &MessageSpec,
    action: &str,
    line: u32,
    column: u32,
    cx: &mut Compiler<'_>,
) -> Option<Content> {
    let media = [
        (MediaKind::Image, &m.image),
        (MediaKind::Document, &m.document),
        (MediaKind::Video, &m.video),
        (MediaKind::Audio, &m.audio),
    ];
    let media: Vec<_> = media
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
    let kinds = media.len()
        + usize::from(m.location.is_some())
        + usize::from(m.buttons.is_some())
        + usize::from(m.list.is_some())
        + usize::from(m.poll.is_some());
    if kinds > 1 {
        cx.error(line, column, format!("`{action}` can carry one of image, document, video, audio, location, buttons, list or poll"));
        return None;
    }
    if let Some(p) = &m.poll {
        if m.text.is_some() || m.header.is_some() || m.footer.is_some() {
            cx.error(
                p.line,
                p.column,
                "a poll's question is its `title`; remove `text`, `header` and `footer`",
            );
            return None;
        }
        return poll(p, cx);
    }
    let header = opt(cx, m.header.as_ref()).ok()?;
    let footer = opt(cx, m.footer.as_ref()).ok()?;
    if let Some((kind, url)) = media.first() {
        if m.text.is_some() && m.caption.is_some() {
            cx.error(
                line,
                column,
                "write the caption once: `text` and `caption` mean the same with media",
            );
            return None;
        }
        let caption = opt(cx, m.caption.as_ref().or(m.text.as_ref())).ok()?;
        let filename = opt(cx, m.filename.as_ref()).ok()?;
        if *kind == MediaKind::Audio && caption.is_some() {
            cx.error(line, column, "audio messages have no caption");
            return None;
        }
        return Some(Content::Media(Box::new(Media {
            kind: *kind,
            url: cx.text(url)?,
            caption,
            filename,
        })));
    }
    if let Some(loc) = &m.location {
        let name = opt(cx, loc.value.name.as_ref()).ok()?;
        let address = opt(cx, loc.value.address.as_ref()).ok()?;
        if !(-90.0..=90.0).contains(&loc.value.latitude)
            || !(-180.0..=180.0).contains(&loc.value.longitude)
        {
            cx.error(
                loc.line,
                loc.column,
                "latitude must be within ±90 and longitude within ±180",
            );
            return None;
        }
        return Some(Content::Location(Box::new(Location {
            latitude: loc.value.latitude,
            longitude: loc.value.longitude,
            name,
            address,
        })));
    }
    let Some(text) = &m.text else {
        cx.error(
            line,
            column,
            format!("`{action}` needs `text` (or image, document, video, audio or location)"),
        );
        return None;
    };
    let body = cx.text(text)?;
    if let Some(buttons) = &m.buttons {
        if buttons.value.is_empty() || buttons.value.len() > 3 {
            cx.error(
                buttons.line,
                buttons.column,
                format!(
                    "WhatsApp shows 1 to 3 buttons, this has {}",
                    buttons.value.len()
                ),
            );
            return None;
        }
        let mut compiled = Vec::new();
        for b in &buttons.value {
            if b.title.value.chars().count() > 25 && !b.title.value.contains("{{") {
                cx.error(
                    b.title.line,
                    b.title.column,
                    "button titles are at most 25 characters",
                );
                return None;
            }
            compiled.push((cx.text(&b.id)?, cx.text(&b.title)?));
        }
        return Some(Content::Buttons(Box::new(Buttons {
            body,
            header,
            footer,
            buttons: compiled,
        })));
    }
    if let Some(list) = &m.list {
        let mut sections = Vec::new();
        for s in &list.value.sections {
            let mut rows = Vec::new();
            for r in &s.rows {
                let description = opt(cx, r.description.as_ref()).ok()?;
                rows.push((cx.text(&r.id)?, cx.text(&r.title)?, description));
            }
            sections.push(Section {
                title: cx.text(&s.title)?,
                rows,
            });
        }
        if sections.iter().all(|s| s.rows.is_empty()) {
            cx.error(list.line, list.column, "a list needs at least one row");
            return None;
        }
        return Some(Content::List(Box::new(List {
            body,
            header,
            footer,
            label: cx.text(&list.value.label)?,
            sections,
        })));
    }
    if header.is_some() || footer.is_some() {
        cx.error(
            line,
            column,
            "`header` and `footer` go with `buttons` or `list`",
        );
        return None;
    }
    Some(Content::Text(body))
}
