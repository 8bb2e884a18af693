//! The literals a `text:` regex cannot match without. `(?i)\border\s+#?(?P<n>42\d+)` matches
//! no text that lacks `order` or `42`, so a text with neither can skip the rule without running
//! any automaton: the prefilter looks for the literals of every rule in one Aho-Corasick pass.
//!
//! The analysis only ever answers "required" where it is sure: every string in a clause is a
//! piece of the match, so a text without any of them cannot match. Where it is not sure (a
//! class too wide to list, an optional part, a set that would grow too large) it knows
//! nothing, and a regex it knows nothing about is gated by its automaton instead.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Strings of which every match holds at least one, ASCII letters in lower case (the search
/// ignores ASCII case, so a clause may admit more texts than the regex, never fewer).
pub(crate) type Clause = Vec<Vec<u8>>;

/// The most strings a part may match exactly before it counts as unknown: `[a-c][a-c]` is
/// nine strings, `\d\d` a hundred, which is no longer worth listing.
const MOST_EXACT: usize = 16;

/// The most alternatives a clause lists (`refund|money back|cancel|...`).
const MOST_ALTERNATIVES: usize = 64;

/// The most characters a class may hold to be listed one by one (`[Oo]`, `[Kk\u{212A}]`).
const MOST_IN_CLASS: usize = 4;

/// The most clauses kept per regex: the strongest, since each one that holds costs a lookup.
const MOST_CLAUSES: usize = 4;

/// What is known of a part of a regex.
struct Known {
    /// The part matches exactly one of these strings, when there are few enough to list.
    exact: Option<Vec<Vec<u8>>>,
    /// Every match of the part holds a string of each clause.
    clauses: Vec<Clause>,
}

impl Known {
    fn exactly(strings: Vec<Vec<u8>>) -> Self {
        Self {
            exact: Some(strings),
            clauses: Vec::new(),
        }
    }

    fn nothing() -> Self {
        Self {
            exact: None,
            clauses: Vec::new(),
        }
    }

    /// Every clause, the exact strings counted as one.
    fn into_clauses(self) -> Vec<Clause> {
        let mut clauses = self.clauses;
        clauses.extend(self.exact);
        clauses.retain(|c| !c.is_empty() && c.iter().all(|s| !s.is_empty()));
        for clause in &mut clauses {
            clause.sort_unstable();
            clause.dedup();
        }
        clauses.sort_by_key(strength);
        clauses.dedup();
        clauses.truncate(MOST_CLAUSES);
        clauses
    }
}

/// The clauses every match of `hir` satisfies, strongest first; empty when nothing is known.
pub(crate) fn required(hir: &Hir) -> Vec<Clause> {
    known(hir).into_clauses()
}

/// Orders clauses strongest first: the longer their shortest string, the rarer a text that
/// holds it, and then the fewer strings the better.
fn strength(clause: &Clause) -> (std::cmp::Reverse<usize>, usize) {
    let shortest = clause.iter().map(Vec::len).min().unwrap_or(0);
    (std::cmp::Reverse(shortest), clause.len())
}

fn known(hir: &Hir) -> Known {
    match hir.kind() {
        // Zero-width: it adds nothing to the strings around it.
        HirKind::Empty | HirKind::Look(_) => Known::exactly(vec![Vec::new()]),
        HirKind::Literal(literal) => Known::exactly(vec![folded(&literal.0)]),
        HirKind::Class(class) => class_members(class).map_or_else(Known::nothing, Known::exactly),
        HirKind::Capture(capture) => known(&capture.sub),
        HirKind::Repetition(repetition) => {
            let sub = known(&repetition.sub);
            match (repetition.min, repetition.max) {
                (1, Some(1)) => sub,
                (0, Some(0)) => Known::exactly(vec![Vec::new()]),
                // `colou?r` is `color` or `colour`.
                (0, Some(1)) => match sub.exact {
                    Some(mut exact) if exact.len() < MOST_EXACT => {
                        exact.push(Vec::new());
                        Known::exactly(exact)
                    }
                    _ => Known::nothing(),
                },
                (0, _) => Known::nothing(),
                // At least once: whatever one repetition needs, the whole needs.
                _ => Known {
                    exact: None,
                    clauses: sub.into_clauses(),
                },
            }
        }
        HirKind::Concat(subs) => concat(subs),
        HirKind::Alternation(subs) => alternation(subs),
    }
}

/// A run of parts that each match exactly some strings matches their products; the run ends
/// at a part that is unknown or where the product would be too large, and what it held
/// becomes a clause.
fn concat(subs: &[Hir]) -> Known {
    let mut clauses = Vec::new();
    let mut run = vec![Vec::new()];
    let mut whole = true;
    for sub in subs {
        let part = known(sub);
        clauses.extend(part.clauses);
        match part.exact {
            Some(exact) if run.len() * exact.len() <= MOST_EXACT => run = product(&run, &exact),
            Some(exact) => {
                whole = false;
                clauses.push(std::mem::replace(&mut run, exact));
            }
            None => {
                whole = false;
                clauses.push(std::mem::replace(&mut run, vec![Vec::new()]));
            }
        }
    }
    if whole {
        return Known {
            exact: Some(run),
            clauses,
        };
    }
    clauses.push(run);
    Known {
        exact: None,
        clauses: Known {
            exact: None,
            clauses,
        }
        .into_clauses(),
    }
}

