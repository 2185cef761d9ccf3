//! weir: an edge proxy and load balancer on Pingora, configured from one YAML file.
//!
//! The crate's one public item is [`cli::main`], the `weir` command; everything else is
//! crate-private, so the compiler reports what nothing uses. Arrows run one way (see
//! docs/architecture.md, which a test keeps true): `config` (YAML → validated types) →
//! `runtime` (compiled, immutable, swapped whole) → `proxy`, `l4` and `admin` (the data
//! plane, reading snapshots); `control` is the only code that compiles and swaps a new
//! runtime (reload, admin API edits, DNS discovery); `server` assembles the Pingora services
//! and `process` runs them from start to drained exit.

mod access_log;
mod admin;
pub mod cli;
mod config;
mod connections;
mod control;
mod demo;
mod head;
mod headers;
mod l4;
mod listener;
mod metrics;
mod policy;
mod process;
mod procfs;
mod proxy;
mod routing;
mod runtime;
mod server;
mod tls;
mod upstream;
