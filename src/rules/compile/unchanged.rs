//! Reading rule files for a compile, keeping what did not change since the last one.
//!
//! A reload after saving one rule of ten thousand should cost about one rule. Each file is cut
//! into its rules' texts (see [`config::split`]); a rule whose text, file and surroundings
//! (the calendars of every file, the default zone) are as they were in the set being replaced
//! is taken from it as compiled, and only the other texts are read, a batch at a time on every
//! core, each batch compiled before the next is read so a large set never has every rule in
//! its parsed form at once. A file that cannot be cut, or one of whose pieces does not read on
//! its own, is read whole, as without the cut, so its errors are reported exactly the same.

use std::sync::Arc;

use chrono_tz::Tz;
use sha2::{Digest, Sha256};

use super::super::{Rule, RuleSet};
use crate::actions::Action;
use crate::config::{self, Located, RuleFile, RuleSpec, RuleText, SourceFile};
use crate::rules::Diagnostic;

/// A rule's text, its file and its surroundings, hashed.
pub(crate) type RuleKey = [u8; 16];

/// What a compiled set remembers of a rule so the next compile can take it unchanged.
#[derive(Debug, Clone)]
pub(crate) struct KeptRule {
    /// Where the rule is in the set's rules.
    pub(crate) index: usize,
    /// The rule's line and its name's line and column, from the first line of its text.
    pub(crate) line_in_text: u32,
    pub(crate) name_at: (u32, u32),
    /// The templates its actions and conditions render.
    pub(crate) templates: Arc<[Arc<str>]>,
}

/// One `rules:` entry of a file, as the compile meets it.
pub(super) enum Entry<'a> {
    /// Read with its file, to be compiled.
    Read(Box<Located<RuleSpec>>),
    /// Cut out of its file, to be read (see [`read_texts`]) and compiled.
    Text(RuleKey, RuleText<'a>),
    /// Taken from the earlier set.
    Kept(Kept),
}

/// A rule taken from the earlier set: its key, the first line of its text now, the rule, and
/// what the earlier set kept of it.
pub(super) struct Kept {
    pub(super) key: RuleKey,
    pub(super) line: u32,
    pub(super) rule: Arc<Rule>,
    pub(super) note: KeptRule,
}

/// A file read for the compile: its calendars and campaigns, and its rules.
pub(super) struct ReadFile<'a> {
    pub(super) file: &'a SourceFile,
    pub(super) rest: RuleFile,
    pub(super) rules: Vec<Entry<'a>>,
}

/// Reads `files`, taking the rules `previous` has compiled from the same texts and cutting
/// out the texts of the others; files marked `whole` are read whole.
pub(super) fn read<'a>(
    files: &'a [SourceFile],
    zone: Tz,
    previous: Option<&RuleSet>,
    whole: &[bool],
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<ReadFile<'a>> {
    let mut read: Vec<(ReadFile<'a>, Vec<RuleText<'a>>)> = files
        .iter()
        .zip(whole)
        .map(|(file, &whole)| {
            let cut = (!whole)
                .then(|| config::split(&file.text))
                .flatten()
                .filter(|p| !p.rules.is_empty());
            let rest = cut.as_ref().and_then(|p| {
                let rest = SourceFile {
                    path: file.path.clone(),
                    text: p.rest.clone(),
                    root: file.root.clone(),
                };
                // Rules left in the rest were written in a way the cut did not see.
                config::parse(&rest).ok().filter(|r| r.rules.is_empty())
            });
            match (cut, rest) {
                (Some(pieces), Some(rest)) => (
                    ReadFile {
                        file,
                        rest,
                        rules: Vec::new(),
                    },
                    pieces.rules,
                ),
                _ => (read_whole(file, diagnostics), Vec::new()),
            }
        })
        .collect();
    let context = context(&read, zone);
    for (file, texts) in &mut read {
        file.rules.reserve_exact(texts.len());
        for text in texts.drain(..) {
            let key = rule_key(&context, file.file, text.text);
            let entry = previous.and_then(|set| kept(set, key, text.line));
            file.rules.push(entry.unwrap_or(Entry::Text(key, text)));
        }
    }
    read.into_iter().map(|(file, _)| file).collect()
}

/// The rule `set` compiled from the text with `key`, to be placed at `line`.
fn kept<'a>(set: &RuleSet, key: RuleKey, line: u32) -> Option<Entry<'a>> {
    let kept = set.kept.get(&key)?;
    Some(Entry::Kept(Kept {
        key,
        line,
        rule: set.rules.get(kept.index)?.clone(),
        note: kept.clone(),
    }))
}

/// Whether the next compile may take this rule as compiled: not if it reads other files
/// (an `ai_reply`'s knowledge), which may have changed while its text did not.
pub(super) fn can_keep(rule: &Rule) -> bool {
    !rule
        .actions
        .iter()
        .any(|step| matches!(step.action, Action::AiReply(_)))
}

fn read_whole<'a>(file: &'a SourceFile, diagnostics: &mut Vec<Diagnostic>) -> ReadFile<'a> {
    let (mut rest, errors) = config::read(file);
    diagnostics.extend(errors);
    let rules = std::mem::take(&mut rest.rules)
        .into_iter()
        .map(|spec| Entry::Read(Box::new(spec)))
        .collect();
    ReadFile { file, rest, rules }
}

/// Reads rule texts on every core; `None` for a text that does not read on its own.
pub(super) fn read_texts(texts: &[RuleText<'_>]) -> Vec<Option<Located<RuleSpec>>> {
    // Below a hundred rules a thread costs more than it saves.
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(texts.len() / 128)
        .max(1);
    if threads == 1 {
        return texts.iter().map(|t| config::parse_rule(*t)).collect();
    }
    let share = texts.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = texts
            .chunks(share)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|t| config::parse_rule(*t))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    })
}

/// What every rule's compile depends on besides its own text: the default zone, the calendars
/// (looked up by name from any file) and the declared events. Campaigns, comments and the like are not.
fn context(read: &[(ReadFile<'_>, Vec<RuleText<'_>>)], zone: Tz) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(zone.name().as_bytes());
    let with_context = |f: &ReadFile<'_>| !f.rest.calendars.is_empty() || !f.rest.events.is_empty();
    for (file, _) in read.iter().filter(|(f, _)| with_context(f)) {
        let lines = super::Lines::new(&file.file.text);
        for calendar in &file.rest.calendars {
            // The calendar's text, wherever it moved to.
            let text = super::fingerprint(&lines, calendar.line, calendar.column);
            hash.update(text.to_le_bytes());
        }
        for (name, event) in &file.rest.events {
            hash.update(name.as_bytes());
            let text = super::fingerprint(&lines, event.line, event.column);
            hash.update(text.to_le_bytes());
        }
    }
    hash.finalize().into()
}

fn rule_key(context: &[u8; 32], file: &SourceFile, text: &str) -> RuleKey {
    let mut hash = Sha256::new();
    hash.update(context);
    hash.update(file.path.to_string_lossy().as_bytes());
    hash.update([0]);
    hash.update(text.as_bytes());
    let digest = hash.finalize();
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}
