//! A value from outside quoted back in an error: cut to a length, and with line breaks and
//! control characters escaped, so it can neither flood the message nor break it apart.

/// `text`, its first `max` characters (and `…` if there were more), escaped.
pub fn quoted(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_and_controls_escaped() {
        assert_eq!(quoted("abc", 5), "abc");
        assert_eq!(quoted("abcdef", 3), "abc…");
        assert_eq!(quoted("a\nb\u{1b}", 10), "a\\nb\\u{1b}");
    }
}
