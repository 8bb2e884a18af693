//! Reading a rule file that does not read as a whole one entry at a time, so that a mistake in
//! one rule hides nothing in the others.

use serde::de::DeserializeOwned;

use super::outline::{Kind, Node, Place, root_map};
use super::{Located, RuleFile, RuleSpec, SourceFile, parse_text, split};
use crate::rules::Diagnostic;

/// The top-level keys of a rule file whose lists are read entry by entry.
const LISTS: [&str; 3] = ["rules", "campaigns", "calendars"];

/// Reads `source`, whose whole read failed with `first`, entry by entry: every entry that
/// reads, and every entry's error.
pub(super) fn read_each(source: &SourceFile, first: Diagnostic) -> (RuleFile, Vec<Diagnostic>) {
    let Some(root) = root_map(&source.text) else {
        return read_cut(source, first);
    };
    let mut file = RuleFile::default();
    let mut errors = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in &root {
        let Kind::Scalar(name) = &key.kind else {
            errors.push(Diagnostic::error(
                &source.path,
                key.place.line,
                key.place.column + 1,
                "a key of the file must be a plain name such as `rules`",
            ));
            continue;
        };
        if seen.contains(&name.as_str()) {
            errors.push(Diagnostic::error(
                &source.path,
                key.place.line,
                key.place.column + 1,
                format!("`{name}` appears twice at the top of the file; keep one"),
            ));
            continue;
        }
        seen.push(name);
        match (&value.kind, LISTS.contains(&name.as_str())) {
            (Kind::List(items), true) => {
                for item in items.iter().filter(|i| !i.uses_alias) {
                    read_entry(source, name, item, &mut file, &mut errors);
                }
            }
            _ if value.uses_alias => {}
            _ => {
                // Anything else is read as a file of that one key, which reports unknown keys
                // and wrong shapes as the whole file would.
                let place = Node::entry_place(key, value);
                match parse_text::<RuleFile>(source, &place.text_alone(&source.text)) {
                    Ok(part) => merge(&mut file, part),
                    Err(error) => errors.push(error),
                }
            }
        }
    }
    if errors.is_empty() {
        // Only the file as a whole shows this mistake (an alias, say).
        errors.push(first);
    }
    errors.dedup();
    (file, errors)
}

