//! The prefilter that lets a rule set of thousands of rules cost little more per event than a
//! handful: in a single pass over the text each, one Aho-Corasick automaton over the literals
//! the rules' `text` regexes require, lazy DFAs over the regexes that require none, and one
//! Aho-Corasick automaton over every keyword tell which rules can still match.
//!
//! A rule is *gated* by its first top-level `text` (or, without one, `keywords`) condition:
//! that condition must hold for the rule to match, so a rule whose gate failed is skipped
//! without evaluating it. Rules without a gate are always evaluated. A gate lets through every
//! text its condition accepts (a regex's literals are in every text it matches; the DFA runs
//! the regex itself, relaxed; the keywords run the same whole-word test), so the result is
//! exactly the same as evaluating every rule.

use std::collections::HashMap;

use aho_corasick::AhoCorasick;
use std::sync::{Arc, LazyLock, Mutex};

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::{Input, MatchKind, PatternSet};
use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, Hir, HirKind, Look};

use super::Rule;
use super::condition::Condition;
use super::keywords::whole_word_at;
use super::literal_gates::LiteralGates;
use super::literals::Clause;
use super::reuse::Reuse;
use crate::events::{Event, EventKind};

/// Chunk automata of the last compile, by their patterns.
static CHUNKS: LazyLock<Reuse<Vec<String>, Arc<Automaton>>> = LazyLock::new(Reuse::new);

/// Keyword automata of the last compile, by a hash of their keywords.
static KEYWORDS: LazyLock<Reuse<[u8; 32], Arc<AhoCorasick>>> = LazyLock::new(Reuse::new);

/// Patterns per set (see [`Chunk`]).
const CHUNK: usize = 256;

/// Which rules can match an event's text, found in one pass per matcher.
#[derive(Debug, Default)]
pub(super) struct Prefilter {
    /// Which of the chunks from `always` on a text needs searching, by the literals it holds.
    literals: Option<LiteralGates>,
    /// Pattern `i` of a set is the gate of rule `rules[i]` of the same chunk.
    regexes: Vec<Chunk>,
    /// Chunks before this one are searched for every text: their patterns require no literal.
    always: usize,
    /// Pattern `i` is a keyword of rule `keyword_rules[i]`.
    keyword_matcher: Option<Arc<AhoCorasick>>,
    keyword_rules: Vec<usize>,
    /// Per event kind: the listening rules without a gate, always evaluated.
    ungated: HashMap<EventKind, Vec<usize>>,
    /// Search caches for every chunk at once, one set per search running at the same time: an
    /// event takes a set with one lock instead of one lock per chunk it searches (ten for the
    /// benchmark's 10,000 rules). Dropped with the rule set, the caches go back to their
    /// chunks' automata.
    searchers: Mutex<Vec<Searcher>>,
}

/// A cache for each chunk, in chunk order, filled the first time the chunk is searched.
type Searcher = Vec<Option<Cache>>;

impl Drop for Prefilter {
    fn drop(&mut self) {
        let searchers = match self.searchers.get_mut() {
            Ok(searchers) => std::mem::take(searchers),
            Err(poisoned) => std::mem::take(poisoned.into_inner()),
        };
        for searcher in searchers {
            for (chunk, cache) in self.regexes.iter().zip(searcher) {
                if let (Some(cache), Ok(mut caches)) = (cache, chunk.automaton.caches.lock()) {
                    caches.push(cache);
                }
            }
        }
    }
}

/// Some text regexes as one set. Sets stay small because the set's lazy DFA holds, in each
/// state, every pattern that is still alive: a set of thousands of patterns needs states so
/// large that its cache thrashes (2,048 generated patterns: 7.7 ms an event instead of 4 µs).
/// Since the gates widen Unicode classes, 256 patterns fit where 128 did, with half as many
/// searches per event (`match_event` with 10,000 rules: 6.8 µs → 3.8–4.8 µs).
///
/// A lazy DFA alone, not a full `RegexSet`: the prefilter only asks which patterns match, so
/// it needs neither captures nor the other engines a `RegexSet` builds, which made building the
/// sets cost as much again as compiling the rules' own regexes.
#[derive(Debug)]
struct Chunk {
    automaton: Arc<Automaton>,
    rules: Vec<usize>,
}

/// A chunk's lazy DFA with its search caches, which hold the states built so far: a chunk
/// taken into the next rule set keeps them, instead of every reload building them again.
#[derive(Debug)]
struct Automaton {
    dfa: DFA,
    /// Search scratch space, one per thread searching at once.
    caches: Mutex<Vec<Cache>>,
}

