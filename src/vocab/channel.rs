//! Which WhatsApp number a chat, a job or a piece of chat state belongs to.
//!
//! One Riposte may serve several numbers (Whapi.Cloud channels). Everything remembered per chat
//! (its ordering lane, handoff, `once_per`, conversation, follow-up keys) is remembered per
//! channel and chat, so the same customer writing to sales and to support is two chats. The
//! default channel keeps the keys it always had, so state written before channels existed
//! still applies to it.

/// The name of the one channel of an engine without a channels file.
pub const DEFAULT_CHANNEL: &str = "default";

/// `key` as it is known on `channel`: unchanged on the default channel, `CHANNEL/key` on
/// any other.
pub fn scoped(channel: &str, key: &str) -> String {
    if channel == DEFAULT_CHANNEL || channel.is_empty() {
        key.to_owned()
    } else {
        format!("{channel}/{key}")
    }
}

/// The channel a job names, or the default channel for one that names none (jobs written
/// before channels existed, and every job of an engine with one channel).
pub fn or_default(channel: Option<&str>) -> &str {
    channel.unwrap_or(DEFAULT_CHANNEL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_channel_keeps_its_keys_and_others_are_prefixed() {
        assert_eq!(
            scoped(DEFAULT_CHANNEL, "chat:4915112345678"),
            "chat:4915112345678"
        );
        assert_eq!(
            scoped("sales", "chat:4915112345678"),
            "sales/chat:4915112345678"
        );
        assert_eq!(or_default(None), "default");
        assert_eq!(or_default(Some("sales")), "sales");
    }
}
