//! Where every key and value of the file sits: the YAML event stream walked once into a
//! table from YAML path (`upstreams.api.targets[2].weight`) to line and column. Errors found
//! at any later step, during validation or when a certificate fails to load, look their
//! position up here.

use crate::config::report::{join_index, join_key, key_name, parent};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A position in the file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    /// Line.
    pub line: usize,
    /// Column.
    pub column: usize,
}

impl Pos {
    /// The start of the file, where problems that concern no part of it are reported.
    pub(crate) const START: Self = Self { line: 1, column: 1 };
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Self {
        Self {
            line: m.line(),
            column: m.col() + 1,
        }
    }
}

/// Where one node of the document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// The key that names this node in its parent mapping, if it has one.
    pub key: Option<Pos>,
    /// The value itself.
    pub value: Option<Pos>,
    /// Whether the value is an unquoted scalar, which YAML would read as a number or a
    /// boolean where it looks like one; interpolated values keep that reading.
    pub plain: bool,
}

/// The positions of one file's keys and values, by YAML path. Built once per load and
/// shared by everything that reports a problem with a setting of that file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Locations {
    file: PathBuf,
    spans: HashMap<String, Span>,
    /// Where and why the span parser stopped short of the end, if it did.
    stopped: Option<(Pos, String)>,
}

impl Locations {
    /// Reads the positions of `text`, the contents of `file`. Text the span parser cannot
    /// read leaves the table short, so lookups fall back to the nearest located ancestor;
    /// the corpus test in this module keeps the two parsers in agreement.
    pub(crate) fn read(file: &Path, text: &str) -> Self {
        let mut collector = SpanCollector::default();
        // The value parser accepted the text before this runs; a construct this parser
        // rejects stops the walk where it is, keeping what was read so far, and says so.
        let stopped = Parser::new_from_str(text)
            .load(&mut collector, false)
            .err()
            .map(|e| (Pos::from(*e.marker()), e.info().to_string()));
        Self {
            file: file.to_path_buf(),
            spans: collector.spans,
            stopped,
        }
    }

    /// Where and why positions stop being exact: past this point a path the span parser
    /// did not reach is located at its nearest located ancestor.
    pub(crate) fn stopped(&self) -> Option<&(Pos, String)> {
        self.stopped.as_ref()
    }

    /// The file these positions are in.
    pub(crate) fn file(&self) -> &Path {
        &self.file
    }

    /// The span recorded for `path` itself, if any.
    pub(crate) fn span(&self, path: &str) -> Option<&Span> {
        self.spans.get(path)
    }

    /// The position of `path`; for a path that is not in the file (a missing key), the key
    /// of its nearest ancestor that is, which is the line a reader looks at.
    pub(crate) fn position(&self, path: &str, prefer_key: bool) -> Pos {
        let mut current = path;
        // A missing top-level section is reported at the top of the file.
        while !current.is_empty() {
            if let Some(span) = self.spans.get(current) {
                let found = if prefer_key || current != path {
                    span.key.or(span.value)
                } else {
                    span.value.or(span.key)
                };
                if let Some(pos) = found {
                    return pos;
                }
            }
            current = parent(current).unwrap_or_default();
        }
        Pos::START
    }

    /// `FILE:LINE:COLUMN: path` of the value at `path`, for problems found after loading
    /// (a certificate file that does not load) to point at the setting that names it.
    pub(crate) fn at<'a>(&'a self, path: &'a str) -> At<'a> {
        At {
            locations: self,
            path,
        }
    }
}

/// A setting printed with its position: `FILE:LINE:COLUMN: path`.
pub(crate) struct At<'a> {
    locations: &'a Locations,
    path: &'a str,
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pos = self.locations.position(self.path, false);
        write!(
            f,
            "{}:{}:{}: {}",
            self.locations.file.display(),
            pos.line,
            pos.column,
            self.path
        )
    }
}

/// One open container while walking the parser's events.
enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

/// Builds the path → position map from the YAML event stream.
#[derive(Default)]
struct SpanCollector {
    stack: Vec<Frame>,
    spans: HashMap<String, Span>,
}

