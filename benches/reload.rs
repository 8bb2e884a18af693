//! How long reading and compiling a large rule set takes: 10,000 generated rules with
//! regexes, keywords and templates, compiled five times; prints the median and the spread.
//!
//! Run with `cargo bench --bench reload`.

#[path = "support/generate.rs"]
mod generate;

use generate::generate;

use std::time::{Duration, Instant};

fn main() {
    let rules = 10_000;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("rules.yaml"), generate(rules)).expect("write rules");
    let paths = vec![dir.path().to_owned()];
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let set = riposte::rules::load(&paths).unwrap_or_else(|d| panic!("{}", d[0]));
        times.push(started.elapsed());
        assert_eq!(set.rules.len(), rules);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "read + compile {rules} rules: median {:.0} ms (min {:.0} ms, max {:.0} ms, 5 runs)",
        ms(times[2]),
        ms(times[0]),
        ms(times[4])
    );
}
