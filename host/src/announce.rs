//! The lines a serving Kiln writes for the people and scripts that start it ("kiln: API listening on
//! http://…", "kiln: worker running", the dev-mode warning, a fatal error): plain text, or with
//! `KILN_LOG_FORMAT=json` one JSON object per line like the log's, so that every line the process
//! writes parses. Each announcement has an `event` name that scripts can match instead of the text.

use crate::config::LogFormat;
use serde_json::{Map, Value, json};
use std::sync::OnceLock;

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Set once, by `main`, before anything announces (text until then).
pub fn set_format(format: LogFormat) {
    let _ = FORMAT.set(format);
}

fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or(LogFormat::Text)
}

/// The JSON form: the fields of a tracing-subscriber JSON line, plus `event` and `fields`' own entries.
fn json_line(level: &str, event: &str, message: &str, fields: Value) -> String {
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut line = Map::new();
    line.insert("timestamp".into(), timestamp.into());
    line.insert("level".into(), level.into());
    line.insert("target".into(), "kiln".into());
    line.insert("event".into(), event.into());
    line.insert("message".into(), message.into());
    if let Value::Object(fields) = fields {
        line.extend(fields);
    }
    Value::Object(line).to_string()
}

/// Writes `kiln: {message}` (or its JSON form, with `fields`) to stdout, where scripts wait for it.
pub fn announce(event: &str, message: &str, fields: Value) {
    match format() {
        LogFormat::Text => println!("kiln: {message}"),
        LogFormat::Json => println!("{}", json_line("INFO", event, message, fields)),
    }
}

/// Writes `kiln: error: {message}` (or its JSON form) to stderr: why the process is exiting.
pub fn fatal(message: &str) {
    match format() {
        LogFormat::Text => eprintln!("kiln: error: {message}"),
        LogFormat::Json => eprintln!("{}", json_line("ERROR", "fatal", message, json!({}))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_carry_event_message_and_fields() {
        let line: Value = serde_json::from_str(&json_line(
            "INFO",
            "api-listening",
            "API listening on http://x",
            json!({"url": "http://x"}),
        ))
        .unwrap();
        assert_eq!(line["event"], "api-listening");
        assert_eq!(line["url"], "http://x");
        assert_eq!(line["level"], "INFO");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'), "{line}");
    }
}
