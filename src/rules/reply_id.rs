//! `reply_id:` patterns: an exact id, a glob (`cancel-*`) or a `/regex/`, matched against the
//! id of a tapped button or picked list row as the rule sent it (Whapi's `ButtonsV3:` and
//! `ListV3:` prefixes are taken off the event's id when it is read).
//!
//! Everything is parsed when the rule loads: an event only compares strings, walks a glob's
//! tokens, or runs a regex checked at load.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use super::text_regex::{RegexError, TextRegex};

/// One id or pattern of a `reply_id` condition, with where it is written.
#[derive(Clone)]
pub struct ReplyId {
    pub pattern: ReplyPattern,
    /// As the author wrote it, for explanations and warnings.
    pub written: String,
    pub line: u32,
    pub column: u32,
}

/// How a `reply_id` entry matches.
#[derive(Clone)]
pub enum ReplyPattern {
    /// No wildcard: the id must be exactly this.
    Exact(String),
    /// `*` any run of characters, `?` one character; the whole id must match.
    Glob(Vec<Token>),
    /// Searched in the id like `text:` searches a message (anchor it with `^...$`).
    Regex(Arc<TextRegex>),
}

/// One piece of a glob, or of an id a rule sends whose middle is a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    Char(char),
    /// `?`
    One,
    /// `*`
    Run,
}

// Lint compares rules by their printed conditions: two rules with the same reply_id must
// print the same wherever they are written.
impl fmt::Debug for ReplyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplyId({:?})", self.written)
    }
}

/// Whapi's prefixes on the ids of tapped buttons and picked list rows.
fn without_prefix(id: &str) -> &str {
    id.strip_prefix("ButtonsV3:")
        .or_else(|| id.strip_prefix("ListV3:"))
        .unwrap_or(id)
}

/// The regex between the slashes of `/.../`, if the entry is one.
pub(crate) fn regex_source(written: &str) -> Option<&str> {
    written
        .strip_prefix('/')
        .and_then(|rest| rest.strip_suffix('/'))
}

impl ReplyPattern {
    /// Reads one written entry; a regex is checked (syntax and size) but built on first use.
    pub(crate) fn parse(written: &str) -> Result<Self, RegexError> {
        if let Some(source) = regex_source(written) {
            return TextRegex::check(source).map(|r| Self::Regex(Arc::new(r)));
        }
        let id = without_prefix(written);
        if id.contains(['*', '?']) {
            Ok(Self::Glob(tokens(id)))
        } else {
            Ok(Self::Exact(id.to_owned()))
        }
    }

    /// Whether a tapped or picked id (prefix already taken off) matches.
    pub fn matches(&self, id: &str) -> bool {
        match self {
            Self::Exact(exact) => exact == id,
            Self::Glob(tokens) => glob_matches(tokens, id),
            Self::Regex(regex) => regex.regex().is_some_and(|r| r.is_match(id)),
        }
    }

    /// Whether some id the set sends could match. Errs towards yes where it cannot tell (a
    /// regex too large to check against a templated id). Only ids whose fixed start fits
    /// the pattern's are looked at, so a set of thousands of ids is not read for each entry.
    pub(crate) fn may_match(&self, sent: &SentIds) -> bool {
        match self {
            Self::Exact(exact) => {
                sent.literal.contains(exact) || {
                    let exact_tokens = tokens_literal(exact);
                    sent.templated_fitting(exact)
                        .any(|t| globs_meet(&exact_tokens, t))
                }
            }
            Self::Glob(tokens) => {
                let start = fixed_start(tokens);
                sent.literal_starting(&start)
                    .any(|id| glob_matches(tokens, id))
                    || sent
                        .templated_fitting(&start)
                        .any(|t| globs_meet(tokens, t))
            }
            Self::Regex(regex) => {
                let starts =
                    anchored_starts(regex.pattern()).unwrap_or_else(|| vec![String::new()]);
                let mut templated: Vec<&[Token]> = Vec::new();
                for start in &starts {
                    if sent.literal_starting(start).any(|id| self.matches(id)) {
                        return true;
                    }
                    templated.extend(sent.templated_fitting(start));
                }
                templated.iter().any(|t| self.matches_filled(t))
                    || (!templated.is_empty()
                        && check_dfa(regex.pattern())
                            .is_none_or(|dfa| templated.iter().any(|t| regex_meets_glob(&dfa, t))))
            }
        }
    }

