//! The prefilter that lets a rule set of thousands of rules cost little more per event than a
//! handful: one `RegexSet` over every rule's `text` regex and one Aho-Corasick automaton over
//! every keyword tell, in a single pass over the text each, which rules can still match.
//!
//! A rule is *gated* by its first top-level `text` (or, without one, `keywords`) condition:
//! that condition must hold for the rule to match, so a rule whose gate failed is skipped
//! without evaluating it. Rules without a gate are always evaluated. The gate runs the same
//! regex and the same whole-word test as the condition, so the result is exactly the same.

use std::collections::HashMap;

use aho_corasick::AhoCorasick;
use regex::{RegexSet, RegexSetBuilder};
use regex_syntax::hir::{Hir, HirKind, Look};

use super::Rule;
use super::condition::Condition;
use super::keywords::whole_word_at;
use crate::events::{Event, EventKind};

/// Patterns per set (see [`Chunk`]).
const CHUNK: usize = 128;
/// Memory one set may use; past it, its rules are evaluated one by one.
const SET_SIZE_LIMIT: usize = 512 * 1024 * 1024;

/// Which rules can match an event's text, found in one pass per matcher.
#[derive(Debug, Default)]
pub(super) struct Prefilter {
    /// Pattern `i` of a set is the gate of rule `rules[i]` of the same chunk.
    regexes: Vec<Chunk>,
    /// Pattern `i` is keyword `keywords[i].1` of rule `keywords[i].0`.
    keyword_matcher: Option<AhoCorasick>,
    keywords: Vec<(usize, String)>,
    /// Per event kind: the listening rules without a gate, always evaluated.
    ungated: HashMap<EventKind, Vec<usize>>,
}

/// Some text regexes as one set. Sets stay small because the set's lazy DFA holds, in each
/// state, every pattern that is still alive: a set of thousands of Unicode patterns needs
/// states so large that its cache thrashes on varied texts and it falls back to the PikeVM.
#[derive(Debug)]
struct Chunk {
    set: RegexSet,
    rules: Vec<usize>,
}

impl Prefilter {
    /// Builds the matchers for the gates of `rules`; `by_kind` lists the rules of each kind.
    pub(super) fn new(rules: &[Rule], by_kind: &HashMap<EventKind, Vec<usize>>) -> Self {
        let mut patterns = Vec::new();
        let mut regex_rules = Vec::new();
        let mut keywords = Vec::new();
        let mut gated = vec![false; rules.len()];
        for (i, rule) in rules.iter().enumerate() {
            let text = rule.when.0.iter().find_map(|c| match c {
                Condition::Text { regex, .. } => Some(regex),
                _ => None,
            });
            if let Some(pattern) = text.and_then(|regex| relaxed(regex.as_str())) {
                patterns.push(pattern);
                regex_rules.push(i);
                gated[i] = true;
                continue;
            }
            let words = rule.when.0.iter().find_map(|c| match c {
                Condition::Keywords(k) => Some(k),
                _ => None,
            });
            if let Some(words) = words {
                keywords.extend(words.folded().iter().map(|w| (i, w.clone())));
                gated[i] = true;
            }
        }
        let mut regexes = Vec::new();
        for (patterns, rules) in patterns.chunks(CHUNK).zip(regex_rules.chunks(CHUNK)) {
            match RegexSetBuilder::new(patterns)
                .size_limit(SET_SIZE_LIMIT)
                .build()
            {
                Ok(set) => regexes.push(Chunk {
                    set,
                    rules: rules.to_vec(),
                }),
                Err(err) => {
                    // Every pattern compiled on its own, so only the combined size can fail.
                    tracing::warn!("text regexes are checked one by one: {err}");
                    for &i in rules {
                        gated[i] = false;
                    }
                }
            }
        }
        let keyword_matcher = (!keywords.is_empty())
            .then(|| AhoCorasick::new(keywords.iter().map(|(_, w)| w.as_str())))
            .and_then(|built| match built {
                Ok(matcher) => Some(matcher),
                Err(err) => {
                    tracing::warn!("keywords are checked one by one: {err}");
                    None
                }
            });
        if keyword_matcher.is_none() {
            for (i, _) in &keywords {
                gated[*i] = false;
            }
        }
        let ungated = by_kind
            .iter()
            .map(|(kind, list)| {
                let open = list.iter().copied().filter(|&i| !gated[i]).collect();
                (kind.clone(), open)
            })
            .collect();
        Self {
            regexes,
            keyword_matcher,
            keywords,
            ungated,
        }
    }

    /// The rules listening to the event's kind that can match it, in rule order.
    pub(super) fn candidates(&self, rules: &[Rule], event: &Event) -> Vec<usize> {
        let mut out = self.ungated.get(&event.kind).cloned().unwrap_or_default();
        let before = out.len();
        let listens = |i: usize| rules[i].events.contains(&event.kind);
        // `text:` sees an absent text as empty, and so does its gate.
        let text = event.text.as_deref().unwrap_or("");
        // Most sets match nothing; `is_match` stops early where `matches` reads the whole text.
        for chunk in self.regexes.iter().filter(|c| c.set.is_match(text)) {
            out.extend(
                chunk
                    .set
                    .matches(text)
                    .into_iter()
                    .map(|p| chunk.rules[p])
                    .filter(|&i| listens(i)),
            );
        }
        if let Some(matcher) = &self.keyword_matcher
            && event.text.is_some()
        {
            let folded = event.folded_text();
            out.extend(
                matcher
                    .find_overlapping_iter(folded)
                    .filter(|m| {
                        let word = &self.keywords[m.pattern().as_usize()].1;
                        whole_word_at(folded, m.start(), word)
                    })
                    .map(|m| self.keywords[m.pattern().as_usize()].0)
                    .filter(|&i| listens(i)),
            );
        }
        if out.len() > before {
            out.sort_unstable();
            out.dedup();
        }
        out
    }
}

/// The pattern without its Unicode word boundaries and capture groups, which matches wherever
/// the original does (and sometimes where it does not; the rule's own regex then decides).
/// Unicode `\b` stops the lazy DFA at the first non-ASCII byte, and a set that falls back to
/// the PikeVM costs more than checking its rules one by one.
fn relaxed(pattern: &str) -> Option<String> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    Some(strip(hir).to_string())
}

fn strip(hir: Hir) -> Hir {
    match hir.into_kind() {
        HirKind::Look(
            Look::WordUnicode
            | Look::WordUnicodeNegate
            | Look::WordStartUnicode
            | Look::WordEndUnicode
            | Look::WordStartHalfUnicode
            | Look::WordEndHalfUnicode,
        ) => Hir::empty(),
        HirKind::Capture(capture) => strip(*capture.sub),
        HirKind::Repetition(mut rep) => {
            rep.sub = Box::new(strip(*rep.sub));
            Hir::repetition(rep)
        }
        HirKind::Concat(subs) => Hir::concat(subs.into_iter().map(strip).collect()),
        HirKind::Alternation(subs) => Hir::alternation(subs.into_iter().map(strip).collect()),
        kind @ (HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_)) => {
            rebuild(kind)
        }
    }
}

fn rebuild(kind: HirKind) -> Hir {
    match kind {
        HirKind::Literal(lit) => Hir::literal(lit.0),
        HirKind::Class(class) => Hir::class(class),
        HirKind::Look(look) => Hir::look(look),
        _ => Hir::empty(),
    }
}
