//! Gauges of live state (requests in flight, health), read at scrape time from whatever owns
//! that state, so that requests pay nothing for them and metrics needs no runtime.

use super::families::valid;
use super::names;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};

/// The live state of every target, read at scrape time.
pub(crate) trait LiveTargets: Send + Sync {
    /// Calls `each` with the upstream, instance, requests in flight and availability of every
    /// target being served now.
    fn each_target(&self, each: &mut dyn FnMut(&str, &str, usize, bool));
}

/// Gauges of live target state, collected at scrape time.
pub(super) struct Live {
    targets: Box<dyn LiveTargets>,
    descs: Vec<Desc>,
}

/// The live gauges' names and help texts.
const LIVE_GAUGES: [(&str, &str); 2] = [
    (names::IN_FLIGHT, "Requests being served by an instance"),
    (
        names::HEALTH,
        "1 when an instance may take requests, else 0",
    ),
];

impl Live {
    pub(super) fn new(targets: Box<dyn LiveTargets>) -> Self {
        let descs = LIVE_GAUGES
            .iter()
            .map(|(name, help)| {
                valid(Desc::new(
                    name.to_string(),
                    help.to_string(),
                    vec!["upstream".into(), "instance".into()],
                    Default::default(),
                ))
            })
            .collect();
        Self { targets, descs }
    }
}

impl Collector for Live {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let [in_flight, health] = LIVE_GAUGES.map(|(name, help)| {
            valid(IntGaugeVec::new(
                Opts::new(name, help),
                &["upstream", "instance"],
            ))
        });
        self.targets
            .each_target(&mut |upstream, instance, requests, available| {
                let labels = [upstream, instance];
                in_flight
                    .with_label_values(&labels)
                    .set(i64::try_from(requests).unwrap_or(i64::MAX));
                health.with_label_values(&labels).set(i64::from(available));
            });
        let mut families = in_flight.collect();
        families.extend(health.collect());
        families
    }
}
