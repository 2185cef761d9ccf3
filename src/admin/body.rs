//! The JSON body of a write, or what is wrong with it, naming the field at fault.

use serde_json::{json, Value};

/// The largest request body a write accepts.
pub(super) const MAX_BODY: usize = 64 * 1024;

/// Why a write's body was refused with 400.
#[derive(Debug, thiserror::Error)]
pub(super) enum BodyError {
    /// It is not JSON, or is cut short.
    #[error("the body is not valid JSON: {0}")]
    Syntax(#[source] serde_json::Error),
    /// It is JSON, but not of the shape the endpoint takes.
    #[error("{source}")]
    Shape {
        /// Where, as `serde_path_to_error` writes it: `.` for the whole body.
        path: String,
        /// What is wrong there.
        source: serde_json::Error,
    },
}

impl BodyError {
    /// The field at fault, if any. Missing and unknown fields are reported at the path of
    /// their object, and named only in the message.
    fn field(&self) -> Option<String> {
        match self {
            Self::Syntax(_) => None,
            Self::Shape { path, source } if path == "." => {
                source.to_string().split('`').nth(1).map(str::to_string)
            }
            Self::Shape { path, .. } => Some(path.clone()),
        }
    }

    /// The response body: the message and the field it names.
    pub(super) fn to_json(&self) -> Value {
        json!({ "error": self.to_string(), "field": self.field() })
    }
}

/// A JSON body, or what is wrong with it.
pub(super) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, BodyError> {
    let mut json = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let path = e.path().to_string();
        let source = e.into_inner();
        if source.is_syntax() || source.is_eof() {
            BodyError::Syntax(source)
        } else {
            BodyError::Shape { path, source }
        }
    })
}
