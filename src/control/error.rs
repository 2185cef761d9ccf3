//! Why a change of the running configuration was not applied, with the structure a caller
//! answers from: the YAML path of each problem, or the file that could not be written.

use super::load::LoadError;
use crate::config::ConfigErrors;
use std::path::PathBuf;

/// Why a change of the configuration was not applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChangeError {
    /// The file cannot be read or is invalid: every error, located.
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    /// What it needs from outside the file (addresses, certificates) did not load.
    #[error(transparent)]
    Load(#[from] LoadError),
}

impl ChangeError {
    /// Every problem, one per entry.
    pub(crate) fn messages(&self) -> Vec<String> {
        self.to_string().lines().map(str::to_string).collect()
    }
}

/// One reason an edited configuration is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The YAML path of the setting at fault, when validation located it.
    pub path: Option<String>,
    /// What is wrong, as `weir --test` words it.
    pub message: String,
}

/// What an edit names that does not exist.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Missing {
    /// No upstream has this name.
    #[error("no upstream named `{0}`")]
    Upstream(String),
    /// The upstream has no target written or named so.
    #[error("upstream `{upstream}` has no target `{target}`")]
    Target {
        /// The upstream's name.
        upstream: String,
        /// The address or name the edit gave.
        target: String,
    },
    /// No consumer has this name.
    #[error("no consumer named `{0}`")]
    Consumer(String),
    /// The consumer has no key with this id.
    #[error("consumer `{consumer}` has no key `{id}`")]
    Key {
        /// The consumer's name.
        consumer: String,
        /// The id the edit gave.
        id: String,
    },
}

/// How an edit contradicts the current state.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Conflict {
    /// A target with this address or name exists already.
    #[error("upstream `{upstream}` has a target `{taken}` already")]
    Taken {
        /// The upstream's name.
        upstream: String,
        /// The address or name both would have.
        taken: String,
    },
    /// Removing it would leave the upstream without targets.
    #[error("`{target}` is the last target of upstream `{upstream}`; drain it instead")]
    LastTarget {
        /// The upstream's name.
        upstream: String,
        /// The address or name the edit gave.
        target: String,
    },
    /// A consumer with this name exists already.
    #[error("there is a consumer named `{0}` already")]
    ConsumerTaken(String),
    /// Another key, of this consumer or another, is the same key: a request sending it
    /// could not say who it is.
    #[error("this key is in use already (key `{id}` of consumer `{consumer}`)")]
    KeyTaken {
        /// The consumer that has it.
        consumer: String,
        /// Its id.
        id: String,
    },
    /// The key comes from the consumer's `keys_file`, which the admin API does not write.
    #[error(
        "key `{id}` of consumer `{consumer}` is read from its keys_file; remove it there and \
         reload"
    )]
    KeyInFile {
        /// The consumer's name.
        consumer: String,
        /// The key's id.
        id: String,
    },
    /// The file changed on disk since it was loaded, and writing the edit back would undo
    /// that change.
    #[error(
        "{} was edited since weir loaded it; reload it first (POST /reload), so that writing \
         this change back does not undo those edits",
        .0.display()
    )]
    EditedSince(PathBuf),
}

/// Why an edit was not applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EditError {
    /// The upstream or target it names does not exist.
    #[error(transparent)]
    NotFound(#[from] Missing),
    /// It contradicts the current state.
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// The configuration it leads to is invalid: every problem.
    #[error("{}", .0.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    /// The edited document could not be written as YAML.
    #[error("cannot write the edited configuration as YAML: {0}")]
    Serialize(#[from] serde_yaml::Error),
    /// The file could not be read or written back.
    #[error("{}: {source}", path.display())]
    File {
        /// The configuration file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl From<ChangeError> for EditError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::Config(errors) => Self::Invalid(
                errors
                    .0
                    .into_iter()
                    .map(|e| Problem {
                        path: Some(e.path).filter(|p| !p.is_empty()),
                        message: e.message,
                    })
                    .collect(),
            ),
            ChangeError::Load(e) => Self::Invalid(
                e.to_string()
                    .lines()
                    .map(|message| Problem {
                        path: None,
                        message: message.to_string(),
                    })
                    .collect(),
            ),
        }
    }
}
