//! Bounded text. Whatever Kiln stores, logs or answers that a tenant or a guest wrote (an error message,
//! a schema error about their params) is cut to a size cap first, so nobody can make Kiln hold or send
//! megabytes by writing them into a message.

/// Appended where text was cut.
const ELLIPSIS: &str = "…";

/// `text`, cut when it is longer than `max` bytes: at a char boundary, ending in "…", at most `max`
/// bytes in all.
pub fn capped(mut text: String, max: usize) -> String {
    if text.len() > max {
        text.truncate(floor_boundary(&text, max.saturating_sub(ELLIPSIS.len())));
        text.push_str(ELLIPSIS);
    }
    text
}

/// The largest char boundary of `text` at or below `at`.
fn floor_boundary(text: &str, at: usize) -> usize {
    (0..=at.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

/// A writer that keeps the first `max` bytes and refuses the rest, so serializing a huge value for an
/// excerpt stops as soon as the excerpt is full.
pub struct Excerpt {
    buf: Vec<u8>,
    max: usize,
}

impl Excerpt {
    pub fn new(max: usize) -> Self {
        Self { buf: Vec::new(), max }
    }

    /// What was written, cut at a char boundary with "…" if more was offered than fits; `true` if cut.
    pub fn finish(self) -> (String, bool) {
        let cut = self.buf.len() > self.max;
        let text = String::from_utf8_lossy(&self.buf).into_owned();
        if cut {
            (capped(text, self.max), true)
        } else {
            (text, false)
        }
    }
}

impl std::io::Write for Excerpt {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        // One byte past the cap marks the excerpt as cut.
        if self.buf.len() > self.max {
            return Err(std::io::Error::other("excerpt full"));
        }
        let room = self.max + 1 - self.buf.len();
        let taken = data.len().min(room);
        self.buf.extend_from_slice(&data[..taken]);
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The start of `value` as compact JSON, at most `max` bytes, without serializing the rest of it; `true`
/// if it was cut.
pub fn json_excerpt(value: &serde_json::Value, max: usize) -> (String, bool) {
    let mut excerpt = Excerpt::new(max);
    let _ = serde_json::to_writer(&mut excerpt, value);
    excerpt.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_and_long_text_is_cut_at_a_char_boundary() {
        assert_eq!(capped("short".into(), 10), "short");
        assert_eq!(capped("0123456789".into(), 10), "0123456789");
        let cut = capped("ééééééé".into(), 8);
        assert!(cut.len() <= 8, "{cut}");
        assert_eq!(cut, "éé…");
        assert_eq!(capped("x".repeat(10_000), 2048).len(), 2048);
    }

    #[test]
    fn an_excerpt_of_a_huge_value_is_short() {
        let huge = serde_json::Value::Array(vec![serde_json::json!(12345); 1_000_000]);
        let (excerpt, cut) = json_excerpt(&huge, 40);
        assert!(
            cut && excerpt.len() <= 40 && excerpt.starts_with("[12345,") && excerpt.ends_with('…'),
            "{excerpt}"
        );
        assert_eq!(
            json_excerpt(&serde_json::json!({"a": 1}), 40),
            (r#"{"a":1}"#.into(), false)
        );
    }
}
