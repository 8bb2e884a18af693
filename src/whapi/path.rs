//! What may go into the path of a Whapi.Cloud call. An id taken from an event or a template is
//! checked against the pattern Whapi.Cloud's API gives for its kind and encoded as one path
//! segment; the client then checks the shape of every path before the channel token goes with
//! it. Building the paths themselves is the actions' job, not this module's.

use std::sync::LazyLock;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use regex::Regex;

/// Characters an id keeps unencoded in a path segment: RFC 3986's unreserved ones and `@`
/// (chat and group ids end in `@domain`). Everything else, `/` and `%` first, is encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

/// Longest value quoted back in an error: ids are short, a hostile value may not be.
const SHOWN: usize = 80;

/// A kind of Whapi.Cloud id that Riposte places into a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// `MessageID`, as in `/messages/{MessageID}`.
    Message,
    /// `ChatID`, as in `/chats/{ChatID}`.
    Chat,
    /// `GroupID`, as in `/groups/{GroupID}/participants`.
    Group,
    /// `ContactID`, as in `/contacts/{ContactID}`.
    Contact,
}

impl IdKind {
    /// The kind's name in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Message => "message id",
            Self::Chat => "chat id",
            Self::Group => "group id",
            Self::Contact => "contact id",
        }
    }

    /// The pattern of Whapi.Cloud's OpenAPI description (1.8.7), word for word.
    pub fn pattern(self) -> &'static str {
        match self {
            Self::Message => {
                r"^[A-Za-z0-9._]{4,30}-[A-Za-z0-9._]{4,14}(-[A-Za-z0-9._]{4,10})?(-[A-Za-z0-9._]{2,10})?$"
            }
            Self::Chat => r"^[\d-]{10,31}@[\w\.]{1,}$",
            Self::Group => r"^[\d-]{10,31}@g\.us$",
            Self::Contact => r"^([\d]{7,15})?$",
        }
    }

    fn regex(self) -> &'static Regex {
        // The spec's classes are ECMAScript's, where `\d` and `\w` are ASCII only: `(?-u)` keeps
        // Arabic-Indic digits and other Unicode letters out, as Whapi.Cloud would.
        fn compile(kind: IdKind) -> Regex {
            Regex::new(&format!("(?-u){}", kind.pattern())).expect("a fixed, valid pattern")
        }
        static MESSAGE: LazyLock<Regex> = LazyLock::new(|| compile(IdKind::Message));
        static CHAT: LazyLock<Regex> = LazyLock::new(|| compile(IdKind::Chat));
        static GROUP: LazyLock<Regex> = LazyLock::new(|| compile(IdKind::Group));
        static CONTACT: LazyLock<Regex> = LazyLock::new(|| compile(IdKind::Contact));
        match self {
            Self::Message => &MESSAGE,
            Self::Chat => &CHAT,
            Self::Group => &GROUP,
            Self::Contact => &CONTACT,
        }
    }

    /// Whether `value` is an id of this kind. An empty value never is: the contact pattern
    /// allows one, but an empty segment would name another route.
    pub fn accepts(self, value: &str) -> bool {
        !value.is_empty() && self.regex().is_match(value)
    }

    /// `value` as one encoded path segment, if it is an id of this kind; `field` says where
    /// the value came from, for the error.
    pub fn segment(self, field: &str, value: &str) -> Result<String, InvalidId> {
        if !self.accepts(value) {
            return Err(InvalidId {
                field: field.to_owned(),
                kind: self,
                value: shown(value),
            });
        }
        // A valid id needs no escape; encoding anyway keeps this function safe on its own.
        Ok(utf8_percent_encode(value, SEGMENT).to_string())
    }
}

/// A value that was to go into a Whapi.Cloud path and is not an id of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{field} is `{value}`, not a Whapi.Cloud {} (pattern `{}`); nothing was called",
    kind.name(),
    kind.pattern()
)]
pub struct InvalidId {
    /// Where the value came from, as the error says it: ``"`group_add.group`"``.
    pub field: String,
    pub kind: IdKind,
    /// The value, shortened and with control characters escaped.
    pub value: String,
}

fn shown(value: &str) -> String {
    crate::quote::quoted(value, SHOWN)
}

/// Checks that `path` looks like a fixed Whapi.Cloud route with encoded id segments: it starts
/// with `/`, has no query or fragment, no empty, `.` or `..` segment, and no escape of a
/// character that could make one (`%2F`, `%2E`, `%5C`, `%25`, ...). Base URL and path are
/// joined as text, so this is what keeps the token on the gate's routes.
pub fn check_shape(path: &str) -> Result<(), String> {
    let refuse = |why: &str| Err(format!("refused Whapi.Cloud path `{}`: {why}", shown(path)));
    let Some(rest) = path.strip_prefix('/') else {
        return refuse("it does not start with `/`");
    };
    for segment in rest.split('/') {
        if segment.is_empty() {
            return refuse("it has an empty segment");
        }
        if segment == "." || segment == ".." {
            return refuse("it has a `.` or `..` segment");
        }
        let bytes = segment.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' => {
                    let escaped = segment
                        .get(i + 1..i + 3)
                        .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                    match escaped {
                        Some(byte) if !structural(byte) => i += 3,
                        Some(_) => return refuse("it escapes a character that changes the route"),
                        None => return refuse("it has a `%` that is not an escape"),
                    }
                }
                b if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) => i += 1,
                _ => return refuse("it holds a character a route and an encoded id never hold"),
            }
        }
    }
    Ok(())
}

