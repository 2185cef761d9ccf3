//! The series a runtime counts into, named by their label values, so that a change can
//! remove those of the routes and targets it took away and the scrape stays as large as
//! what is served.

use super::families::{CODE_CLASSES, FAMILIES, RATE_KEYS};
use super::Denial;

/// The label values of the series one runtime counts into, so that a change can remove
/// those of the routes and targets it took away.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Series {
    /// A route through its upstream: durations, retries, refusals.
    Route {
        /// The route.
        route: String,
        /// Its upstream.
        upstream: String,
    },
    /// Requests of a route answered through one instance for one consumer.
    Requests {
        /// The route.
        route: String,
        /// Its upstream.
        upstream: String,
        /// The instance; empty for requests that reached none.
        instance: String,
        /// The consumer; empty for none identified.
        consumer: String,
    },
    /// One instance of an upstream: durations, ejections, connect failures.
    Target {
        /// The upstream.
        upstream: String,
        /// The instance.
        instance: String,
    },
    /// Connections of a TCP listener forwarded to one instance.
    StreamTarget {
        /// The listener.
        listener: String,
        /// Its upstream.
        upstream: String,
        /// The instance.
        instance: String,
    },
}

impl Series {
    /// Removes the series from every family it is in. Requests still holding its handles
    /// count into counters no scrape reads.
    pub(crate) fn remove(&self) {
        let f = &*FAMILIES;
        // A series that was never touched is not there to remove; that is fine.
        match self {
            Self::Route { route, upstream } => {
                let labels = [route.as_str(), upstream];
                let _ = f.request_duration.remove_label_values(&labels);
                let _ = f.retries.remove_label_values(&labels);
                for why in Denial::ALL {
                    let _ = f.auth_failures.remove_label_values(&[route, why.label()]);
                }
                for by in RATE_KEYS {
                    let _ = f.ratelimited.remove_label_values(&[route, by]);
                }
            }
            Self::Requests {
                route,
                upstream,
                instance,
                consumer,
            } => {
                for class in CODE_CLASSES {
                    let _ = f
                        .requests
                        .remove_label_values(&[route, upstream, instance, class, consumer]);
                }
            }
            Self::Target { upstream, instance } => {
                let labels = [upstream.as_str(), instance];
                let _ = f.upstream_duration.remove_label_values(&labels);
                let _ = f.ejections.remove_label_values(&labels);
                let _ = f.connect_failures.remove_label_values(&labels);
            }
            Self::StreamTarget {
                listener,
                upstream,
                instance,
            } => {
                let labels = [listener.as_str(), upstream, instance];
                let _ = f.tcp_connections.remove_label_values(&labels);
                let _ = f.tcp_active.remove_label_values(&labels);
            }
        }
    }
}