impl SpanCollector {
    /// The path the next value will have, or `None` if the next scalar is a mapping key.
    fn next_value_path(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Map { key: None, .. }) => None,
            Some(Frame::Map { path, key: Some(k) }) => Some(join_key(path, k)),
            Some(Frame::Seq { path, index }) => Some(join_index(path, *index)),
        }
    }

    /// Moves the innermost container past the value just read.
    fn advance(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { key, .. }) => *key = None,
            Some(Frame::Seq { index, .. }) => *index += 1,
            None => {}
        }
    }

    fn record_value(&mut self, path: &str, pos: Pos, plain: bool) {
        let span = self.spans.entry(path.to_string()).or_insert(Span {
            key: None,
            value: None,
            plain: false,
        });
        span.value = Some(pos);
        span.plain = plain;
    }

    /// A scalar or container in key position: complex keys are not used by weir's schema,
    /// so they get a placeholder name and the walk goes on.
    fn take_key(&mut self, name: String, pos: Option<Pos>) {
        if let Some(Frame::Map { path, key }) = self.stack.last_mut() {
            let full = join_key(path, &name);
            *key = Some(name);
            if let Some(pos) = pos {
                self.spans.insert(
                    full,
                    Span {
                        key: Some(pos),
                        value: None,
                        plain: false,
                    },
                );
            }
        }
    }

    fn open(&mut self, pos: Pos, map: bool) {
        let path = match self.next_value_path() {
            Some(p) => {
                self.record_value(&p, pos, false);
                p
            }
            None => "?".to_string(),
        };
        self.stack.push(if map {
            Frame::Map { path, key: None }
        } else {
            Frame::Seq { path, index: 0 }
        });
    }

    fn close(&mut self) {
        self.stack.pop();
        match self.stack.last() {
            Some(Frame::Map { key: None, .. }) => self.take_key("?".to_string(), None),
            _ => self.advance(),
        }
    }
}

impl MarkedEventReceiver for SpanCollector {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = Pos::from(mark);
        match ev {
            Event::Scalar(text, style, _, _) => match self.next_value_path() {
                Some(path) => {
                    self.record_value(&path, pos, style == TScalarStyle::Plain);
                    self.advance();
                }
                None => {
                    // A plain key is named as the value parser reads it (`0x10` is 16).
                    let name = if style == TScalarStyle::Plain {
                        serde_yaml::from_str(&text).map_or(text, |v| key_name(&v))
                    } else {
                        text
                    };
                    self.take_key(name, Some(pos));
                }
            },
            Event::Alias(_) => match self.next_value_path() {
                Some(path) => {
                    self.record_value(&path, pos, false);
                    self.advance();
                }
                None => self.take_key("?".to_string(), Some(pos)),
            },
            Event::MappingStart(..) => self.open(pos, true),
            Event::SequenceStart(..) => self.open(pos, false),
            Event::MappingEnd | Event::SequenceEnd => self.close(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locations(text: &str) -> Locations {
        Locations::read(Path::new("f.yaml"), text)
    }

    #[test]
    fn locates_keys_and_values() {
        let l = locations("a:\n  b: 1\n  list:\n    - x\n    - { y: 2 }\n");
        assert_eq!(l.position("a.b", true), Pos { line: 2, column: 3 });
        assert_eq!(l.position("a.b", false), Pos { line: 2, column: 6 });
        assert_eq!(
            l.position("a.list[1].y", false),
            Pos {
                line: 5,
                column: 12
            }
        );
        assert_eq!(l.position("a.list[0]", false), Pos { line: 4, column: 7 });
        assert_eq!(l.position("a.missing", false), Pos::START);
        assert_eq!(l.at("a.b").to_string(), "f.yaml:2:6: a.b");
        assert!(l.stopped().is_none());
    }

    #[test]
    fn says_where_it_stopped() {
        let l = locations("a: 1\nb: [2\n");
        let (pos, _) = l.stopped().expect("stopped");
        assert_eq!(pos.line, 3);
        assert_eq!(l.position("a", false), Pos { line: 1, column: 4 });
    }
}
