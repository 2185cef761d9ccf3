//! The control plane: every change to what a running weir serves. Whoever triggers it —
//! SIGHUP or `POST /reload` (a reload of the file), an admin API edit, DNS discovery (new
//! addresses) — it ends here: load what the configuration needs from outside the file
//! ([`load`]), compile a [`Runtime`] that carries the live state of unchanged targets, and
//! swap it in whole ([`install`]). The data plane (proxy, l4, admin reads) only ever reads
//! runtime snapshots.

mod error;
mod live;
mod load;
mod persist;
mod restart_only;
mod supervisor;

pub(crate) use error::{Conflict, EditError, Missing};
pub(crate) use live::{LiveConfig, Saved};
pub(crate) use load::{certificates, check, resolve, LoadError};
pub(crate) use supervisor::Supervisor;

use crate::runtime::{Runtime, SharedRuntime};
use std::sync::Arc;

/// Another change swapped a runtime in since the one a change was compiled against: it
/// must be compiled again against the running one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Superseded;

/// Swaps `next` in if the running runtime is still `base`, then removes the metric series
/// of routes and targets that are gone, so that the scrape does not grow with every change
/// of targets. A runtime that lost the race to another change is dropped with the series
/// only it had.
pub(crate) fn install(
    shared: &SharedRuntime,
    base: &Arc<Runtime>,
    next: Runtime,
) -> Result<(), Superseded> {
    let next = Arc::new(next);
    let previous = shared.compare_and_swap(base, next.clone());
    if Arc::ptr_eq(&previous, base) {
        base.retire_series(&next);
        Ok(())
    } else {
        next.retire_series(&previous);
        Err(Superseded)
    }
}
