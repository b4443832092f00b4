//! Admission by waiting time: at most `max_running` requests run in components at once; the
//! others wait for a slot in arrival order. A request is shed (503 with `Retry-After`) once it
//! has waited `max_wait` *and* every slot has been taken for at least [`BURST`]: a burst that the
//! server works off (a cold start, many clients at once) waits and is served, while a queue that
//! stays longer than the bound sheds, so that the requests admitted are answered within about
//! `max_wait` plus their own run. (CoDel's idea: shed on a standing queue, not on a burst.)

use std::sync::Mutex;
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

pub struct Admission {
    running: Semaphore,
    max_wait: Duration,
    /// Since when every arrival has found all slots taken; `None` once one found a free slot.
    full_since: Mutex<Option<Instant>>,
}

impl Admission {
    pub fn new(max_running: usize, max_wait: Duration) -> Admission {
        Admission {
            running: Semaphore::new(max_running.max(1)),
            max_wait,
            full_since: Mutex::new(None),
        }
    }

    fn full_since(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.full_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A running slot, at once or after waiting behind the requests that came first; `None`
    /// when the request is shed.
    pub async fn admit(&self) -> Option<SemaphorePermit<'_>> {
        if let Ok(permit) = self.running.try_acquire() {
            *self.full_since() = None;
            metrics::queue_wait(Duration::ZERO);
            return Some(permit);
        }
        let arrived = Instant::now();
        let full_since = *self.full_since().get_or_insert(arrived);
        let mut deadline = (arrived + self.max_wait).max(full_since + BURST);
        let acquire = self.running.acquire();
        tokio::pin!(acquire);
        let permit = loop {
            match tokio::time::timeout_at(deadline.into(), &mut acquire).await {
                Ok(permit) => break Some(permit.expect("the running semaphore is never closed")),
                Err(_) => {
                    // Shed only if the slots have stayed full all along; if one came free in
                    // between, a new full spell began, with its own burst allowance.
                    let since = (*self.full_since()).unwrap_or_else(Instant::now);
                    let later = since + BURST;
                    if later <= Instant::now() {
                        break None;
                    }
                    deadline = later;
                }
            }
        };
        metrics::queue_wait(arrived.elapsed());
        permit
    }
}
