//! `text:` regexes gated by the literals they require (see [`super::literals`]): one
//! Aho-Corasick pass finds which literals of any rule a text holds, and a gate opens only when
//! every one of its clauses has a literal in the text. Unlike a lazy DFA over the patterns,
//! whose every state names the patterns still alive, the pass costs about the same for ten
//! rules as for ten thousand; what a gate opens (for the prefilter, the automaton of the
//! pattern's chunk) then tells exactly which patterns match.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use aho_corasick::AhoCorasick;

use super::literals::Clause;
use super::reuse::Reuse;

/// Automata of the last compile, by a hash of their literals.
static LITERALS: LazyLock<Reuse<[u8; 32], Arc<AhoCorasick>>> = LazyLock::new(Reuse::new);

/// The literal gates of a rule set.
#[derive(Debug)]
pub(super) struct LiteralGates {
    /// Pattern `i` is literal `i`; ASCII case is ignored, as the clauses' lower case assumes.
    matcher: Arc<AhoCorasick>,
    /// By literal: the gates whose leading clause holds it.
    by_literal: Vec<Vec<u32>>,
    gates: Vec<Gate>,
}

/// One pattern's clauses, as literal numbers, and what the gate opens.
#[derive(Debug)]
struct Gate {
    opens: usize,
    clauses: Vec<Vec<u32>>,
}

impl LiteralGates {
    /// Gates for `(opens, clauses)` pairs, each with at least one clause.
    pub(super) fn new(gated: &[(usize, &[Clause])]) -> Result<Self, String> {
        let mut numbers: HashMap<&[u8], u32> = HashMap::new();
        let mut literals: Vec<&[u8]> = Vec::new();
        let mut gates = Vec::with_capacity(gated.len());
        for (opens, clauses) in gated {
            let clauses = clauses
                .iter()
                .map(|clause| {
                    clause
                        .iter()
                        .map(|literal| {
                            *numbers.entry(literal).or_insert_with(|| {
                                literals.push(literal);
                                literals.len() as u32 - 1
                            })
                        })
                        .collect()
                })
                .collect();
            gates.push(Gate {
                opens: *opens,
                clauses,
            });
        }
        let matcher = super::prefilter::reused_automaton(&LITERALS, &literals, |literals| {
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(literals)
        })?;
        LITERALS.rotate();
        let by_literal = index(&gates, &literals);
        Ok(Self {
            matcher,
            by_literal,
            gates,
        })
    }

    /// Adds what the gates open whose every clause has a literal in `text`, each once.
    pub(super) fn matching(&self, text: &str, out: &mut Vec<usize>) {
        let mut found: Vec<u32> = self
            .matcher
            .find_overlapping_iter(text)
            .map(|m| m.pattern().as_u32())
            .collect();
        if found.is_empty() {
            return;
        }
        found.sort_unstable();
        found.dedup();
        let holds = |clause: &Vec<u32>| clause.iter().any(|l| found.binary_search(l).is_ok());
        for &literal in &found {
            for &gate in &self.by_literal[literal as usize] {
                let gate = &self.gates[gate as usize];
                // Many gates open the same chunk; one that is open needs no second look.
                if !out.contains(&gate.opens) && gate.clauses.iter().all(holds) {
                    out.push(gate.opens);
                }
            }
        }
    }
}

/// Lists each gate under the literals of its leading clause: the clause whose literals the
/// fewest gates share, and short ones count as shared more (a text holds `4` far more often
/// than `order`), so a literal found in a text leads to few gates to check.
fn index(gates: &[Gate], literals: &[&[u8]]) -> Vec<Vec<u32>> {
    let mut shared = vec![0u64; literals.len()];
    for gate in gates {
        let mut seen: Vec<u32> = gate.clauses.iter().flatten().copied().collect();
        seen.sort_unstable();
        seen.dedup();
        for literal in seen {
            shared[literal as usize] += 1;
        }
    }
    let cost = |clause: &Vec<u32>| -> u64 {
        clause
            .iter()
            .map(|&l| shared[l as usize] << (2 * 4usize.saturating_sub(literals[l as usize].len())))
            .sum()
    };
    let mut by_literal = vec![Vec::new(); literals.len()];
    for (number, gate) in gates.iter().enumerate() {
        if let Some(lead) = gate.clauses.iter().min_by_key(|c| cost(c)) {
            for &literal in lead {
                by_literal[literal as usize].push(number as u32);
            }
        }
    }
    by_literal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(strings: &[&str]) -> Clause {
        strings.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn matching(gates: &LiteralGates, text: &str) -> Vec<usize> {
        let mut out = Vec::new();
        gates.matching(text, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    #[test]
    fn a_rule_is_a_candidate_when_each_of_its_clauses_is_in_the_text() {
        let order = [clause(&["order"]), clause(&["42"])];
        let refund = [clause(&["money back", "refund"])];
        let stop = [clause(&["stop"])];
        let gates = LiteralGates::new(&[(0, &order[..]), (3, &refund[..]), (7, &stop[..])])
            .expect("builds");
        assert_eq!(matching(&gates, "Where is ORDER 4242?"), vec![0]);
        assert_eq!(matching(&gates, "order 99, and 42 more"), vec![0]);
        assert_eq!(matching(&gates, "order 17"), Vec::<usize>::new());
        assert_eq!(matching(&gates, "Refund, or Money Back. STOP"), vec![3, 7]);
        assert_eq!(matching(&gates, ""), Vec::<usize>::new());
    }

    #[test]
    fn the_leading_clause_is_the_one_fewest_rules_share() {
        let clauses: Vec<[Clause; 2]> = (0..50)
            .map(|i| [clause(&["order"]), clause(&[&(i + 10).to_string()])])
            .collect();
        let gated: Vec<(usize, &[Clause])> = clauses
            .iter()
            .enumerate()
            .map(|(rule, c)| (rule, &c[..]))
            .collect();
        let gates = LiteralGates::new(&gated).expect("builds");
        let order = gates.matcher.find("order").expect("a literal").pattern();
        assert!(
            gates.by_literal[order.as_usize()].is_empty(),
            "every rule shares `order`, so none is listed under it"
        );
        assert_eq!(matching(&gates, "order 17"), vec![7]);
        assert_eq!(matching(&gates, "Order 1742"), vec![7, 32]);
        assert_eq!(matching(&gates, "1742"), Vec::<usize>::new());
    }
}