    /// Whether a templated id with its templated parts filled in a few usual ways matches:
    /// most do, and finding so is cheaper than building the regex's DFA.
    fn matches_filled(&self, tokens: &[Token]) -> bool {
        const FILLS: [&str; 4] = ["1", "", "a", "x-1"];
        FILLS.iter().any(|fill| {
            let id: String = tokens
                .iter()
                .map(|t| match t {
                    Token::Char(c) => c.to_string(),
                    Token::One => fill.chars().next().unwrap_or('1').to_string(),
                    Token::Run => (*fill).to_owned(),
                })
                .collect();
            self.matches(&id)
        })
    }
}

/// The characters a glob or sent id starts with, up to its first wildcard.
fn fixed_start(tokens: &[Token]) -> String {
    tokens
        .iter()
        .map_while(|t| match t {
            Token::Char(c) => Some(*c),
            Token::One | Token::Run => None,
        })
        .collect()
}

/// How every match of a regex anchored at the start (`^...`) begins, each start a
/// possibility; `None` when it is not anchored or the starts are not known.
fn anchored_starts(pattern: &str) -> Option<Vec<String>> {
    use regex_syntax::hir::Look;
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::parse(pattern).ok()?;
    if !hir.properties().look_set_prefix().contains(Look::Start) {
        return None;
    }
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    seq.literals()?
        .iter()
        .map(|l| String::from_utf8(l.as_bytes().to_vec()).ok())
        .collect()
}

/// The button and list row ids a rule set sends: literal ones as they are sent, templated
/// ones as tokens where a templated part is a `Run`, by their fixed start.
#[derive(Debug, Default)]
pub(crate) struct SentIds {
    literal: BTreeSet<String>,
    templated: BTreeMap<String, Vec<Vec<Token>>>,
}

impl SentIds {
    /// Adds the id of a button or list row, as written (a template or not).
    pub(crate) fn add(&mut self, source: &str) {
        let tokens = sent_tokens(source);
        if tokens.contains(&Token::Run) {
            self.templated
                .entry(fixed_start(&tokens))
                .or_default()
                .push(tokens);
        } else {
            self.literal.insert(source.trim().to_owned());
        }
    }

    /// The literal ids that start with `start`.
    fn literal_starting<'a>(&'a self, start: &'a str) -> impl Iterator<Item = &'a String> {
        self.literal
            .range::<str, _>((Bound::Included(start), Bound::Unbounded))
            .take_while(move |id| id.starts_with(start))
    }

    /// The templated ids whose fixed start and `start` could begin the same id: one is the
    /// other's beginning.
    fn templated_fitting<'a>(&'a self, start: &'a str) -> impl Iterator<Item = &'a [Token]> {
        let shorter = start
            .char_indices()
            .map(|(at, _)| at)
            .chain([start.len()])
            .filter_map(|at| self.templated.get(&start[..at]));
        let longer = self
            .templated
            .range::<str, _>((Bound::Excluded(start), Bound::Unbounded))
            .take_while(move |(fixed, _)| fixed.starts_with(start))
            .map(|(_, ids)| ids);
        shorter.chain(longer).flatten().map(Vec::as_slice)
    }
}

/// A glob's tokens: `*` and `?` are wildcards, everything else stands for itself.
fn tokens(glob: &str) -> Vec<Token> {
    glob.chars()
        .map(|c| match c {
            '*' => Token::Run,
            '?' => Token::One,
            c => Token::Char(c),
        })
        .collect()
}

/// An id's characters as tokens, wildcard characters included as themselves.
pub(crate) fn tokens_literal(id: &str) -> Vec<Token> {
    id.chars().map(Token::Char).collect()
}

