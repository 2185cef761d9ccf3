//! A load generator: keep-alive and fresh-connection clients sending GETs until stopped,
//! tallying what they saw.

use super::http::{client, served_by};
use super::processes::poll_until;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What a load's workers saw: successes, failures and who served.
#[derive(Default)]
pub struct Tally {
    pub ok: usize,
    pub failed: Vec<String>,
    pub by_instance: std::collections::HashMap<String, usize>,
}

/// `workers` keep-alive clients sending GETs in a loop until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    /// Successful requests so far, readable while the load runs.
    served: Arc<AtomicUsize>,
    workers: Vec<std::thread::JoinHandle<Tally>>,
}

impl Load {
    pub fn start(url: String, workers: usize) -> Self {
        Self::start_with(url, workers, |_| client())
    }

    /// Half the workers keep their connection, half open a new one for every request.
    pub fn mixed(url: String, workers: usize) -> Self {
        Self::mixed_with(url, workers, reqwest::blocking::Client::builder)
    }

    /// As [`Load::mixed`], each client built from `base()` (e.g. one trusting a test CA).
    pub fn mixed_with(
        url: String,
        workers: usize,
        base: impl Fn() -> reqwest::blocking::ClientBuilder,
    ) -> Self {
        Self::start_with(url, workers, |i| {
            let builder = base().timeout(Duration::from_secs(10));
            let builder = if i % 2 == 0 {
                builder
            } else {
                builder.pool_max_idle_per_host(0)
            };
            builder.build().unwrap()
        })
    }

    /// Worker `i` uses `make(i)`.
    pub fn start_with(
        url: String,
        workers: usize,
        make: impl Fn(usize) -> reqwest::blocking::Client,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let workers = (0..workers)
            .map(|i| {
                let (url, stop, client) = (url.clone(), stop.clone(), make(i));
                let served = served.clone();
                std::thread::spawn(move || {
                    let mut tally = Tally::default();
                    while !stop.load(Ordering::Relaxed) {
                        match client.get(&url).send() {
                            Ok(r) if r.status() == 200 => {
                                tally.ok += 1;
                                served.fetch_add(1, Ordering::Relaxed);
                                *tally.by_instance.entry(served_by(&r)).or_default() += 1;
                            }
                            Ok(r) => {
                                tally
                                    .failed
                                    .push(format!("{}: {}", r.status(), r.text().unwrap()))
                            }
                            Err(e) => tally.failed.push(format!("{e:?}")),
                        }
                    }
                    tally
                })
            })
            .collect();
        Self {
            stop,
            served,
            workers,
        }
    }

    /// Successful requests so far.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::Relaxed)
    }

    /// Waits until `n` more requests have succeeded; panics after 10 s, as the load is stuck.
    pub fn wait_more(&self, n: usize) {
        let target = self.served() + n;
        poll_until(Duration::from_secs(10), || {
            (self.served() >= target).then_some(())
        })
        .unwrap_or_else(|| panic!("fewer than {n} requests succeeded in 10 s"));
    }

    pub fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for w in self.workers {
            let t = w.join().unwrap();
            total.ok += t.ok;
            total.failed.extend(t.failed);
            for (k, v) in t.by_instance {
                *total.by_instance.entry(k).or_default() += v;
            }
        }
        total
    }
}