impl Chunk {
    /// A chunk for `text:` patterns; the automaton is reused from the last compile when the
    /// same patterns make up a chunk again.
    fn build(patterns: &[&str], rules: &[usize]) -> Result<Self, String> {
        let key: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        let automaton = CHUNKS.get_or(&key, || {
            let gates = patterns
                .iter()
                .map(|p| super::text_regex::gate(p).ok_or_else(|| format!("invalid regex {p}")))
                .collect::<Result<Vec<Hir>, String>>()?;
            let nfa = thompson::Compiler::new()
                .configure(thompson::Config::new().which_captures(thompson::WhichCaptures::None))
                .build_many_from_hir(&gates)
                .map_err(|e| e.to_string())?;
            let dfa = DFA::builder()
                .configure(DFA::config().match_kind(MatchKind::All))
                .build_from_nfa(nfa)
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(Arc::new(Automaton {
                dfa,
                caches: Mutex::new(Vec::new()),
            }))
        })?;
        Ok(Self {
            automaton,
            rules: rules.to_vec(),
        })
    }

    /// Adds the rules whose pattern matches `text`; every rule of the chunk when the search
    /// cannot tell (the rules then decide themselves).
    /// `slot` is this search's cache for the chunk; an empty one takes a cache the automaton
    /// kept (warmed by earlier rule sets) or a new one.
    fn matching(&self, text: &str, slot: &mut Option<Cache>, out: &mut Vec<usize>) {
        let Automaton { dfa, caches } = &*self.automaton;
        let cache = slot.get_or_insert_with(|| {
            let taken = caches.lock().ok().and_then(|mut c| c.pop());
            taken.unwrap_or_else(|| dfa.create_cache())
        });
        let input = Input::new(text);
        // Most chunks match nothing, and the earliest-match search stops at once.
        let result = match dfa.try_search_fwd(cache, &input.clone().earliest(true)) {
            Ok(None) => Ok(()),
            Ok(Some(_)) => {
                let mut hits = PatternSet::new(dfa.pattern_len());
                dfa.try_which_overlapping_matches(cache, &input, &mut hits)
                    .map(|()| out.extend(hits.iter().map(|p| self.rules[p.as_usize()])))
            }
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            tracing::debug!("prefilter gave up on a text ({err}); checking its rules one by one");
            out.extend(&self.rules);
        }
    }
}

