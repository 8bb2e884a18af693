//! Every example and the default rules pass their rule tests (the runner as a library).

use std::path::{Path, PathBuf};

fn rule_sets() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sets = vec![root.join("rules")];
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    examples.sort();
    sets.extend(examples);
    sets
}

#[tokio::test]
async fn every_example_passes_its_rule_tests() {
    let sets = rule_sets();
    assert!(sets.len() >= 9, "{sets:?}");
    let mut failures = Vec::new();
    let mut passed = 0;
    for set in &sets {
        let files = riposte::ruletest::find(std::slice::from_ref(set));
        assert!(!files.is_empty(), "{} has no rule tests", set.display());
        for file in files {
            match riposte::ruletest::run_file(&file).await {
                Err(diagnostic) => failures.push(diagnostic.to_string()),
                Ok(reports) => {
                    for r in reports {
                        match r.failure {
                            None => passed += 1,
                            Some(f) => failures.push(format!(
                                "{}:{}: {}\n  {f}",
                                r.file.display(),
                                r.line,
                                r.name
                            )),
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(passed >= 20, "only {passed} cases ran");
}
