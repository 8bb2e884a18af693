//! A file's lines by number, found once per file: every rule's fingerprint and some error
//! positions look lines up, and a file of ten thousand rules has some seventy thousand lines.

/// The lines of a text as [`str::lines`] gives them, looked up by 0-based index. Keeps one
/// offset a line rather than a slice, half the memory for the largest files.
pub(super) struct Lines<'a> {
    text: &'a str,
    /// Where each line starts, then where the last one ends.
    bounds: Vec<usize>,
}

impl<'a> Lines<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        let newlines = text.bytes().filter(|&b| b == b'\n').count();
        let mut bounds = Vec::with_capacity(newlines + 2);
        bounds.push(0);
        bounds.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(at, _)| at + 1),
        );
        if bounds.last() != Some(&text.len()) {
            bounds.push(text.len());
        }
        Self { text, bounds }
    }

    pub(super) fn len(&self) -> usize {
        self.bounds.len() - 1
    }

    /// Line `index` without its line ending.
    pub(super) fn get(&self, index: usize) -> Option<&'a str> {
        let (start, end) = (*self.bounds.get(index)?, *self.bounds.get(index + 1)?);
        let line = &self.text[start..end];
        Some(match line.strip_suffix('\n') {
            Some(line) => line.strip_suffix('\r').unwrap_or(line),
            None => line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Lines;

    #[test]
    fn agrees_with_str_lines() {
        for text in [
            "",
            "\n",
            "a",
            "a\n",
            "a\nb",
            "a\r\nb\r\n",
            "a\r",
            "a\rb\n\n\nc",
            "\n\nrules:\n  - name: x\n",
            "é\nß\r\n",
        ] {
            let lines = Lines::new(text);
            let expected: Vec<&str> = text.lines().collect();
            let got: Vec<&str> = (0..lines.len()).filter_map(|i| lines.get(i)).collect();
            assert_eq!(got, expected, "{text:?}");
            assert_eq!(lines.get(lines.len()), None);
        }
    }
}
