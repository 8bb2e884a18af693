//! The module graph, read from the source: the shared vocabulary (`src/vocab`) and the pace
//! (`src/pace.rs`) import no other module of Riposte, so no cycle of imports runs through them;
//! rule compilation stays in `rules`, so `actions` does not depend on the rule files' YAML; and
//! the model caller (`ai`) is outside every cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Each source file's top-level module and text, `lib.rs` and `main.rs` left out.
fn module_sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut out = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        out.push((module, std::fs::read_to_string(&file).unwrap()));
    }
    out
}

/// The top-level modules each top-level module names with `crate::NAME`.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in module_sources() {
        let uses = graph.entry(module.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let name: String = text[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                uses.insert(name);
            }
        }
    }
    graph
}

/// What `module` names of `other`: each item after `crate::OTHER::` (a `{...}` group whole),
/// and `OTHER` itself where the module is named bare (`use crate::OTHER;`).
fn names_of(module: &str, other: &str) -> BTreeSet<String> {
    let path = format!("crate::{other}");
    let mut names = BTreeSet::new();
    for (_, text) in module_sources().iter().filter(|(m, _)| m == module) {
        for (at, _) in text.match_indices(&path) {
            let after = &text[at + path.len()..];
            let Some(rest) = after.strip_prefix("::") else {
                if !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                    names.insert(other.to_owned());
                }
                continue;
            };
            let end = if rest.starts_with('{') {
                rest.find('}').map_or(rest.len(), |e| e + 1)
            } else {
                rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(rest.len())
            };
            names.insert(rest[..end].to_owned());
        }
    }
    names
}

/// The modules reachable from `start`.
fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![start.to_owned()];
    while let Some(module) = todo.pop() {
        for next in graph.get(&module).into_iter().flatten() {
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    seen
}

#[test]
fn the_vocabulary_imports_no_other_module_so_no_cycle_runs_through_it() {
    let graph = module_graph();
    let vocab = graph.get("vocab").expect("src/vocab exists");
    assert!(
        vocab.is_empty(),
        "src/vocab must import no other module of Riposte; it imports {vocab:?}"
    );
    assert!(
        !reachable(&graph, "vocab").contains("vocab"),
        "a cycle runs through the vocabulary"
    );
    // The store and the outbound client know the vocabulary and nothing of the behaviour.
    for (module, allowed) in [
        ("store", &["vocab", "parallel"][..]),
        ("whapi", &["vocab", "quote"][..]),
    ] {
        let extra: Vec<&String> = graph[module]
            .iter()
            .filter(|m| !allowed.contains(&m.as_str()))
            .collect();
        assert!(extra.is_empty(), "`{module}` imports {extra:?}");
    }
    // The vocabulary is used where data crosses layers.
    for user in [
        "actions", "ai", "delivery", "intake", "store", "whapi", "engine",
    ] {
        assert!(
            graph[user].contains("vocab"),
            "`{user}` does not use the vocabulary: {:?}",
            graph[user]
        );
    }
}

/// `serve` and `riposte test` get their workers from `workers`, so the two cannot drift.
#[test]
fn the_workers_are_put_together_in_one_place() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    for file in files {
        if file.ends_with("workers.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for worker in ["Intake {", "Delivery {", "Scheduler {"] {
            let built = text.lines().any(|line| {
                let line = line.trim();
                line.ends_with(worker) && !line.contains("struct ") && !line.starts_with("impl")
            });
            assert!(
                !built,
                "{} builds a worker itself (`{worker}`); use `workers::Workers`",
                file.display()
            );
        }
    }
}

#[test]
fn actions_keep_the_compiled_forms_and_rules_compile_them() {
    let graph = module_graph();
    let actions = &graph["actions"];
    for raw in ["config", "campaigns", "duration"] {
        assert!(
            !actions.contains(raw),
            "`actions` imports `{raw}`: compiling belongs in `rules::compile`; it imports {actions:?}"
        );
    }
    // Rendering checks a webhook host against the allow-list, a list of `rules::Glob`; nothing
    // else of `rules` (its compiler least of all) is used by actions.
    assert_eq!(
        names_of("actions", "rules"),
        BTreeSet::from(["Glob".to_owned()]),
        "`actions` uses more of `rules` than `Glob`"
    );
}

#[test]
fn the_pace_imports_nothing_and_the_model_caller_is_outside_every_cycle() {
    let graph = module_graph();
    let pace = graph.get("pace").expect("src/pace.rs exists");
    assert!(
        pace.is_empty(),
        "src/pace.rs must import no other module of Riposte; it imports {pace:?}"
    );
    for user in ["delivery", "ai"] {
        assert!(
            graph[user].contains("pace"),
            "`{user}` does not use the pace: {:?}",
            graph[user]
        );
    }
    let ai = &graph["ai"];
    assert!(
        !ai.contains("delivery"),
        "`ai` imports `delivery`, which calls it; it imports {ai:?}"
    );
    assert!(
        !reachable(&graph, "ai").contains("ai"),
        "a cycle runs through `ai`"
    );
}
