//! Admission by waiting time: at most `max_running` requests run in components at once; the
//! others wait for a slot in arrival order. A request is shed (503 with `Retry-After`) once it
//! has waited `max_wait` *and* every slot has been taken for at least [`BURST`]: a burst that the
//! server works off (a cold start, many clients at once) waits and is served, while a queue that
//! stays longer than the bound sheds, so that the requests admitted are answered within about
//! `max_wait` plus their own run. (CoDel's idea: shed on a standing queue, not on a burst.)
//!
//! A request that cannot be served in time anyway is shed on arrival: when the requests already
//! waiting, at the measured time a request holds its slot, would keep it waiting past the bound
//! (`max_wait`, or what is left of a burst's allowance if more), it gets its 503 at once instead
//! of after waiting for it. So a slow model sheds before its queue grows, and the requests it
//! admits wait about the bound at most. A queue that drained by shedding is no worked-off burst:
//! a slot found free within [`BURST`] of a shed does not start a new allowance.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::metrics;

/// Requests run at once per CPU core by default: enough to keep every core busy while one
/// waits on I/O; the rest wait their turn in order rather than share the cores.
pub const RUNNING_PER_CORE: usize = 4;

/// How long a request may wait for a slot by default before it is shed.
pub const MAX_WAIT: Duration = Duration::from_millis(50);

/// How long every slot must have been taken before waiting requests are shed: a shorter burst
/// is queued whatever its waits.
pub const BURST: Duration = Duration::from_millis(500);

/// The default running limit: [`RUNNING_PER_CORE`] per core.
pub fn default_max_running() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    RUNNING_PER_CORE * cores
}

/// How much each new run moves the measured run time (an exponentially weighted mean).
const RUN_WEIGHT: f64 = 0.1;

pub struct Admission {
    running: Semaphore,
    slots: usize,
    max_wait: Duration,
    spell: Mutex<Spell>,
    /// Requests waiting for a slot now.
    waiting: AtomicUsize,
    /// How long a request holds its slot, in nanoseconds (0 until one has run).
    run_nanos: AtomicU64,
}

/// The spell of full slots, under one lock.
#[derive(Default)]
struct Spell {
    /// Since when every arrival has found all slots taken; `None` once one found a free slot.
    full_since: Option<Instant>,
    /// When a request was last shed: a full spell does not end within [`BURST`] of it.
    last_shed: Option<Instant>,
}

/// A running slot: measures how long it was held.
pub struct Running<'a> {
    admission: &'a Admission,
    _permit: SemaphorePermit<'a>,
    since: Instant,
}

/// One request counted as waiting, until it stops waiting (admitted, shed, or its client gone).
struct Waiting<'a> {
    count: &'a AtomicUsize,
    /// How many were waiting before it.
    ahead: usize,
}

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Waiting<'a> {
        let ahead = count.fetch_add(1, Ordering::Relaxed);
        Waiting { count, ahead }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.admission.ran(self.since.elapsed());
    }
}

impl Admission {
    pub fn new(max_running: usize, max_wait: Duration) -> Admission {
        Admission {
            running: Semaphore::new(max_running.max(1)),
            slots: max_running.max(1),
            max_wait,
            spell: Mutex::default(),
            waiting: AtomicUsize::new(0),
            run_nanos: AtomicU64::new(0),
        }
    }

