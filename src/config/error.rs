//! Configuration errors: each one carries the file, line and column it points at, so
//! `weir --test` and a failed start print `FILE:LINE:COLUMN: message` lines an editor can jump to.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a configuration file, located at the key or value it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The YAML path of the setting (`upstreams.api.targets[2].weight`); empty for the file
    /// as a whole.
    pub path: String,
    /// What is wrong and, where it helps, what would be right.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Every problem found in one configuration file, in file order. Loading reports all of
/// them at once rather than stopping at the first, so one edit round fixes the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// A single error for a file that could not be read at all.
    pub(crate) fn unreadable(file: &Path, err: &std::io::Error) -> Self {
        Self(vec![ConfigError {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            path: String::new(),
            message: format!("cannot read the configuration file: {err}"),
        }])
    }

    /// A single error for a file whose bytes stop being UTF-8 at `line`, `column`.
    pub(crate) fn not_utf8(file: &Path, line: usize, column: usize) -> Self {
        Self(vec![ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            path: String::new(),
            message: "the file is not UTF-8 text from here on".to_string(),
        }])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
