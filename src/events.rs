//! Machine-readable events for batch systems: with [`LogFormat::Json`], one JSON object per line
//! on stderr for each event (a step started, skipped or finished, a progress tick, the run's
//! end, an error), and no progress bars. With [`LogFormat::Text`] (the default) [`emit`] does
//! nothing and progress is drawn as bars.
//!
//! The format is process-wide: the command line sets it once, before any work starts.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// How progress and events are reported on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Progress bars for people (hidden when stderr is not a terminal).
    #[default]
    Text,
    /// One JSON object per event and line.
    Json,
}

static JSON: AtomicBool = AtomicBool::new(false);

/// Sets the process-wide format.
pub fn set_format(format: LogFormat) {
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
}

/// True when events are printed as JSON lines.
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// The line [`emit`] prints: `{"event": EVENT, "time": UNIX_SECONDS, ...fields}` (keys in
/// serde_json's order). `fields` is an
/// object (anything else is put under `"value"`).
pub fn line(event: &str, fields: Value) -> String {
    let mut m = Map::new();
    m.insert("event".into(), Value::from(event));
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    m.insert("time".into(), Value::from((time * 1000.0).round() / 1000.0));
    match fields {
        Value::Object(f) => m.extend(f),
        Value::Null => {}
        other => {
            m.insert("value".into(), other);
        }
    }
    Value::Object(m).to_string()
}

/// Prints event `event` with `fields` as one JSON line on stderr, when the format is JSON.
pub fn emit(event: &str, fields: Value) {
    if !json() {
        return;
    }
    let mut text = line(event, fields);
    text.push('\n');
    // One write of the whole line under stderr's lock: lines from threads never interleave.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_json_object_with_the_event_first() {
        let l = line("step_start", serde_json::json!({ "step": "a\nb" }));
        assert!(!l.contains('\n'));
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["event"], "step_start");
        assert_eq!(v["step"], "a\nb");
        assert!(v["time"].as_f64().unwrap() > 1.6e9);
    }
}
