//! `keywords:` matching: any of several words or phrases, in any case, as whole words.
//! Done by hand rather than as a regex because a rule set may hold thousands of keyword lists
//! and a Unicode-aware regex for each costs far more to build than the search itself.

/// A compiled keyword list.
#[derive(Debug, Clone)]
pub struct Keywords {
    /// The words as written, for messages.
    pub shown: Vec<String>,
    /// Lower-cased, with inner whitespace collapsed to one space.
    folded: Vec<String>,
}

/// Lower-cases a text and collapses every run of whitespace to one space.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.trim().chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.extend(c.to_lowercase());
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Keywords {
    /// Keywords as written (entries are trimmed; the caller rejects empty ones).
    pub fn new(words: &[String]) -> Self {
        Self {
            shown: words.to_vec(),
            folded: words.iter().map(|w| fold(w)).collect(),
        }
    }

    /// Whether any keyword occurs as a whole word in `folded` (a text passed through [`fold`]).
    pub fn matches(&self, folded: &str) -> bool {
        self.folded.iter().any(|word| {
            folded
                .match_indices(word.as_str())
                .any(|(at, _)| whole_word_at(folded, at, word))
        })
    }

    /// The keywords lower-cased and with whitespace collapsed, as [`fold`] leaves a text.
    pub(crate) fn folded(&self) -> &[String] {
        &self.folded
    }
}

/// Whether `word`, found in `folded` at byte `at`, stands as a whole word there.
pub(crate) fn whole_word_at(folded: &str, at: usize, word: &str) -> bool {
    let before = folded[..at].chars().next_back();
    let after = folded[at + word.len()..].chars().next();
    // A keyword that starts (or ends) with a word character must not continue a word.
    let starts_word = word.chars().next().is_some_and(is_word);
    let ends_word = word.chars().next_back().is_some_and(is_word);
    let glued_before = starts_word && before.is_some_and(is_word);
    let glued_after = ends_word && after.is_some_and(is_word);
    !glued_before && !glued_after
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(words: &[&str], text: &str) -> bool {
        Keywords::new(&words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>())
            .matches(&fold(text))
    }

    #[test]
    fn whole_words_in_any_case() {
        assert!(hit(&["stop"], "STOP"));
        assert!(hit(&["stop"], "please stop!"));
        assert!(!hit(&["stop"], "stopping"));
        assert!(!hit(&["stop"], "nonstop"));
        assert!(hit(&["c++"], "I like C++ a lot"));
        assert!(hit(&["wie viel"], "Wie   viel kostet das?"));
        assert!(hit(&["größe"], "Welche GRÖSSE? Größe M"));
        assert!(hit(&["👍"], "ok👍"));
    }
}
