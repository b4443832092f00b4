//! Admission by waiting time: at most `max_running` requests run in components at once; the
//! others wait for a slot in arrival order, and one that has waited `max_wait` without getting
//! one is shed (503 with `Retry-After`). Ordinary load queues for a few milliseconds and is
//! served; only a queue longer than the bound sheds, so the requests admitted are answered
//! within about `max_wait` plus their own run.

use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::metrics;

/// Requests run at once per CPU core by default: enough to keep every core busy while one
/// waits on I/O; the rest wait their turn in order rather than share the cores.
pub const RUNNING_PER_CORE: usize = 4;

/// How long a request may wait for a slot by default before it is shed.
pub const MAX_WAIT: Duration = Duration::from_millis(50);

/// The default running limit: [`RUNNING_PER_CORE`] per core.
pub fn default_max_running() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    RUNNING_PER_CORE * cores
}

pub struct Admission {
    running: Semaphore,
    max_wait: Duration,
}

impl Admission {
    pub fn new(max_running: usize, max_wait: Duration) -> Admission {
        Admission {
            running: Semaphore::new(max_running.max(1)),
            max_wait,
        }
    }

    /// A running slot, at once or after waiting behind the requests that came first; `None`
    /// when none came free within the bound.
    pub async fn admit(&self) -> Option<SemaphorePermit<'_>> {
        if let Ok(permit) = self.running.try_acquire() {
            metrics::queue_wait(Duration::ZERO);
            return Some(permit);
        }
        let started = Instant::now();
        let permit = tokio::time::timeout(self.max_wait, self.running.acquire()).await;
        metrics::queue_wait(started.elapsed());
        // The semaphore is never closed.
        permit
            .ok()
            .map(|permit| permit.expect("the running semaphore is never closed"))
    }
}
