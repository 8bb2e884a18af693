//! Generated rule sets for the benchmarks: a mix of regex, keyword, custom-event and button
//! rules, so matching and compiling meet every kind of condition.

use std::fmt::Write;

/// A rule file with `rules` rules.
#[allow(dead_code)] // each bench uses one of the two
pub(crate) fn generate(rules: usize) -> String {
    generate_salted(rules, "")
}

/// Like [`generate`], with `salt` in every regex so nothing compiled earlier can be reused.
#[allow(dead_code)]
pub(crate) fn generate_salted(rules: usize, salt: &str) -> String {
    let mut yaml = String::from("rules:\n");
    for i in 0..rules {
        let _ = match i % 4 {
            0 => writeln!(
                yaml,
                "  - name: order-{i}\n    when:\n      text: '(?i)\\border\\s+#?(?P<order>{i}\\d{{2,}}){salt}'\n      chat: private\n    then:\n      - reply: \"Order {{{{ match.order }}}} is on its way, {{{{ sender.name | default('there') }}}}!\"\n      - tag: asked-{i}"
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
