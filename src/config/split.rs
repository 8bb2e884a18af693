//! Cuts a rule file into the text of each rule and the rest, so a reload can read only the
//! rules that changed and read the others on both cores.
//!
//! The cut is made on lines, for the layout rule authors write: a top-level `rules:` key whose
//! entries start with `- ` at one indentation. Any other layout (flow lists, document markers,
//! directives, tabs, a second `rules:` key) gives `None`, and the file is read whole. A cut is
//! only a guess until each piece parses on its own: a cut inside a quoted string or a bracket
//! leaves that piece unterminated, and an alias to another piece's anchor is unknown in the
//! piece, so either fails and the caller reads the whole file instead.

/// One rule's lines, verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleText<'a> {
    /// The 1-based line of the file the text starts on.
    pub line: u32,
    pub text: &'a str,
}

/// A rule file cut into its rules and the rest.
#[derive(Debug, PartialEq, Eq)]
pub struct Pieces<'a> {
    /// The file with the `rules:` key and every rule blanked out, line for line, so what is
    /// left (calendars, campaigns) keeps its positions.
    pub rest: String,
    pub rules: Vec<RuleText<'a>>,
}

/// The file's rules and the rest, when its layout allows cutting it on lines.
pub fn split(text: &str) -> Option<Pieces<'_>> {
    if text.contains('\t') || text.starts_with('\u{feff}') {
        return None;
    }
    let lines = line_spans(text);
    let mut rest = String::with_capacity(text.len() / 8);
    let mut rules = Vec::new();
    let mut seen_rules_key = false;
    let mut i = 0;
    while i < lines.len() {
        let line = &text[lines[i].clone()];
        let content = line.trim_end_matches(['\n', '\r']);
        if content.starts_with("---") || content.starts_with("...") || content.starts_with('%') {
            return None;
        }
        if !is_rules_key(content) {
            if content.starts_with("rules") {
                // `rules: [...]` and the like: not a layout this cuts.
                return None;
            }
            rest.push_str(line);
            i += 1;
            continue;
        }
        if seen_rules_key {
            return None;
        }
        seen_rules_key = true;
        rest.push('\n');
        i += 1;
        let (end, found) = rule_items(text, &lines, i)?;
        for (start, stop) in found {
            rules.push(RuleText {
                line: u32::try_from(start + 1).ok()?,
                text: &text[lines[start].start..lines[stop - 1].end],
            });
        }
        rest.extend(std::iter::repeat_n('\n', end - i));
        i = end;
    }
    Some(Pieces { rest, rules })
}

/// The byte range of every line, with its line break.
fn line_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut start = 0;
    for (at, _) in text.match_indices('\n') {
        spans.push(start..at + 1);
        start = at + 1;
    }
    if start < text.len() {
        spans.push(start..text.len());
    }
    spans
}

/// `rules:` at the start of a line, with nothing but a comment after it.
fn is_rules_key(content: &str) -> bool {
    content.strip_prefix("rules:").is_some_and(|after| {
        let after = after.trim_start();
        after.is_empty() || after.starts_with('#')
    })
}

fn indent(content: &str) -> usize {
    content.len() - content.trim_start_matches(' ').len()
}

/// Blank and comment-only lines belong to whichever rule they follow.
fn is_filler(content: &str) -> bool {
    let trimmed = content.trim();
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// The entries of the `rules:` list starting at line `first`: where the list ends and each
/// entry's line range. `None` when a line does not fit the layout.
fn rule_items(
    text: &str,
    lines: &[std::ops::Range<usize>],
    first: usize,
) -> Option<(usize, Vec<(usize, usize)>)> {
    let content = |i: usize| text[lines[i].clone()].trim_end_matches(['\n', '\r']);
    let mut items: Vec<(usize, usize)> = Vec::new();
    let mut entry_indent = None;
    let mut i = first;
    while i < lines.len() {
        let line = content(i);
        if is_filler(line) {
            i += 1;
            continue;
        }
        let depth = indent(line);
        let body = &line[depth..];
        let starts_entry = body == "-" || body.starts_with("- ");
        let expected = *entry_indent.get_or_insert(depth);
        if depth == expected && starts_entry {
            if let Some(last) = items.last_mut() {
                last.1 = i;
            }
            items.push((i, i + 1));
        } else if depth > expected && !items.is_empty() {
            // A line of the current entry.
        } else if depth == 0 {
            // The next top-level key: the list ended on the last line of its last entry.
            break;
        } else {
            return None;
        }
        i += 1;
    }
    // An empty `rules:` is whatever the YAML reader makes of it.
    let last = items.last_mut()?;
    last.1 = i;
    Some((i, items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_each_rule_and_keeps_the_rest_in_place() {
        let text = "calendars:\n  - name: office\nrules:\n  - name: a\n    when: {text: hi}\n\n  # note\n  - name: b\n    then:\n      - reply: |\n          - not an entry\ncampaigns: []\n";
        let pieces = split(text).expect("cut");
        assert_eq!(
            pieces.rules,
            vec![
                RuleText {
                    line: 4,
                    text: "  - name: a\n    when: {text: hi}\n\n  # note\n"
                },
                RuleText {
                    line: 8,
                    text: "  - name: b\n    then:\n      - reply: |\n          - not an entry\n"
                },
            ]
        );
        assert_eq!(
            pieces.rest,
            "calendars:\n  - name: office\n\n\n\n\n\n\n\n\n\ncampaigns: []\n"
        );
        assert_eq!(pieces.rest.lines().count(), text.lines().count());
    }

    #[test]
    fn entries_may_start_in_the_first_column() {
        let pieces = split("rules:\n- name: a\n  then: []\n- name: b\n").expect("cut");
        assert_eq!(pieces.rules.len(), 2);
        assert_eq!(pieces.rules[1].text, "- name: b\n");
        assert_eq!(pieces.rest, "\n\n\n\n");
    }

    #[test]
    fn layouts_it_cannot_cut_are_read_whole() {
        for text in [
            "rules: [{name: a}]\n",
            "rules:\n  - name: a\nrules:\n  - name: b\n",
            "---\nrules:\n  - name: a\n",
            "rules:\n\t- name: a\n",
            "rules:\n    - name: a\n  - name: b\n",
            "%YAML 1.2\nrules:\n  - name: a\n",
            "rules:\ncampaigns: []\n",
        ] {
            assert_eq!(split(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_file_without_rules_is_all_rest() {
        let pieces = split("campaigns: []\n").expect("cut");
        assert!(pieces.rules.is_empty());
        assert_eq!(pieces.rest, "campaigns: []\n");
    }
}