/// Whether a whole id matches a glob: greedy, going back to the last `*` on a mismatch.
fn glob_matches(glob: &[Token], id: &str) -> bool {
    let (mut gi, mut at) = (0, 0);
    // The last `*` seen, and where in the id it would resume.
    let mut star: Option<(usize, usize)> = None;
    while let Some(c) = id[at..].chars().next() {
        match glob.get(gi) {
            Some(Token::One) => {
                gi += 1;
                at += c.len_utf8();
            }
            Some(Token::Char(g)) if *g == c => {
                gi += 1;
                at += c.len_utf8();
            }
            Some(Token::Run) => {
                star = Some((gi, at));
                gi += 1;
            }
            _ => {
                let Some((star_at, from)) = star else {
                    return false;
                };
                let next = from + id[from..].chars().next().map_or(1, char::len_utf8);
                star = Some((star_at, next));
                gi = star_at + 1;
                at = next;
            }
        }
    }
    glob[gi..].iter().all(|t| *t == Token::Run)
}

/// Whether two globs match some id in common. Walks pairs of positions, one in each glob:
/// a `*` may end, or take a character the other side produces.
fn globs_meet(mut a: &[Token], mut b: &[Token]) -> bool {
    // Fixed characters at either end must agree: most pairs differ there, with no walk.
    while let ([Token::Char(x), rest_a @ ..], [Token::Char(y), rest_b @ ..]) = (a, b) {
        if x != y {
            return false;
        }
        (a, b) = (rest_a, rest_b);
    }
    while let ([rest_a @ .., Token::Char(x)], [rest_b @ .., Token::Char(y)]) = (a, b) {
        if x != y {
            return false;
        }
        (a, b) = (rest_a, rest_b);
    }
    let width = b.len() + 1;
    let mut seen = vec![false; (a.len() + 1) * width];
    let mut todo = vec![(0, 0)];
    while let Some((i, j)) = todo.pop() {
        if std::mem::replace(&mut seen[i * width + j], true) {
            continue;
        }
        if i == a.len() && j == b.len() {
            return true;
        }
        let (x, y) = (a.get(i), b.get(j));
        if x == Some(&Token::Run) {
            todo.push((i + 1, j));
            if y.is_some() {
                todo.push((i, j + 1));
            }
        }
        if y == Some(&Token::Run) {
            todo.push((i, j + 1));
            if x.is_some() {
                todo.push((i + 1, j));
            }
        }
        if let (Some(x), Some(y)) = (x, y) {
            let one_each = match (x, y) {
                (Token::Char(p), Token::Char(q)) => p == q,
                (Token::Run, _) | (_, Token::Run) => false,
                _ => true,
            };
            if one_each {
                todo.push((i + 1, j + 1));
            }
        }
    }
    false
}

/// States a check of a regex against a templated id may build; past it the answer is yes.
const CHECK_SIZE_LIMIT: usize = 1 << 20;

/// The DFA a regex is checked against templated ids with; `None` if it would be too large.
fn check_dfa(pattern: &str) -> Option<regex_automata::dfa::dense::DFA<Vec<u32>>> {
    use regex_automata::MatchKind;
    use regex_automata::dfa::dense;
    let config = dense::Config::new()
        .match_kind(MatchKind::All)
        .dfa_size_limit(Some(CHECK_SIZE_LIMIT))
        .determinize_size_limit(Some(CHECK_SIZE_LIMIT));
    dense::Builder::new().configure(config).build(pattern).ok()
}

