//! How long reading and compiling a large rule set takes: 10,000 generated rules with
//! regexes, keywords and templates. Two cases, five runs each, median and spread:
//!
//! - cold: every regex is new (nothing compiled before can be reused);
//! - one rule edited: the reload an operator makes after saving a change to one rule.
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
    let edited: Vec<Duration> = (0..5)
        .map(|run| {
            let edit = format!("[word1, edit{run},");
            load(&base.replacen("[word1,", &edit, 1))
        })
        .collect();
    report(&format!("read + compile {rules} rules, cold"), cold);
    report(
        &format!("read + compile {rules} rules, one rule edited"),
        edited,
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
