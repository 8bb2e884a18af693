//! `text:` regexes: checked in full when their rule loads, compiled the first time they run.
//!
//! A compiled regex holds tens of kilobytes (its automaton and search caches), and in a set of
//! thousands of rules the prefilter lets only the few whose pattern can match a text run at
//! all: most never compile. What a rule keeps is its pattern; the prefilter's gate is derived
//! from the pattern again when an automaton of gates has to be built.

use std::sync::OnceLock;

use regex_automata::meta::Regex;
use regex_syntax::hir::Hir;

use super::literals::Clause;

/// Memory a single compiled regex may use; a hostile or careless pattern fails at load time.
const REGEX_SIZE_LIMIT: usize = 2 * 1024 * 1024;

/// A `text:` regex of a rule.
pub struct TextRegex {
    pattern: String,
    /// The literals every match holds, found once at load (see [`super::literals`]).
    required: Box<[Clause]>,
    compiled: OnceLock<Option<Regex>>,
}

/// Why a pattern does not compile.
pub(crate) enum RegexError {
    /// At a character offset into the pattern.
    Syntax {
        offset: u32,
        message: String,
    },
    Build(String),
}

impl TextRegex {
    /// Checks `pattern` as the regex will be built (syntax and size) and keeps it for later.
    pub(crate) fn check(pattern: &str) -> Result<Self, RegexError> {
        let hir = parse(pattern)?;
        build(&hir)?;
        Ok(Self {
            pattern: pattern.to_owned(),
            required: super::literals::required(&hir).into(),
            compiled: OnceLock::new(),
        })
    }

    /// The pattern as written.
    pub(crate) fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Clauses of literals, one of each of which every match holds; empty if none is known.
    pub(crate) fn required(&self) -> &[Clause] {
        &self.required
    }

    /// The compiled regex, built on first use. `None` only if a pattern that compiled when its
    /// rule loaded fails now, which building the same pattern the same way cannot do.
    pub fn regex(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| {
                let built = parse(&self.pattern).and_then(|hir| build(&hir));
                if built.is_err() {
                    tracing::error!(pattern = %self.pattern, "a checked regex failed to compile");
                }
                built.ok()
            })
            .as_ref()
    }
}

impl std::fmt::Debug for TextRegex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The automaton's dump is megabytes, and lint compares rules by their printed form.
        f.write_str("…")
    }
}

/// The pattern as the prefilter runs it (see [`super::prefilter::relaxed`]).
pub(crate) fn gate(pattern: &str) -> Option<Hir> {
    parse(pattern).ok().map(super::prefilter::relaxed)
}

fn parse(pattern: &str) -> Result<Hir, RegexError> {
    let ast = regex_syntax::ast::parse::Parser::new()
        .parse(pattern)
        .map_err(|err| RegexError::Syntax {
            offset: pattern[..err.span().start.offset].chars().count() as u32,
            message: err.kind().to_string(),
        })?;
    regex_syntax::hir::translate::Translator::new()
        .translate(pattern, &ast)
        .map_err(|e| RegexError::Build(e.kind().to_string()))
}

fn build(hir: &Hir) -> Result<Regex, RegexError> {
    // Only the NFA engines (the backtracker, and the PikeVM for long texts): the rule
    // prefilter has already picked the few rules worth running on a short message, and a
    // lazy DFA would need a reverse NFA too, which took four fifths of a regex rule's memory.
    // No literal prefilter or one-pass DFA either: they cost more to build than they save.
    let config = regex_automata::meta::Config::new()
        .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
        .auto_prefilter(false)
        .onepass(false)
        .hybrid(false)
        .dfa(false);
    regex_automata::meta::Builder::new()
        .configure(config)
        .build_from_hir(hir)
        .map_err(|e| {
            let message = e.to_string();
            let last = message
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or(&message);
            RegexError::Build(last.trim().trim_start_matches("error: ").to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checked_pattern_compiles_when_first_used() {
        let regex = TextRegex::check(r"(?i)order\s+(?P<n>\d+)").unwrap_or_else(|_| panic!());
        assert!(regex.compiled.get().is_none(), "nothing is built at load");
        let built = regex.regex().expect("compiles");
        assert!(built.is_match("Order 42"));
        assert!(regex.compiled.get().is_some());
    }

    #[test]
    fn syntax_and_size_are_checked_at_load() {
        assert!(matches!(
            TextRegex::check("(unclosed"),
            Err(RegexError::Syntax { .. })
        ));
        assert!(matches!(
            TextRegex::check(r"\w{1000}\w{1000}"),
            Err(RegexError::Build(_))
        ));
    }
}