/// Whether a regex finds a match in some id that `glob` describes. The regex's DFA is run
/// over the fixed characters; at a `*` (or `?`, taken as `*`) every state reachable by any
/// bytes is kept. Bytes rather than characters only allow more, so a no is certain.
fn regex_meets_glob(dfa: &regex_automata::dfa::dense::DFA<Vec<u32>>, glob: &[Token]) -> bool {
    use regex_automata::Input;
    use regex_automata::dfa::Automaton;
    use regex_automata::util::primitives::StateID;
    let Ok(start) = dfa.start_state_forward(&Input::new("")) else {
        return true;
    };
    // A match state is entered one byte late, so it counts wherever it shows up; a quit
    // state means the DFA gave up, which counts as a match too.
    let settled = |states: &[StateID]| {
        states
            .iter()
            .any(|s| dfa.is_match_state(*s) || dfa.is_quit_state(*s))
    };
    let mut states = vec![start];
    for token in glob {
        match token {
            Token::Char(c) => {
                let mut buf = [0; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    for s in &mut states {
                        *s = dfa.next_state(*s, byte);
                    }
                    states.retain(|s| !dfa.is_dead_state(*s));
                    states.sort_unstable();
                    states.dedup();
                }
            }
            Token::One | Token::Run => {
                let mut seen: std::collections::HashSet<StateID> = states.iter().copied().collect();
                let mut todo = states.clone();
                while let Some(s) = todo.pop() {
                    for byte in 0..=u8::MAX {
                        let next = dfa.next_state(s, byte);
                        if !dfa.is_dead_state(next) && seen.insert(next) {
                            todo.push(next);
                        }
                    }
                }
                states = seen.into_iter().collect();
                states.sort_unstable();
            }
        }
        if settled(&states) {
            return true;
        }
        if states.is_empty() {
            return false;
        }
    }
    states
        .iter()
        .any(|s| dfa.is_match_state(dfa.next_eoi_state(*s)))
}

