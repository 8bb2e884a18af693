//! How long reading and compiling a large rule set takes: 10,000 generated rules with
//! regexes, keywords and templates, compiled five times; prints the median and the spread.
//!
//! Run with `cargo bench --bench reload`.

use std::fmt::Write;
use std::time::{Duration, Instant};

fn generate(rules: usize) -> String {
    let mut yaml = String::from("rules:\n");
    for i in 0..rules {
        let _ = match i % 4 {
            0 => writeln!(
                yaml,
                "  - name: order-{i}\n    when:\n      text: '(?i)\\border\\s+#?(?P<order>{i}\\d{{2,}})'\n      chat: private\n    then:\n      - reply: \"Order {{{{ match.order }}}} is on its way, {{{{ sender.name | default('there') }}}}!\"\n      - tag: asked-{i}"
            ),
            1 => writeln!(
                yaml,
                "  - name: keyword-{i}\n    when:\n      keywords: [word{i}, phrase {i}]\n    then:\n      - reply: \"You said {{{{ text }}}}\""
            ),
            2 => writeln!(
                yaml,
                "  - name: custom-{i}\n    when:\n      event: custom:event_{i}\n      if: data.total > {i}\n    then:\n      - send: {{to: \"{{{{ data.phone }}}}\", text: \"Total {{{{ data.total }}}}\"}}\n        after: 1h\n        key: \"k-{i}-{{{{ data.phone }}}}\""
            ),
            _ => writeln!(
                yaml,
                "  - name: button-{i}\n    when:\n      event: button_reply\n      reply_id: [b{i}, c{i}]\n    then:\n      - reply: {{text: \"Picked {{{{ text }}}}\", quote: true}}"
            ),
        };
    }
    yaml
}

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
