//! The YAML examples in the documentation compile (or fail, where the text says they do), and
//! so does every rule file shipped in `rules/` and `examples/`.

use std::path::{Path, PathBuf};

use riposte::config::SourceFile;

fn yaml_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in markdown.lines().enumerate() {
        match (&mut current, line.trim_start()) {
            (None, "```yaml") => current = Some((n + 2, String::new())),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some((_, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn documentation_examples_compile() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for doc in [
        "README.md",
        "docs/rules.md",
        "docs/authoring.md",
        "docs/ai.md",
    ] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        for (line, block) in yaml_blocks(&text) {
            let source = SourceFile {
                path: PathBuf::from(format!("{doc}:{line}")),
                text: block.clone(),
                root: None,
            };
            if block.starts_with("tests:") {
                if let Err(d) = riposte::config::parse_yaml::<riposte::ruletest::TestFile>(&source)
                {
                    panic!("test example at {doc}:{line} does not parse: {d}");
                }
                checked += 1;
                continue;
            }
            if block.starts_with("at:") || block.starts_with("steps:") {
                if let Err(d) = riposte::config::parse_yaml::<riposte::ruletest::StepsFile>(&source)
                {
                    panic!("steps example at {doc}:{line} does not parse: {d}");
                }
                checked += 1;
                continue;
            }
            let result = riposte::rules::compile(&[source]);
            if let Some(warned) = block
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# check warns: "))
            {
                let set = result.unwrap_or_else(|d| panic!("{doc}:{line} does not compile: {d:?}"));
                let warnings: Vec<String> = riposte::rules::lint(&set, chrono::Utc::now())
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                assert!(
                    warnings.iter().any(|w| w.contains(warned)),
                    "{doc}:{line} should warn `{warned}`, warns {warnings:?}"
                );
            } else if block.starts_with("# this rule does not pass check") {
                assert!(result.is_err(), "{doc}:{line} should fail check");
            } else if let Err(diagnostics) = result {
                let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
                panic!(
                    "example at {doc}:{line} does not compile:\n{}",
                    lines.join("\n")
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} examples found");
}

#[test]
fn shipped_rule_files_compile() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Each example is its own rule set; together they may reuse rule names.
    let mut sets = vec![root.join("rules")];
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sets.push(path);
        }
    }
    assert!(sets.len() >= 2, "no examples found");
    for dir in sets {
        if let Err(diagnostics) = riposte::rules::load(std::slice::from_ref(&dir)) {
            let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            panic!("{} does not compile:\n{}", dir.display(), lines.join("\n"));
        }
    }
}

#[test]
fn every_serve_flag_is_in_the_operations_guide() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"))
            .unwrap();
    let flags: Vec<&str> = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|word| word.starts_with("--") && word.len() > 2 && *word != "--help")
        .collect();
    assert!(flags.len() >= 20, "{help}");
    for flag in flags {
        assert!(
            guide.contains(&format!("`{flag}`")),
            "`{flag}` of `riposte serve` is not in docs/operations.md"
        );
    }
}
