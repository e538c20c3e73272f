//! Latency samples, percentiles and time series.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One operation: when it started (seconds since the run began), how long it took, and
/// whether it did what it should.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) at: f64,
    pub(crate) latency: f64,
    pub(crate) op: &'static str,
    pub(crate) ok: bool,
}

/// Collects samples from many tasks.
#[derive(Debug)]
pub(crate) struct Recorder {
    start: Instant,
    samples: Mutex<Vec<Sample>>,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Recorder {
            start: Instant::now(),
            samples: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn start(&self) -> Instant {
        self.start
    }

    /// Records an operation that began at `began` (its arrival, for queued work).
    pub(crate) fn record(&self, op: &'static str, began: Instant, ok: bool) {
        let sample = Sample {
            at: began.duration_since(self.start).as_secs_f64(),
            latency: began.elapsed().as_secs_f64(),
            op,
            ok,
        };
        self.samples.lock().expect("recorder").push(sample);
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    pub(crate) fn samples(&self) -> Vec<Sample> {
        self.samples.lock().expect("recorder").clone()
    }
}

/// The `p`-th percentile (0-100) of sorted values.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Count, throughput and latency of a set of samples.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct Summary {
    pub(crate) count: usize,
    pub(crate) ok: usize,
    pub(crate) per_second: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
}

/// Summarizes the samples `keep` selects, over `seconds` of wall time.
pub(crate) fn summarize(
    samples: &[Sample],
    seconds: f64,
    keep: impl Fn(&Sample) -> bool,
) -> Summary {
    let mut latencies: Vec<f64> = samples
        .iter()
        .filter(|s| keep(s))
        .map(|s| s.latency)
        .collect();
    latencies.sort_by(f64::total_cmp);
    Summary {
        count: latencies.len(),
        ok: samples.iter().filter(|s| keep(s) && s.ok).count(),
        per_second: latencies.len() as f64 / seconds,
        p50_ms: percentile(&latencies, 50.0) * 1e3,
        p99_ms: percentile(&latencies, 99.0) * 1e3,
    }
}

/// One point of a time series.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct Point {
    /// Start of the window, seconds since the run began.
    pub(crate) t: f64,
    /// Operations finished in the window, per second.
    pub(crate) per_second: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
}

/// Throughput (by completion time) and latency (of operations completed) per window.
pub(crate) fn series(
    samples: &[Sample],
    window: f64,
    until: f64,
    keep: impl Fn(&Sample) -> bool,
) -> Vec<Point> {
    // Whole windows only: a last, partial window would read as a drop.
    let n = (until / window).floor().max(1.0) as usize;
    let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); n];
    for s in samples.iter().filter(|s| keep(s)) {
        let i = ((s.at + s.latency) / window) as usize;
        if i < n {
            buckets[i].push(s.latency);
        }
    }
    buckets
        .into_iter()
        .enumerate()
        .map(|(i, mut l)| {
            l.sort_by(f64::total_cmp);
            Point {
                t: i as f64 * window,
                per_second: l.len() as f64 / window,
                p50_ms: percentile(&l, 50.0) * 1e3,
                p99_ms: percentile(&l, 99.0) * 1e3,
            }
        })
        .collect()
}
