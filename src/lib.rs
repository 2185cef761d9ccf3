//! weir: an edge proxy and load balancer on Pingora, configured from one YAML file.
//!
//! The flow of every change: [`config`] (YAML → validated types) → [`runtime`] (compiled,
//! immutable, swapped whole) → [`proxy`] (the thin `ProxyHttp`) calling into [`routing`],
//! [`upstream`] and [`headers`]. [`server`] assembles the Pingora services; [`process`] runs
//! them from start to drained exit, and [`control`] drives a running weir (reload, upgrade).

pub mod access_log;
pub mod admin;
pub mod cli;
pub mod config;
pub mod connections;
pub mod control;
pub mod demo;
pub mod headers;
pub mod l4;
pub mod listener;
pub mod metrics;
pub mod process;
pub mod procfs;
pub mod proxy;
pub mod routing;
pub mod runtime;
pub mod server;
pub mod tls;
pub mod upstream;
