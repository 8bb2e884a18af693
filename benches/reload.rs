//! How long reading and compiling a large rule set takes: 10,000 generated rules with
//! regexes, keywords and templates. Two cases, five runs each, median and spread:
//!
//! - cold: every regex is new (nothing compiled before can be reused);
//! - one rule edited: the reload an operator makes after saving a change to one rule (a
//!   keyword rule; and a regex rule, whose prefilter automaton is then built again);
//! - a line added at the top: every rule moves down a line, none changes.
//!
//! Run with `cargo bench --bench reload`.

#[path = "support/generate.rs"]
mod generate;

use std::time::{Duration, Instant};

fn main() {
    let rules = 10_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("rules.yaml");
    let paths = vec![dir.path().to_owned()];
    let zone = chrono_tz::UTC;
    let load = |text: &str| {
        std::fs::write(&file, text).expect("write rules");
        let started = Instant::now();
        let set = riposte::rules::load(&paths).unwrap_or_else(|d| panic!("{}", d[0]));
        let took = started.elapsed();
        assert_eq!(set.rules.len(), rules);
        // The server frees the old set after the swap, off the measured path.
        drop(set);
        took
    };
    // What the server does: compile against the set in use, then swap.
    let reload = |previous: &riposte::rules::RuleSet, text: &str| {
        std::fs::write(&file, text).expect("write rules");
        let started = Instant::now();
        let set = riposte::rules::load_after(&paths, zone, previous)
            .unwrap_or_else(|d| panic!("{}", d[0]));
        let took = started.elapsed();
        assert_eq!(set.rules.len(), rules);
        (set, took)
    };
    let cold: Vec<Duration> = (0..5)
        .map(|run| {
            load(&generate::generate_salted(
                rules,
                &format!("(?:cold{run})?"),
            ))
        })
        .collect();
    let base = generate::generate(rules);
    load(&base);
    std::fs::write(&file, &base).expect("write rules");
    let mut current = riposte::rules::load(&paths).unwrap_or_else(|d| panic!("{}", d[0]));
    let mut edited = Vec::new();
    for run in 0..5 {
        let edit = format!("[word1, edit{run},");
        let (set, took) = reload(&current, &base.replacen("[word1,", &edit, 1));
        edited.push(took);
        current = set;
    }
    let mut regex_edited = Vec::new();
    for run in 0..5 {
        let edit = format!("\\d{{{},}})'", run + 3);
        let (set, took) = reload(&current, &base.replacen("\\d{2,})'", &edit, 1));
        regex_edited.push(took);
        current = set;
    }
    let mut moved = Vec::new();
    for run in 0..5 {
        let (set, took) = reload(&current, &format!("{}{base}", "# note\n".repeat(run + 1)));
        moved.push(took);
        current = set;
    }
    report(&format!("read + compile {rules} rules, cold"), cold);
    report(&format!("reload of {rules} rules, one rule edited"), edited);
    report(
        &format!("reload of {rules} rules, one regex rule edited"),
        regex_edited,
    );
    report(
        &format!("reload of {rules} rules, a line added at the top"),
        moved,
    );
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: median {:.0} ms (min {:.0} ms, max {:.0} ms, {} runs)",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len()
    );
}
