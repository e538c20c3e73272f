//! A circuit breaker per dependency: once a store is seen down, nothing waits on it again
//! until a single probe finds it back.
//!
//! A [`CircuitBreaker`] is closed while its dependency answers. After
//! [`BreakerConfig::failures_to_open`] failures in a row it opens: [`CircuitBreaker::permit`]
//! refuses calls at once, so reads that have a fallback (a cached catalog, a persistent cart)
//! answer from it without waiting out a timeout, and calls without one fail fast. After
//! [`BreakerConfig::open_for`] the next caller is let through as the one probe (half open);
//! its success closes the breaker, its failure opens it again. Every change of state is
//! logged with `tracing` under the breaker's name.
//!
//! Only failures of the dependency itself count ([`crate::error::ErrorKind::Transient`]): a
//! conflict or a not-found is an answer, and proves the dependency is up.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// When a breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Failures in a row that open the breaker.
    pub failures_to_open: u32,
    /// How long an open breaker refuses calls before it lets one probe through.
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    /// Opens after 2 failures in a row; probes every second.
    fn default() -> Self {
        BreakerConfig {
            failures_to_open: 2,
            open_for: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; everyone else is refused until it reports.
    HalfOpen,
}

/// What [`CircuitBreaker::permit`] says about a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// The dependency is up: call it.
    Call,
    /// The dependency was down; this call is the probe that finds out whether it is back.
    Probe,
    /// The dependency is down: do not call it, answer from a fallback or fail fast.
    Refused,
}

impl Permit {
    /// Whether the call may go ahead.
    pub fn allowed(self) -> bool {
        !matches!(self, Permit::Refused)
    }
}

/// A circuit breaker (see the module docs).
#[derive(Debug)]
pub struct CircuitBreaker {
    name: &'static str,
    config: BreakerConfig,
    state: Mutex<(State, Option<DateTime<Utc>>)>,
}

impl CircuitBreaker {
    /// A closed breaker for the dependency `name` (used in logs).
    pub fn new(name: &'static str, config: BreakerConfig) -> Self {
        CircuitBreaker {
            name,
            config,
            state: Mutex::new((State::Closed { failures: 0 }, None)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (State, Option<DateTime<Utc>>)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a call may go to the dependency now. A [`Permit::Probe`] must be followed by
    /// [`CircuitBreaker::success`] or [`CircuitBreaker::failure`] (or the breaker stays half
    /// open until [`BreakerConfig::open_for`] passes again).
    pub fn permit(&self) -> Permit {
        let mut guard = self.lock();
        match guard.0 {
            State::Closed { .. } => Permit::Call,
            State::Open { until } if Instant::now() >= until => {
                guard.0 = State::HalfOpen;
                tracing::info!(dependency = self.name, "circuit half open: probing");
                Permit::Probe
            }
            State::Open { .. } | State::HalfOpen => Permit::Refused,
        }
    }

    /// The dependency answered.
    pub fn success(&self) {
        let mut guard = self.lock();
        if !matches!(guard.0, State::Closed { failures: 0 }) {
            if guard.1.is_some() {
                tracing::info!(dependency = self.name, "circuit closed: dependency is back");
            }
            *guard = (State::Closed { failures: 0 }, None);
        }
    }

    /// The dependency failed (unreachable, timed out).
    pub fn failure(&self) {
        let mut guard = self.lock();
        let open = |guard: &mut (State, Option<DateTime<Utc>>)| {
            guard.0 = State::Open {
                until: Instant::now() + self.config.open_for,
            };
            guard.1.get_or_insert_with(Utc::now);
        };
        match guard.0 {
            State::Closed { failures } if failures + 1 >= self.config.failures_to_open => {
                open(&mut guard);
                tracing::warn!(dependency = self.name, "circuit open: dependency is down");
            }
            State::Closed { failures } => {
                guard.0 = State::Closed {
                    failures: failures + 1,
                }
            }
            State::HalfOpen | State::Open { .. } => {
                open(&mut guard);
                tracing::debug!(dependency = self.name, "circuit stays open: probe failed");
            }
        }
    }

    /// Since when the dependency is down (the breaker opened), `None` while it is up.
    pub fn down_since(&self) -> Option<DateTime<Utc>> {
        let guard = self.lock();
        match guard.0 {
            State::Closed { .. } => None,
            State::Open { .. } | State::HalfOpen => guard.1,
        }
    }

    /// Runs `probe` on the runtime in the background and records its outcome: for a caller
    /// that got [`Permit::Probe`] and answers from a fallback meanwhile, so no request waits
    /// on a dependency that may still be down.
    pub fn probe_in_background<T, E>(
        self: &Arc<Self>,
        probe: impl Future<Output = Result<T, E>> + Send + 'static,
        is_transient: fn(&E) -> bool,
    ) where
        T: Send + 'static,
        E: Send + 'static,
    {
        let breaker = self.clone();
        tokio::spawn(async move {
            let result = probe.await;
            breaker.record(&result, is_transient);
        });
    }

    /// Records the outcome of a call: a transient error counts as a failure, anything else
    /// (success, or an answer such as not-found) as a success.
    pub fn record<T, E>(&self, result: &Result<T, E>, is_transient: impl FnOnce(&E) -> bool) {
        match result {
            Err(e) if is_transient(e) => self.failure(),
            _ => self.success(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(open_for: Duration) -> CircuitBreaker {
        CircuitBreaker::new(
            "test",
            BreakerConfig {
                failures_to_open: 2,
                open_for,
            },
        )
    }

    #[test]
    fn opens_after_failures_in_a_row_and_refuses_at_once() {
        let b = breaker(Duration::from_secs(60));
        assert_eq!(b.permit(), Permit::Call);
        b.failure();
        assert_eq!(b.permit(), Permit::Call, "one failure is not an outage");
        b.success();
        b.failure();
        assert_eq!(
            b.permit(),
            Permit::Call,
            "the count restarts after a success"
        );
        b.failure();
        assert_eq!(b.permit(), Permit::Refused);
        assert!(b.down_since().is_some());
    }

    #[test]
    fn one_probe_at_a_time_finds_the_way_back() {
        let b = breaker(Duration::ZERO);
        b.failure();
        b.failure();
        let since = b.down_since().expect("down");
        assert_eq!(b.permit(), Permit::Probe);
        assert_eq!(b.permit(), Permit::Refused, "only one probe is out");
        b.failure();
        assert_eq!(b.down_since(), Some(since), "down since the first failure");
        assert_eq!(b.permit(), Permit::Probe);
        b.success();
        assert_eq!(b.permit(), Permit::Call);
        assert_eq!(b.down_since(), None);
    }

    #[test]
    fn answers_that_are_not_outages_keep_it_closed() {
        let b = breaker(Duration::from_secs(60));
        for _ in 0..5 {
            b.record(&Err::<(), _>("not found"), |_| false);
        }
        assert_eq!(b.permit(), Permit::Call);
        b.record(&Err::<(), _>("down"), |_| true);
        b.record(&Err::<(), _>("down"), |_| true);
        assert_eq!(b.permit(), Permit::Refused);
    }
}