/// Bytes whose escape a server or proxy might decode back into route structure.
fn structural(byte: u8) -> bool {
    byte.is_ascii_control() || b"/\\.%?#;".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_follow_whapis_pattern() {
        for id in [
            "yqJRpp7Zk4BI-wNoTa1rVw",
            "Bt2bY6dW.gH8jKl3-hVdXr8Kk0l-E8JdK1c",
            ".k2LmQ8vT0pZx7Rt-hU3nB5wKq1-E8JdK1c",
            "PsobWy36679._7w-wKmB9tMeGQ",
        ] {
            assert_eq!(IdKind::Message.segment("id", id).as_deref(), Ok(id), "{id}");
        }
        for id in [
            "../../users/me",
            "abc/..%2F",
            "yqJRpp7Zk4BI-wNoTa1rVw/../x",
            "yqJRpp7Zk4BI-wNoTa1rVw?x=1",
            "yqJRpp7Zk4BI-wNoTa1rVw#x",
            "yqJRpp7Zk4BI-wNoTa1rVw\n",
            "abc",
            "",
            "test-msg-1",
        ] {
            assert!(!IdKind::Message.accepts(id), "{id:?}");
        }
    }

    #[test]
    fn group_chat_and_contact_ids_follow_whapis_patterns() {
        assert!(IdKind::Group.accepts("120363041234567890@g.us"));
        assert!(IdKind::Group.accepts("4915112345678-1612345678@g.us"));
        assert!(!IdKind::Group.accepts("120363041234567890@g.us/../../users/me"));
        assert!(!IdKind::Group.accepts("120363041234567890@s.whatsapp.net"));
        assert!(!IdKind::Group.accepts("120363041234567890"));
        assert!(IdKind::Chat.accepts("4915112345678@s.whatsapp.net"));
        assert!(IdKind::Chat.accepts("120363041234567890@g.us"));
        assert!(
            !IdKind::Chat.accepts("4915112345678"),
            "a chat id has a domain"
        );
        assert!(!IdKind::Chat.accepts("4915112345678@evil.com/x"));
        assert!(IdKind::Contact.accepts("4915112345678"));
        assert!(!IdKind::Contact.accepts(""), "no empty segment");
        assert!(!IdKind::Contact.accepts("4915112345678@s.whatsapp.net"));
    }

    #[test]
    fn digits_and_letters_are_ascii_only_as_in_the_spec() {
        // Arabic-Indic digits and a Cyrillic letter: `\d` and `\w` would take them with Unicode.
        assert!(!IdKind::Contact.accepts("٤٩١٥١١٢٣٤٥٦٧٨"));
        assert!(!IdKind::Chat.accepts("4915112345678@whatsаpp.net"));
    }

    #[test]
    fn the_error_names_the_field_the_kind_and_the_value() {
        let err = IdKind::Group
            .segment("`group_add.group`", "abc/..%2F")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r"`group_add.group` is `abc/..%2F`, not a Whapi.Cloud group id (pattern `^[\d-]{10,31}@g\.us$`); nothing was called"
        );
        let long = "x".repeat(500);
        let err = IdKind::Message
            .segment("id", &format!("{long}\r\n"))
            .unwrap_err();
        assert_eq!(err.value, format!("{}…", "x".repeat(SHOWN)));
        let err = IdKind::Message.segment("id", "a\nb").unwrap_err();
        assert_eq!(err.value, r"a\nb");
    }

    #[test]
    fn the_client_accepts_routes_with_encoded_ids() {
        for path in [
            "/messages/text",
            "/messages/yqJRpp7Zk4BI-wNoTa1rVw/reaction",
            "/groups/120363041234567890@g.us/participants",
            "/contacts",
            "/labels/caf%C3%A9",
        ] {
            assert_eq!(check_shape(path), Ok(()), "{path}");
        }
    }

    #[test]
    fn the_client_refuses_paths_that_leave_the_route() {
        for path in [
            "messages/text",
            "@evil.example/messages/text",
            "/messages/../users/me",
            "/messages/./text",
            "/messages//text",
            "/messages/text/",
            "/messages/a%2F..%2Fb",
            "/messages/a%2f",
            "/messages/%2E%2E",
            "/messages/a%5Cb",
            "/messages/a%252F",
            "/messages/a%3Fb",
            "/messages/a%3Bb",
            "/messages/a%0Ab",
            "/messages/a%zz",
            "/messages/a%2",
            "/messages/text?token=x",
            "/messages/text#x",
            "/messages/a\\b",
            "/messages/a b",
            "/messages/a;b",
            "",
        ] {
            assert!(check_shape(path).is_err(), "{path:?}");
        }
        assert_eq!(
            check_shape("/messages/../users/me"),
            Err(
                "refused Whapi.Cloud path `/messages/../users/me`: it has a `.` or `..` segment"
                    .into()
            )
        );
    }
}
