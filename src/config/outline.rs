//! Where each top-level key of a YAML file and each entry of its lists lie, read from the YAML
//! events alone (no types), so that a file which does not read as a whole can be read entry by
//! entry and every entry's mistakes reported in one run.

use serde_saphyr::granit_parser::{Event, Parser, Span, StructureStyle};

/// Where a node's text lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Place {
    /// Byte range in the file.
    pub(super) start: usize,
    pub(super) end: usize,
    /// 1-based line and 0-based column of `start`.
    pub(super) line: u32,
    pub(super) column: u32,
}

impl Place {
    /// The node's text alone, preceded by blank lines and spaces so that every position in
    /// it is the one it has in the file: errors read from it point into the file.
    pub(super) fn text_alone(&self, file: &str) -> String {
        let body = &file[self.start..self.end];
        let lines = self.line.saturating_sub(1) as usize;
        let mut text = String::with_capacity(lines + self.column as usize + body.len());
        text.extend(std::iter::repeat_n('\n', lines));
        text.extend(std::iter::repeat_n(' ', self.column as usize));
        text.push_str(body);
        text
    }

    /// From the start of `self` to the end of `other`.
    fn to(self, other: Self) -> Self {
        Self {
            end: other.end.max(self.end),
            ..self
        }
    }
}

/// A YAML node: where it is, what it holds, and whether it refers to an anchor (then it
/// cannot be read apart from the rest of the file).
#[derive(Debug)]
pub(super) struct Node {
    pub(super) place: Place,
    pub(super) kind: Kind,
    pub(super) uses_alias: bool,
}

/// What a node holds.
#[derive(Debug)]
pub(super) enum Kind {
    Scalar(String),
    List(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Alias,
}

impl Node {
    /// For a map entry: from the start of its key to the end of its value.
    pub(super) fn entry_place(key: &Self, value: &Self) -> Place {
        key.place.to(value.place)
    }
}

/// The root map of a one-document file, or `None` when the YAML itself does not read (a
/// syntax mistake) or the root is not a map.
pub(super) fn root_map(text: &str) -> Option<Vec<(Node, Node)>> {
    let mut events = Events {
        parser: Parser::new_from_str(text),
    };
    loop {
        let (event, span) = events.next()?;
        match event {
            Event::StreamStart | Event::DocumentStart(..) => {}
            Event::MappingStart(style, ..) => {
                let Kind::Map(entries) = events.map(style, span)?.kind else {
                    return None;
                };
                // A second document would be read by nobody: not an outline this serves.
                return match (events.next()?, events.next()?) {
                    ((Event::DocumentEnd, _), (Event::StreamEnd, _)) => Some(entries),
                    _ => None,
                };
            }
            _ => return None,
        }
    }
}

struct Events<'a> {
    parser: Parser<'a, serde_saphyr::granit_parser::StrInput<'a>>,
}

impl<'a> Events<'a> {
    /// The next event that is part of the data (comments and anchor names are skipped);
    /// `None` on a syntax error or at the end.
    fn next(&mut self) -> Option<(Event<'a>, Span)> {
        loop {
            let (event, span) = self.parser.next()?.ok()?;
            if matches!(
                event,
                Event::StreamStart
                    | Event::StreamEnd
                    | Event::DocumentStart(..)
                    | Event::DocumentEnd
                    | Event::Alias(..)
                    | Event::UnresolvedAlias(..)
                    | Event::Scalar(..)
                    | Event::SequenceStart(..)
                    | Event::SequenceEnd
                    | Event::MappingStart(..)
                    | Event::MappingEnd
            ) {
                return Some((event, span));
            }
        }
    }

    /// The node starting with `event`.
    fn node(&mut self, event: Event<'a>, span: Span) -> Option<Node> {
        match event {
            Event::Scalar(value, ..) => Some(Node {
                place: place(span, end_of(span)?)?,
                kind: Kind::Scalar(value.into_owned()),
                uses_alias: false,
            }),
            Event::Alias(_) | Event::UnresolvedAlias(_) => Some(Node {
                place: place(span, end_of(span)?)?,
                kind: Kind::Alias,
                uses_alias: true,
            }),
            Event::SequenceStart(style, ..) => self.list(style, span),
            Event::MappingStart(style, ..) => self.map(style, span),
            _ => None,
        }
    }