/// Either branch may match, so a clause of the whole takes one clause of every branch.
fn alternation(subs: &[Hir]) -> Known {
    let parts: Vec<Known> = subs.iter().map(known).collect();
    let exact = parts
        .iter()
        .map(|p| p.exact.clone())
        .collect::<Option<Vec<_>>>()
        .map(|sets| sets.concat())
        .filter(|all| all.len() <= MOST_EXACT);
    if let Some(exact) = exact {
        return Known::exactly(exact);
    }
    let mut clause = Vec::new();
    for part in parts {
        let Some(best) = part.into_clauses().into_iter().next() else {
            return Known::nothing();
        };
        clause.extend(best);
    }
    if clause.len() > MOST_ALTERNATIVES {
        return Known::nothing();
    }
    Known {
        exact: None,
        clauses: vec![clause],
    }
}

fn product(left: &[Vec<u8>], right: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(left.len() * right.len());
    for l in left {
        for r in right {
            out.push([l.as_slice(), r.as_slice()].concat());
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The strings a class matches, if it has few enough once ASCII case is ignored.
fn class_members(class: &Class) -> Option<Vec<Vec<u8>>> {
    let mut members = Vec::new();
    match class {
        Class::Unicode(class) => {
            for range in class.ranges() {
                for c in range.start()..=range.end() {
                    let mut buffer = [0; 4];
                    members.push(folded(c.encode_utf8(&mut buffer).as_bytes()));
                    if members.len() > 2 * MOST_IN_CLASS {
                        return None;
                    }
                }
            }
        }
        Class::Bytes(class) => {
            for range in class.ranges() {
                for b in range.start()..=range.end() {
                    members.push(folded(&[b]));
                    if members.len() > 2 * MOST_IN_CLASS {
                        return None;
                    }
                }
            }
        }
    }
    members.sort_unstable();
    members.dedup();
    (members.len() <= MOST_IN_CLASS).then_some(members)
}

fn folded(bytes: &[u8]) -> Vec<u8> {
    bytes.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clauses(pattern: &str) -> Vec<Vec<String>> {
        let hir = regex_syntax::parse(pattern).expect("valid pattern");
        required(&hir)
            .into_iter()
            .map(|c| {
                c.into_iter()
                    .map(|s| String::from_utf8_lossy(&s).into_owned())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_literal_piece_of_a_match_is_required() {
        assert_eq!(
            clauses(r"(?i)\border\s+#?(?P<n>42\d{2,})"),
            vec![vec!["order"], vec!["42"]]
        );
        assert_eq!(clauses("^STOP$"), vec![vec!["stop"]]);
    }

    #[test]
    fn alternatives_and_optional_letters_are_listed() {
        assert_eq!(
            clauses(r"(?i)\b(refund|money back)\b"),
            vec![vec!["money back", "money bac\u{212A}", "refund"]]
        );
        assert_eq!(clauses("colou?r"), vec![vec!["color", "colour"]]);
    }

    #[test]
    fn unicode_case_variants_are_kept_apart_from_ascii_case() {
        // `(?i)k` also matches the Kelvin sign, which an ASCII-insensitive search would miss.
        assert_eq!(clauses("(?i)ok"), vec![vec!["ok", "o\u{212A}"]]);
        let strasse = clauses("(?i)straße");
        assert_eq!(strasse.len(), 1);
        assert_eq!(
            strasse[0].len(),
            4,
            "s and ß have two forms each: {strasse:?}"
        );
        assert!(strasse[0].contains(&"straße".to_owned()));
    }

    #[test]
    fn nothing_is_claimed_where_a_match_can_lack_it() {
        for pattern in [r"^\d+$", "(?i)(order)?", r"a|\w+", ".*", "x*", ""] {
            assert_eq!(clauses(pattern), Vec::<Vec<String>>::new(), "{pattern}");
        }
    }

    #[test]
    fn a_clause_is_found_in_every_match() {
        let texts = [
            "order 4242",
            "ORDER #4299 please",
            "Kelvin \u{212A}",
            "refund me",
            "MONEY BACK",
            "colour",
            "straße",
            "STRASSE",
        ];
        for pattern in [
            r"(?i)\border\s+#?(?P<n>42\d{2,})",
            "(?i)\u{212A}|refund|money\\s?back",
            "(?i)colou?r|stra(ß|ss)e",
            r"[A-Z]{2}\d+|[0-9]x",
        ] {
            let regex = regex::Regex::new(pattern).expect("valid pattern");
            let hir = regex_syntax::parse(pattern).expect("valid pattern");
            let required = required(&hir);
            for text in texts.iter().filter(|t| regex.is_match(t)) {
                let lower = text.to_ascii_lowercase();
                for clause in &required {
                    assert!(
                        clause
                            .iter()
                            .any(|s| lower.as_bytes().windows(s.len()).any(|w| w == s)),
                        "/{pattern}/ matches {text:?}, which lacks all of {clause:?}"
                    );
                }
            }
        }
    }
}