    /// Folds one run's time into the measured run time.
    fn ran(&self, took: Duration) {
        let took = took.as_nanos().min(u128::from(u64::MAX)) as f64;
        let _ = self
            .run_nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |mean| {
                let next = if mean == 0 {
                    took
                } else {
                    mean as f64 + RUN_WEIGHT * (took - mean as f64)
                };
                Some(next.max(1.0) as u64)
            });
    }

    /// How long a request that arrives now would wait: the requests waiting ahead of it, and
    /// itself, each holding a slot for the measured run time, `slots` at a time.
    fn expected_wait(&self, ahead: usize) -> Duration {
        let run = self.run_nanos.load(Ordering::Relaxed);
        Duration::from_nanos(run.saturating_mul(ahead as u64 + 1) / self.slots as u64)
    }

    fn running<'a>(&'a self, permit: SemaphorePermit<'a>) -> Running<'a> {
        Running {
            admission: self,
            _permit: permit,
            since: Instant::now(),
        }
    }

    fn spell(&self) -> std::sync::MutexGuard<'_, Spell> {
        self.spell.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A running slot, at once or after waiting behind the requests that came first; `None`
    /// when the request is shed.
    pub async fn admit(&self) -> Option<Running<'_>> {
        if let Ok(permit) = self.running.try_acquire() {
            // A free slot ends the full spell, unless the server was shedding just now: a queue
            // that drained by shedding is not a burst that was worked off.
            let mut spell = self.spell();
            if spell.last_shed.is_none_or(|at| at.elapsed() >= BURST) {
                spell.full_since = None;
            }
            drop(spell);
            metrics::queue_wait(Duration::ZERO);
            return Some(self.running(permit));
        }
        let arrived = Instant::now();
        let full_since = *self.spell().full_since.get_or_insert(arrived);
        let mut deadline = (arrived + self.max_wait).max(full_since + BURST);
        let waiting = Waiting::new(&self.waiting);
        let permit = if arrived + self.expected_wait(waiting.ahead) > deadline {
            None // it would still be waiting at its deadline
        } else {
            let acquire = self.running.acquire();
            tokio::pin!(acquire);
            loop {
                match tokio::time::timeout_at(deadline.into(), &mut acquire).await {
                    Ok(permit) => {
                        break Some(permit.expect("the running semaphore is never closed"));
                    }
                    Err(_) => {
                        // Shed only if the slots have stayed full all along; if one came free
                        // in between, a new full spell began, with its own burst allowance.
                        let since = self.spell().full_since.unwrap_or_else(Instant::now);
                        let later = since + BURST;
                        if later <= Instant::now() {
                            break None;
                        }
                        deadline = later;
                    }
                }
            }
        };
        drop(waiting);
        if permit.is_none() {
            self.spell().last_shed = Some(Instant::now());
        }
        metrics::queue_wait(arrived.elapsed());
        permit.map(|permit| self.running(permit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_wait_is_the_queue_ahead_at_the_measured_run_time() {
        let admission = Admission::new(2, MAX_WAIT);
        assert_eq!(admission.expected_wait(5), Duration::ZERO, "nothing measured yet");
        admission.ran(Duration::from_millis(10));
        assert_eq!(admission.expected_wait(3), Duration::from_millis(20));
        // Later runs move the mean by a tenth of the difference.
        admission.ran(Duration::from_millis(20));
        assert_eq!(admission.expected_wait(1), Duration::from_millis(11));
    }

    #[tokio::test]
    async fn a_standing_queue_sheds_on_arrival_what_would_wait_past_the_bound() {
        let admission = Admission::new(1, MAX_WAIT);
        admission.ran(Duration::from_millis(100));
        let _held = admission.admit().await.expect("a free slot");
        // The slot has been taken for longer than a burst's allowance.
        admission.spell().full_since = Some(Instant::now() - BURST);
        let shed = admission.admit();
        tokio::pin!(shed);
        // Shed on its first poll, without waiting for its deadline.
        assert!(matches!(poll_once(shed.as_mut()).await, Some(None)));
        assert_eq!(admission.waiting.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_request_that_can_be_served_in_time_waits_for_its_slot() {
        let admission = Admission::new(1, MAX_WAIT);
        admission.ran(Duration::from_millis(10));
        let held = admission.admit().await.expect("a free slot");
        admission.spell().full_since = Some(Instant::now() - BURST);
        let waiter = admission.admit();
        tokio::pin!(waiter);
        // It waits (the slot is taken) …
        assert!(poll_once(waiter.as_mut()).await.is_none());
        assert_eq!(admission.waiting.load(Ordering::Relaxed), 1);
        // … and runs once the slot comes free.
        drop(held);
        assert!(waiter.await.is_some());
        assert_eq!(admission.waiting.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_queue_drained_by_shedding_gets_no_new_burst_allowance() {
        let admission = Admission::new(1, MAX_WAIT);
        admission.ran(Duration::from_millis(100));
        let held = admission.admit().await.expect("a free slot");
        let spell = Instant::now() - BURST;
        admission.spell().full_since = Some(spell);
        assert!(admission.admit().await.is_none(), "shed on arrival");
        drop(held);
        let _next = admission.admit().await.expect("the slot is free");
        assert_eq!(
            admission.spell().full_since,
            Some(spell),
            "the full spell goes on"
        );
    }

    /// Polls `future` once: its output if it is ready.
    async fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Option<F::Output> {
        let mut future = Some(future);
        std::future::poll_fn(|context| {
            let polled = future.as_mut().expect("polled once").as_mut().poll(context);
            std::task::Poll::Ready(match polled {
                std::task::Poll::Ready(value) => Some(value),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