    fn list(&mut self, style: StructureStyle, start: Span) -> Option<Node> {
        let mut items = Vec::new();
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::SequenceEnd) {
                let uses_alias = items.iter().any(|n: &Node| n.uses_alias);
                return Some(Node {
                    place: place(start, close(style, span)?)?,
                    kind: Kind::List(items),
                    uses_alias,
                });
            }
            items.push(self.node(event, span)?);
        }
    }

    fn map(&mut self, style: StructureStyle, start: Span) -> Option<Node> {
        let mut entries = Vec::new();
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                let uses_alias = entries
                    .iter()
                    .any(|(k, v): &(Node, Node)| k.uses_alias || v.uses_alias);
                return Some(Node {
                    place: place(start, close(style, span)?)?,
                    kind: Kind::Map(entries),
                    uses_alias,
                });
            }
            let key = self.node(event, span)?;
            let (event, span) = self.next()?;
            let value = self.node(event, span)?;
            entries.push((key, value));
        }
    }
}

fn end_of(span: Span) -> Option<usize> {
    span.end.byte_offset()
}

/// Where a list or map ends: a flow one with its closing bracket, a block one where the next
/// token begins (its end event stands there).
fn close(style: StructureStyle, end: Span) -> Option<usize> {
    match style {
        StructureStyle::Flow => end.end.byte_offset(),
        StructureStyle::Block => end.start.byte_offset(),
    }
}

fn place(start: Span, end: usize) -> Option<Place> {
    let at = start.start.byte_offset()?;
    Some(Place {
        start: at,
        end: end.max(at),
        line: u32::try_from(start.start.line()).ok()?,
        column: u32::try_from(start.start.col()).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<(String, Vec<String>)> {
        root_map(text)
            .expect("outline")
            .into_iter()
            .map(|(key, value)| {
                let Kind::Scalar(name) = key.kind else {
                    panic!("key")
                };
                let items = match value.kind {
                    Kind::List(items) => items
                        .iter()
                        .map(|i| text[i.place.start..i.place.end].trim_end().to_owned())
                        .collect(),
                    _ => vec![text[value.place.start..value.place.end].to_owned()],
                };
                (name, items)
            })
            .collect()
    }

    #[test]
    fn finds_each_entry_of_block_and_flow_lists() {
        let text = "rules:\n  - name: a\n    when: {text: hi}\n\n  # note\n  - name: b\n    then: []\ncampaigns: [{name: c}, {name: d}]\ncalendars: x\n";
        assert_eq!(
            keys(text),
            vec![
                (
                    "rules".to_owned(),
                    vec![
                        "name: a\n    when: {text: hi}\n\n  # note".to_owned(),
                        "name: b\n    then: []".to_owned()
                    ]
                ),
                (
                    "campaigns".to_owned(),
                    vec!["{name: c}".to_owned(), "{name: d}".to_owned()]
                ),
                ("calendars".to_owned(), vec!["x".to_owned()]),
            ]
        );
    }

    #[test]
    fn an_entry_read_alone_keeps_its_positions() {
        let text = "rules:\n  - name: a\n    when: {text: hi}\n";
        let map = root_map(text).expect("outline");
        let Kind::List(items) = &map[0].1.kind else {
            panic!("list")
        };
        assert_eq!(
            items[0].place.text_alone(text),
            "\n    name: a\n    when: {text: hi}\n"
        );
    }

    #[test]
    fn syntax_mistakes_and_other_roots_give_no_outline() {
        for text in [
            "rules:\n\t- name: a\n",
            "- a\n- b\n",
            "a: 1\n---\nb: 2\n",
            "rules: [\n",
        ] {
            assert!(root_map(text).is_none(), "{text:?}");
        }
    }

    #[test]
    fn aliases_are_noticed() {
        let text = "x: &a {y: 1}\nrules:\n  - *a\n  - name: b\n";
        let map = root_map(text).expect("outline");
        let Kind::List(items) = &map[1].1.kind else {
            panic!("list")
        };
        assert!(items[0].uses_alias);
        assert!(!items[1].uses_alias);
    }
}
