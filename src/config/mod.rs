//! Configuration: the YAML file → a validated [`Config`] of real types.
//!
//! Loading runs in three steps: `source` parses the text, expands `${VAR}` and keeps a map of
//! positions; `schema` holds the raw serde structs, decoded one element at a time so that a
//! bad listener does not hide a bad upstream; `validate` turns raw strings into addresses,
//! durations, header names, CIDRs and regexes. Every problem found on the way is reported
//! together as `FILE:LINE:COLUMN: message`. Nothing here knows about Pingora.

mod compress;
mod defaults;
mod error;
mod model;
mod policy;
#[cfg(test)]
mod proptests;
mod report;
mod schema;
mod source;
mod target_addr;
mod validate;

pub(crate) use compress::*;
pub(crate) use defaults::*;
pub(crate) use error::ConfigErrors;
pub(crate) use model::*;
pub(crate) use policy::*;
pub(crate) use schema::{LogFormat, LogLevel, ProxyVersion, RawTarget};
pub(crate) use source::Locations;
pub(crate) use target_addr::{TargetAddr, TargetHost};

// The validation modules take these through `use super::*`, as the model does.
use http::{HeaderName, HeaderValue};
use regex::Regex;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Reads and validates a configuration file.
pub(crate) fn load(path: &Path) -> Result<Config, ConfigErrors> {
    parse(path, &read(path)?)
}

/// The text of a configuration file.
pub(crate) fn read(path: &Path) -> Result<String, ConfigErrors> {
    let bytes = std::fs::read(path).map_err(|e| ConfigErrors::unreadable(path, &e))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let column = valid.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        ConfigErrors::not_utf8(path, line, column)
    })
}

/// Validates configuration text; `path` is used in error locations.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let (value, mut report) = source::parse(path, text)?;
    let raw = validate::decode(value, &mut report);
    let config = validate::validate(path, raw, &mut report);
    report.finish()?;
    Ok(config)
}