/// The ids a button or list row with this id source can send, as tokens: a literal id as
/// it is, a templated one as its fixed start, anything, and its fixed end. Sent ids are
/// trimmed, so are the fixed parts (a shorter fixed part only allows more).
pub(crate) fn sent_tokens(source: &str) -> Vec<Token> {
    const OPEN: [&str; 3] = ["{{", "{%", "{#"];
    const CLOSE: [&str; 3] = ["}}", "%}", "#}"];
    let first_open = OPEN.iter().filter_map(|o| source.find(o)).min();
    let Some(open) = first_open else {
        return tokens_literal(source.trim());
    };
    let close = CLOSE
        .iter()
        .filter_map(|c| source.rfind(c).map(|at| at + c.len()))
        .max()
        .filter(|close| *close >= open)
        .unwrap_or(source.len());
    let mut out = tokens_literal(source[..open].trim());
    out.push(Token::Run);
    out.extend(tokens_literal(source[close..].trim()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(written: &str) -> ReplyPattern {
        ReplyPattern::parse(written).unwrap_or_else(|_| panic!("{written} parses"))
    }

    #[test]
    fn globs_match_the_whole_id() {
        let cancel = pattern("cancel-*");
        assert!(cancel.matches("cancel-42"));
        assert!(cancel.matches("cancel-"));
        assert!(!cancel.matches("x-cancel-42"));
        assert!(!cancel.matches("cancel"));
        let one = pattern("slot-?");
        assert!(one.matches("slot-3") && one.matches("slot-é"));
        assert!(!one.matches("slot-33"));
        let middle = pattern("*-2026-*-b");
        assert!(middle.matches("x-2026-12-b"));
        assert!(middle.matches("y-2026-2026-1-b"));
        assert!(!middle.matches("x-2026-12-c"));
        assert!(
            pattern("ButtonsV3:yes-*").matches("yes-1"),
            "prefix dropped"
        );
    }

    #[test]
    fn plain_ids_stay_exact_and_regexes_search() {
        assert!(matches!(pattern("yes"), ReplyPattern::Exact(ref id) if id == "yes"));
        assert!(matches!(pattern("ListV3:row-1"), ReplyPattern::Exact(ref id) if id == "row-1"));
        assert!(!pattern("yes").matches("yes-1"));
        let regex = pattern(r"/^slot-\d{2}$/");
        assert!(regex.matches("slot-09"));
        assert!(!regex.matches("slot-9"));
        assert!(pattern("/book/").matches("rebook-now"), "unanchored");
        assert!(ReplyPattern::parse("/(open/").is_err());
    }

    #[test]
    fn among_many_sent_ids_the_one_that_fits_is_found() {
        let mut sent = SentIds::default();
        for id in [
            "yes",
            "no",
            "size-{{ s }}",
            "{{ kind }}-later",
            "order-{{ n }}-refund",
            "ab",
        ] {
            sent.add(id);
        }
        let fits = |written: &str| pattern(written).may_match(&sent);
        assert!(fits("yes") && fits("ab") && fits("size-m") && fits("x-later"));
        assert!(fits("order-7-refund") && !fits("order-7-return"));
        assert!(fits("s*") && fits("size*") && fits("si?e-*") && fits("a*"));
        assert!(
            fits("yes-*"),
            "the templated `-later` id can be `yes-later`"
        );
        assert!(!fits("yes-*x") && !fits("maybe") && !fits("b*x"));
        assert!(fits("/^(no|maybe)$/") && fits("/(?i)^SIZE-XL$/") && fits("/^order-\\d+-/"));
        assert!(!fits("/^(maybe|perhaps)$/") && !fits("/^order-\\d+-return$/"));
        assert!(fits("/later$/"), "unanchored: every id is looked at");
    }

    #[test]
    fn sent_ids_keep_their_fixed_parts() {
        assert_eq!(sent_tokens(" yes "), tokens_literal("yes"));
        let templated = sent_tokens("cancel-{{ booking.id }}");
        assert_eq!(templated[..7], tokens_literal("cancel-")[..]);
        assert_eq!(templated.last(), Some(&Token::Run));
        let both = sent_tokens("{{ kind }}-{% if x %}a{% endif %}-end");
        assert_eq!(both[0], Token::Run);
        assert_eq!(both[1..], tokens_literal("-end")[..]);
    }

    #[test]
    fn a_pattern_meets_a_sent_id_when_some_id_could_match_both() {
        let sent = |s: &str| {
            let mut ids = SentIds::default();
            ids.add(s);
            ids
        };
        assert!(pattern("cancel-*").may_match(&sent("cancel-7")));
        assert!(!pattern("cancel-*").may_match(&sent("cancl-7")));
        assert!(pattern("cancel-*").may_match(&sent("{{ id }}")));
        assert!(pattern("cancel-*").may_match(&sent("can{{ id }}")));
        assert!(!pattern("cancel-*").may_match(&sent("book-{{ id }}")));
        assert!(pattern("cancel-7").may_match(&sent("cancel-{{ id }}")));
        assert!(!pattern("cancel").may_match(&sent("cancel-{{ id }}")));
        assert!(pattern("*-done").may_match(&sent("{{ step }}-done")));
        assert!(!pattern("?").may_match(&sent("ab")));
        assert!(pattern("a*c").may_match(&sent("a*c")), "a literal star");
        assert!(pattern("a*").may_match(&sent("{{ x }}b")), "`ab` fits both");
        assert!(!pattern("a").may_match(&sent("{{ x }}b")));
        assert!(pattern(r"/^\d+$/").may_match(&sent("42")));
        assert!(!pattern(r"/^\d+$/").may_match(&sent("x42")));
        assert!(!pattern(r"/^\d+$/").may_match(&sent("x{{ n }}")));
        assert!(pattern(r"/^\d+$/").may_match(&sent("{{ n }}")));
        assert!(pattern(r"/^x\d+-a$/").may_match(&sent("x{{ n }}-a")));
        assert!(!pattern(r"/^x\d+-a$/").may_match(&sent("x{{ n }}-b")));
        assert!(
            pattern("/cancel/").may_match(&sent("{{ n }}-b")),
            "found in the middle"
        );
        assert!(!pattern("/^(confirm|cancel)-/").may_match(&sent("book-{{ n }}")));
        assert!(pattern("/^(confirm|cancel)-/").may_match(&sent("cancel-{{ n }}")));
        assert!(pattern("/(?i)^CANCEL-/").may_match(&sent("cancel-{{ n }}")));
        assert!(
            pattern(r"/-\d$/").may_match(&sent("a-{{ n }}")),
            "the end is free"
        );
        assert!(!pattern(r"/^a-\d$/").may_match(&sent("a-{{ n }}x")));
    }
}