impl Prefilter {
    /// Builds the matchers for the gates of `rules`; `by_kind` lists the rules of each kind.
    pub(super) fn new(rules: &[Arc<Rule>], by_kind: &HashMap<EventKind, Vec<usize>>) -> Self {
        let mut plain = Vec::new();
        let mut literal = Vec::new();
        let mut clauses: Vec<&[Clause]> = Vec::new();
        let mut keywords = Vec::new();
        let mut gated = vec![false; rules.len()];
        for (i, rule) in rules.iter().enumerate() {
            let text = rule.when.0.iter().find_map(|c| match c {
                Condition::Text { source, regex } => Some((source.as_str(), regex.required())),
                _ => None,
            });
            if let Some((pattern, required)) = text {
                if required.is_empty() {
                    plain.push((i, pattern));
                } else {
                    literal.push((i, pattern));
                    clauses.push(required);
                }
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
        // One chunk's search costs about what the literal pass does, so the pass pays only
        // where it can spare at least two.
        if literal.len() <= CHUNK {
            plain.append(&mut literal);
            clauses.clear();
        }
        // The regexes that require no literal come first, in chunks searched for every text;
        // the others only when a text holds the literals of one of their chunk's patterns.
        let mut regexes = Vec::new();
        build_chunks(&plain, &mut regexes, &mut gated);
        let mut always = regexes.len();
        let chunk_of = build_chunks(&literal, &mut regexes, &mut gated);
        let gates: Vec<(usize, &[Clause])> = chunk_of
            .iter()
            .zip(clauses)
            .filter_map(|(chunk, clauses)| Some(((*chunk)?, clauses)))
            .collect();
        let literals = (!gates.is_empty())
            .then(|| LiteralGates::new(&gates))
            .and_then(|built| match built {
                Ok(gates) => Some(gates),
                Err(err) => {
                    tracing::warn!("every text regex is searched for every text: {err}");
                    always = regexes.len();
                    None
                }
            });
        let keyword_matcher = (!keywords.is_empty())
            .then(|| keyword_matcher(&keywords))
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
        CHUNKS.rotate();
        KEYWORDS.rotate();
        Self {
            literals,
            regexes,
            always,
            keyword_matcher,
            keyword_rules: keywords.into_iter().map(|(rule, _)| rule).collect(),
            ungated,
            searchers: Mutex::default(),
        }
    }

    /// The rules listening to the event's kind that can match it, in rule order.
    pub(super) fn candidates(&self, rules: &[Arc<Rule>], event: &Event) -> Vec<usize> {
        let mut out = self.ungated.get(&event.kind).cloned().unwrap_or_default();
        let before = out.len();
        let listens = |i: usize| rules[i].events.contains(&event.kind);
        // `text:` sees an absent text as empty, and so does its gate.
        let text = event.text.as_deref().unwrap_or("");
        let mut hits = Vec::new();
        let taken = self.searchers.lock().ok().and_then(|mut s| s.pop());
        let mut searcher = taken.unwrap_or_default();
        searcher.resize_with(self.regexes.len(), || None);
        let mut opened = Vec::new();
        if let Some(literals) = &self.literals {
            literals.matching(text, &mut opened);
            opened.sort_unstable();
            opened.dedup();
        }
        for number in (0..self.always).chain(opened) {
            self.regexes[number].matching(text, &mut searcher[number], &mut hits);
        }
        if let Ok(mut searchers) = self.searchers.lock() {
            searchers.push(searcher);
        }
        out.extend(hits.into_iter().filter(|&i| listens(i)));
        if let Some(matcher) = &self.keyword_matcher
            && event.text.is_some()
        {
            let folded = event.folded_text();
            out.extend(
                matcher
                    .find_overlapping_iter(folded)
                    .filter(|m| whole_word_at(folded, m.start(), &folded[m.range()]))
                    .map(|m| self.keyword_rules[m.pattern().as_usize()])
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

/// Builds `patterns` (rule and pattern) into chunks at the end of `regexes`, and says which
/// chunk each pattern went into. A chunk that cannot be built leaves its rules ungated.
fn build_chunks(
    patterns: &[(usize, &str)],
    regexes: &mut Vec<Chunk>,
    gated: &mut [bool],
) -> Vec<Option<usize>> {
    let mut chunk_of = Vec::with_capacity(patterns.len());
    for part in patterns.chunks(CHUNK) {
        let (rules, sources): (Vec<usize>, Vec<&str>) = part.iter().copied().unzip();
        match Chunk::build(&sources, &rules) {
            Ok(chunk) => {
                chunk_of.extend(std::iter::repeat_n(Some(regexes.len()), part.len()));
                regexes.push(chunk);
            }
            Err(err) => {
                // Every pattern compiled on its own, so only the combined size can fail.
                tracing::warn!("text regexes are checked one by one: {err}");
                for &i in &rules {
                    gated[i] = false;
                }
                chunk_of.extend(std::iter::repeat_n(None, part.len()));
            }
        }
    }
    chunk_of
}

/// The automaton for `keywords`, reused from the last compile when they are the same.
fn keyword_matcher(keywords: &[(usize, String)]) -> Result<Arc<AhoCorasick>, String> {
    let words: Vec<&[u8]> = keywords.iter().map(|(_, w)| w.as_bytes()).collect();
    reused_automaton(&KEYWORDS, &words, |words| AhoCorasick::new(words))
}

/// The automaton `build` makes of `words`, or the one `reuse` kept for the same words.
pub(super) fn reused_automaton(
    reuse: &Reuse<[u8; 32], Arc<AhoCorasick>>,
    words: &[&[u8]],
    build: impl FnOnce(&[&[u8]]) -> Result<AhoCorasick, aho_corasick::BuildError>,
) -> Result<Arc<AhoCorasick>, String> {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for word in words {
        // Length first: a separator byte could itself be part of a regex literal.
        hash.update((word.len() as u64).to_le_bytes());
        hash.update(word);
    }
    reuse.get_or(&hash.finalize().into(), || {
        build(words).map(Arc::new).map_err(|e| e.to_string())
    })
}

/// The pattern without its Unicode word boundaries and capture groups, and with every class
/// that reaches beyond ASCII widened to all of non-ASCII: it matches wherever the original does
/// (and sometimes where it does not; the rule's own regex then decides). Unicode `\b` stops the
/// lazy DFA at the first non-ASCII byte, and a set that falls back to the PikeVM costs more than
/// checking its rules one by one; Unicode classes such as `\d` or `(?i)k` take hundreds of
/// UTF-8 states each, and the widened class a handful.
pub(super) fn relaxed(hir: Hir) -> Hir {
    strip(hir)
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
        HirKind::Class(Class::Unicode(class)) => Hir::class(Class::Unicode(widened(class))),
        kind @ (HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_)) => {
            rebuild(kind)
        }
    }
}

/// The class's ASCII part, plus every non-ASCII character if it has any.
fn widened(class: ClassUnicode) -> ClassUnicode {
    if class.ranges().last().is_none_or(|r| r.end() <= '\x7f') {
        return class;
    }
    let mut wide = ClassUnicode::new(
        class
            .ranges()
            .iter()
            .filter(|r| r.start() <= '\x7f')
            .map(|r| ClassUnicodeRange::new(r.start(), r.end().min('\x7f'))),
    );
    wide.push(ClassUnicodeRange::new('\u{80}', char::MAX));
    wide
}

fn rebuild(kind: HirKind) -> Hir {
    match kind {
        HirKind::Literal(lit) => Hir::literal(lit.0),
        HirKind::Class(class) => Hir::class(class),
        HirKind::Look(look) => Hir::look(look),
        _ => Hir::empty(),
    }
}
