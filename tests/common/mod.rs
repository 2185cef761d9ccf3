//! Test harness: the real `weir` binary, real demo instances and real clients on ephemeral
//! ports. Each submodule holds one idea; everything a test uses is re-exported here, so a test
//! file says `mod common; use common::*;`.
#![allow(dead_code)] // each test binary uses a part of the harness
#![allow(unused_imports)] // likewise for the re-exports
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly
#![allow(unreachable_pub)] // the harness is shared by test binaries, not exported

mod admin;
mod backend;
mod browser;
mod configs;
mod http;
mod instance;
mod load;
mod metrics;
mod origin;
mod ports;
mod processes;
mod raw_backend;
mod raw_client;
mod redis;
mod tls;
mod tools;
mod weir;

pub use admin::AdminApi;
pub use backend::Backend;
pub use browser::{Browser, BROWSER_TOOLS};
pub use configs::{
    gateway, policy_route, single_upstream, slow_route, weir_test, write_config, RouteTable,
};
pub use http::{client, served_by, serving};
pub use instance::Instance;
pub use load::{Load, Tally};
pub use metrics::{sample, scrape};
pub use origin::{Canned, Generated, Origin};
pub use ports::{
    connections_to, free_port, listening_ports, listens, refused_address, wait_listening,
    RefusedAddress,
};
pub use processes::{
    poll_until, signal, spawn_listening, spawn_listening_on, succeed, weir_bin, Detached, Proc,
    Signal, START_DEADLINE,
};
pub use raw_backend::{Behaviour, RawBackend, RawRequest, Received};
pub use raw_client::{exchange, read_all, status, statuses};
pub use redis::Redis;
pub use tls::{cert_script, dev_certs, file_serial, s_client, served_serial, TestCa};
pub use tools::require_tools;
pub use weir::Weir;
