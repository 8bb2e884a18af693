//! Any text as a rule file: parsing and compiling must report errors, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riposte::config::SourceFile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = SourceFile { path: "fuzz.yaml".into(), text: text.to_owned(), root: None };
    if let Ok(set) = riposte::rules::compile(&[source]) {
        let _ = riposte::rules::lint(&set, chrono_now());
    }
});

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_767_261_600, 0).unwrap_or_default()
}