/// Reads a file whose YAML does not read (a syntax mistake) rule by rule, cut on its lines
/// (see [`split`]), so a mistake in one rule still hides none in the others. A mistake outside
/// the rules, or a layout the cut does not know, stops the file, and the error says so.
fn read_cut(source: &SourceFile, first: Diagnostic) -> (RuleFile, Vec<Diagnostic>) {
    let Some(pieces) = split(&source.text) else {
        return (RuleFile::default(), vec![stops(first)]);
    };
    let mut errors = Vec::new();
    let rest = SourceFile {
        text: pieces.rest,
        ..source.clone()
    };
    let mut file = super::parse(&rest).unwrap_or_else(|error| {
        errors.push(if root_map(&rest.text).is_none() {
            stops(error)
        } else {
            error
        });
        RuleFile::default()
    });
    for rule in &pieces.rules {
        let mut text = "\n".repeat(rule.line.saturating_sub(1) as usize);
        text.push_str(rule.text);
        match parse_text::<Vec<Located<RuleSpec>>>(source, &text) {
            Ok(rules) => file.rules.extend(rules),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        errors.push(stops(first));
    }
    errors.sort_by_key(|e| (e.line, e.column));
    (file, errors)
}

/// A syntax mistake's error, saying that it hides the rest of the file.
fn stops(mut error: Diagnostic) -> Diagnostic {
    error.message.push_str(
        " (the file cannot be read past this mistake: fix it to see any others in this file)",
    );
    error
}

/// Reads one entry of the list `name` into `file`, or its error into `errors`.
fn read_entry(
    source: &SourceFile,
    name: &str,
    item: &Node,
    file: &mut RuleFile,
    errors: &mut Vec<Diagnostic>,
) {
    let place = item.place;
    let result = match name {
        "rules" => entry(source, place).map(|r| file.rules.push(r)),
        "campaigns" => entry(source, place).map(|c| file.campaigns.push(c)),
        _ => entry(source, place).map(|c| file.calendars.push(c)),
    };
    if let Err(error) = result {
        errors.push(error);
    }
}

fn entry<T: DeserializeOwned>(source: &SourceFile, place: Place) -> Result<Located<T>, Diagnostic> {
    parse_text(source, &place.text_alone(&source.text))
}

fn merge(file: &mut RuleFile, part: RuleFile) {
    file.rules.extend(part.rules);
    file.campaigns.extend(part.campaigns);
    file.calendars.extend(part.calendars);
    file.events.extend(part.events);
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::read;
    use super::*;

    fn source(text: &str) -> SourceFile {
        SourceFile {
            path: PathBuf::from("r.yaml"),
            text: text.to_owned(),
            root: None,
        }
    }

    fn report(text: &str) -> (usize, Vec<String>) {
        let (file, errors) = read(&source(text));
        let lines = errors
            .iter()
            .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
            .collect();
        (
            file.rules.len() + file.campaigns.len() + file.calendars.len(),
            lines,
        )
    }

    #[test]
    fn every_entry_with_a_mistake_is_reported_and_the_others_are_kept() {
        let text = "rules:\n  - name: a\n    when: {txt: hi}\n    then: [{reply: x}]\n  - name: b\n    stop: yes\n    then: [{reply: y}]\n  - name: ok\n    then: [{reply: z}]\n  - name: c\n    then: [{replly: y}]\ncampaigns:\n  - name: k\n    schedul: \"0 9 * * *\"\ncalendars: [{name: shop, open: [{days: Mon-Fri, between: \"09:00-18:00\"}]}]\n";
        let (kept, errors) = report(text);
        assert_eq!(kept, 2, "{errors:?}");
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(
            errors[0].starts_with("3:12: unknown field `txt`"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("6:11: expected `true` or `false`"),
            "{errors:?}"
        );
        assert!(
            errors[2].starts_with("11:13: unknown field `replly`"),
            "{errors:?}"
        );
        assert!(
            errors[3].starts_with("14:5: unknown field `schedul`"),
            "{errors:?}"
        );
    }

    #[test]
    fn unknown_and_repeated_top_level_keys_are_reported_beside_the_rest() {
        let text = "rule:\n  - name: a\nrules:\n  - name: b\n    stop: nope\ncampaigns: []\ncampaigns: []\n";
        let (_, errors) = report(text);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("unknown field `rule`, did you mean `rules`?"));
        assert!(errors[1].starts_with("5:11: "), "{errors:?}");
        assert!(
            errors[2].contains("`campaigns` appears twice"),
            "{errors:?}"
        );
    }

    #[test]
    fn syntax_mistakes_in_several_rules_are_each_reported() {
        let text = "rules:\n  - name: a\n    when: {text: hi\n  - name: b\n    when:\n      text: (?i)order: (\\d+)\n  - name: c\n    stop: nope\n  - name: d\n";
        let (kept, errors) = report(text);
        assert_eq!(kept, 1, "{errors:?}");
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].starts_with("3:11: the `{` opened here is not closed"),
            "{errors:?}"
        );
        assert!(
            errors[1].contains("put the value in single quotes"),
            "{errors:?}"
        );
        assert!(errors[2].starts_with("8:11: "), "{errors:?}");
    }

    #[test]
    fn a_syntax_mistake_outside_the_rules_stops_the_file_and_says_so() {
        let (_, errors) = report("campaigns: [\nrules:\n  - name: a\n");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("cannot be read past this mistake"),
            "{errors:?}"
        );
        let (_, errors) = report("rules: [{name: a, when: {text: hi}]\n");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("cannot be read past this mistake"),
            "{errors:?}"
        );
    }
}
