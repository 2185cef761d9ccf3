//! The errors of one load, collected rather than returned one at a time: each is recorded
//! at its YAML path, located through the file's [`Locations`], and all are given back
//! together in file order.

use super::error::{ConfigError, ConfigErrors};
use super::source::{Locations, Pos};
use std::sync::Arc;

/// Collects every error of one file, each located by its YAML path.
pub(super) struct Report {
    locations: Arc<Locations>,
    errors: Vec<ConfigError>,
    /// Paths whose value could not be decoded and was set aside (removed or replaced by a
    /// stand-in so that the rest of its element could be read): their error is already
    /// recorded, so what later checks say about the stand-in is not.
    set_aside: Vec<String>,
}

impl Report {
    /// An empty report for the file whose positions are `locations`.
    pub(super) fn new(locations: Arc<Locations>) -> Self {
        Self {
            locations,
            errors: Vec::new(),
            set_aside: Vec::new(),
        }
    }

    /// The positions of the file, which the model keeps to locate settings later.
    pub(super) fn locations(&self) -> &Arc<Locations> {
        &self.locations
    }

    /// Records a problem with the value at `path` (or its nearest located ancestor).
    pub(super) fn value(&mut self, path: &str, message: impl Into<String>) {
        let pos = self.locations.position(path, false);
        self.push(pos, path, message.into());
    }

    /// Records a problem with the key that names `path`, such as an unknown key.
    pub(super) fn key(&mut self, path: &str, message: impl Into<String>) {
        let pos = self.locations.position(path, true);
        self.push(pos, path, message.into());
    }

    /// Marks `path` as set aside after its decoding error was recorded.
    pub(super) fn set_aside(&mut self, path: String) {
        self.set_aside.push(path);
    }

    /// All recorded errors in file order, or `Ok` when there were none.
    pub(super) fn finish(mut self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            return Ok(());
        }
        // Echoes of a cause (an unset variable, a value of the wrong type) were left out as
        // they came, by their set-aside path; different problems at one spot (a mapping
        // that lacks two keys) all stay.
        self.errors.sort_by_key(|e| (e.line, e.column));
        self.errors
            .dedup_by(|a, b| (a.line, a.column, &a.message) == (b.line, b.column, &b.message));
        if let Some((pos, why)) = self.locations.stopped() {
            // Rather than errors silently pointing at an enclosing setting.
            let note = ConfigError {
                file: self.locations.file().to_path_buf(),
                line: pos.line,
                column: pos.column,
                path: String::new(),
                message: format!(
                    "positions from here on may be those of an enclosing setting: weir's \
                     position reader stopped ({why})"
                ),
            };
            let at = self
                .errors
                .partition_point(|e| (e.line, e.column) <= (pos.line, pos.column));
            self.errors.insert(at, note);
        }
        Err(ConfigErrors(self.errors))
    }

    /// Messages name the YAML path first, so an error reads on its own:
    /// `upstreams.api.targets[0].weight: weight 5000 is too large …`.
    fn push(&mut self, pos: Pos, path: &str, message: String) {
        let echo = self
            .set_aside
            .iter()
            .any(|p| path == p || path.strip_prefix(p.as_str()).is_some_and(is_below));
        if echo {
            return;
        }
        let message = if path.is_empty() {
            message
        } else {
            format!("{path}: {message}")
        };
        // A value quoted in a message cannot start a line of its own (a forged
        // `FILE:LINE:COLUMN`) or drive the terminal: control characters are shown escaped.
        let message = message.chars().fold(String::new(), |mut out, c| {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
            out
        });
        self.errors.push(ConfigError {
            file: self.locations.file().to_path_buf(),
            line: pos.line,
            column: pos.column,
            path: path.to_string(),
            message,
        });
    }
}

/// Whether the rest of a path after a prefix names something inside it.
fn is_below(rest: &str) -> bool {
    rest.starts_with(['.', '['])
}

/// The path of the node that holds `path`: `a.b[2]` → `a.b` → `a` → ``.
pub(super) fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// Joins a mapping key onto a path.
pub(super) fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The name a mapping key has in paths: its text for a scalar written plainly (`8080`,
/// `true`), as the span table reads it; `?` for a key that is a list or a mapping.
pub(super) fn key_name(key: &serde_yaml::Value) -> String {
    match key {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        _ => "?".to_string(),
    }
}

/// Joins a sequence index onto a path.
pub(super) fn join_index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_short_position_table_is_said_with_the_errors() {
        let locations = Locations::read(Path::new("f.yaml"), "a: 1\nb: [2\n");
        let mut report = Report::new(Arc::new(locations));
        report.value("a", "wrong");
        let errors = report.finish().unwrap_err().0;
        assert_eq!(errors.len(), 2);
        assert_eq!((errors[0].line, errors[0].column), (1, 4));
        assert!(
            errors[1].message.contains("position reader stopped"),
            "{errors:?}"
        );
    }
}
