//! Admission by waiting time: at most `max_running` requests run in components at once; the
//! others wait for a slot in arrival order. A request is shed (503 with `Retry-After`) once it
//! has waited `max_wait` *and* every slot has been taken for at least [`BURST`]: a burst that the
//! server works off (a cold start, many clients at once) waits and is served, while a queue that
//! stays longer than the bound sheds, so that the requests admitted are answered within about
//! `max_wait` plus their own run. (CoDel's idea: shed on a standing queue, not on a burst.) The
//! bound holds when the cores are too busy to wake a waiting request on time: a slot it finds
//! only after its deadline is not taken.
//!
//! A request that cannot be served in time anyway is shed on arrival: when the requests already
//! waiting, at the measured time a request holds its slot, would keep it waiting past the bound
//! (`max_wait`, or what is left of a burst's allowance if more), it gets its 503 at once instead
//! of after waiting for it. So a slow model sheds before its queue grows, and the requests it
//! admits wait about the bound at most. A queue that drained by shedding is no worked-off burst:
//! a slot found free within [`SHED_MEMORY`] of a shed does not start a new allowance, so clients
//! that come back after their `Retry-After` meet the bound, not a fresh burst's allowance (CoDel
//! likewise re-enters its dropping state at once when a queue builds again soon after it left it).

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

/// How long after a request was shed a burst earns no allowance of its own: long enough to
/// cover the clients told to retry after [`RETRY_AFTER`], and a margin for their jitter.
pub const SHED_MEMORY: Duration = Duration::from_secs(4 * RETRY_AFTER.as_secs());

/// What a shed request's `Retry-After` says.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

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
    /// When a request was last shed: a full spell does not end within [`SHED_MEMORY`] of it.
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
            if spell.last_shed.is_none_or(|at| at.elapsed() >= SHED_MEMORY) {
                spell.full_since = None;
            }
            drop(spell);
            metrics::queue_wait(Duration::ZERO, true);
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
                let acquired = tokio::time::timeout_at(deadline.into(), &mut acquire).await;
                let now = Instant::now();
                // Past its deadline a request waits on only within a full spell's burst
                // allowance; a slot seen first when the task is polled late (the cores busy
                // running guests) was not found in time, and goes to the next in line.
                if now >= deadline {
                    // If a slot came free in between, a new full spell began, with its own
                    // allowance.
                    deadline = self.spell().full_since.unwrap_or(now) + BURST;
                    if deadline <= now {
                        break None;
                    }
                }
                if let Ok(permit) = acquired {
                    break Some(permit.expect("the running semaphore is never closed"));
                }
            }
        };
        drop(waiting);
        if permit.is_none() {
            self.spell().last_shed = Some(Instant::now());
        }
        metrics::queue_wait(arrived.elapsed(), permit.is_some());
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
        let admission = one_slot(Duration::from_millis(100));
        let _held = hold_past_the_allowance(&admission).await;
        let shed = admission.admit();
        tokio::pin!(shed);
        // Shed on its first poll, without waiting for its deadline.
        assert!(matches!(poll_once(shed.as_mut()).await, Some(None)));
        assert_eq!(admission.waiting.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_request_that_can_be_served_in_time_waits_for_its_slot() {
        let admission = one_slot(Duration::from_millis(10));
        let held = hold_past_the_allowance(&admission).await;
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
    async fn a_slot_found_only_after_the_deadline_is_not_taken() {
        let admission = one_slot(Duration::from_millis(1));
        let held = hold_past_the_allowance(&admission).await;
        let waiter = admission.admit();
        tokio::pin!(waiter);
        assert!(poll_once(waiter.as_mut()).await.is_none(), "it waits");
        // The executor is held up past the waiter's deadline, and the slot comes free meanwhile.
        std::thread::sleep(MAX_WAIT * 2);
        drop(held);
        assert!(
            waiter.await.is_none(),
            "shed, though the slot is free when it is polled"
        );
        // The slot went back: the next request runs at once.
        assert!(
            poll_once(std::pin::pin!(admission.admit()))
                .await
                .is_some_and(|r| r.is_some())
        );
    }

    #[tokio::test]
    async fn a_queue_drained_by_shedding_gets_no_new_burst_allowance() {
        let admission = one_slot(Duration::from_millis(100));
        let held = hold_past_the_allowance(&admission).await;
        let spell = admission.spell().full_since;
        assert!(admission.admit().await.is_none(), "shed on arrival");
        drop(held);
        // Clients told to retry come back after `Retry-After`, past a burst's allowance.
        admission.spell().last_shed = Some(Instant::now() - RETRY_AFTER - BURST);
        let next = admission.admit().await.expect("the slot is free");
        assert_eq!(admission.spell().full_since, spell, "the full spell goes on");
        drop(next);
        // Long after the last shed, a free slot ends the spell: the next burst has its allowance.
        admission.spell().last_shed = Some(Instant::now() - SHED_MEMORY);
        let _later = admission.admit().await.expect("the slot is free");
        assert_eq!(admission.spell().full_since, None, "the spell ended");
    }

    /// An admission with one slot, a request measured to hold it for `run`.
    fn one_slot(run: Duration) -> Admission {
        let admission = Admission::new(1, MAX_WAIT);
        admission.ran(run);
        admission
    }

    /// Takes the one slot, as if it had been taken for longer than a burst's allowance.
    async fn hold_past_the_allowance(admission: &Admission) -> Running<'_> {
        let held = admission.admit().await.expect("a free slot");
        admission.spell().full_since = Some(Instant::now() - BURST);
        held
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
