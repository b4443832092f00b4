//! How long an instance lives under the [`ReusePolicy`]: how many requests it takes, how many
//! at once, and when it expires (idle, or a request past its deadline).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::component::GuestTaskId;
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi_http::handler::{ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus};

use crate::store::Host;
use crate::{ReusePolicy, metrics};

pub struct Worker {
    pub reuse: ReusePolicy,
    pub request_timeout: Duration,
    /// The component it is an instance of, for metrics.
    pub component: Arc<str>,
    /// Requests started on it so far.
    pub served: AtomicUsize,
}

impl WorkerState for Worker {
    type StoreData = Host;
    type RequestData = u64;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.reuse.max_reuse {
            ShouldAccept::Never
        } else if concurrent >= self.reuse.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, Host>,
        _request: u64,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + 'static + Send + Sync>> {
        if self.served.fetch_add(1, Ordering::Relaxed) > 0 {
            metrics::instance_reused(&self.component);
        }
        // Each request gets the whole deadline, also in a reused instance.
        Box::pin(tokio::time::sleep(self.request_timeout))
    }

    fn drop(&self, store: Store<Host>, result: wasmtime::Result<()>) {
        if let Err(error) = result {
            tracing::warn!("instance ended with an error: {error:#}");
        }
        metrics::instance_dropped(&self.component);
        drop(store);
    }
}

pub struct Expiration {
    idle_timeout: Duration,
    request_timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Expiration {
    pub fn new(idle_timeout: Duration, request_timeout: Duration) -> Expiration {
        Expiration {
            idle_timeout,
            request_timeout,
            sleep: Box::pin(tokio::time::sleep(Duration::MAX)),
        }
    }
}

impl WorkerExpiration for Expiration {
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>, status: WorkerStatus, start: Instant) -> Poll<()> {
        let me = self.get_mut();
        let timeout = match status {
            WorkerStatus::Idle => me.idle_timeout,
            WorkerStatus::Requests | WorkerStatus::PostReturn => me.request_timeout,
        };
        match start.checked_add(timeout) {
            Some(deadline) => {
                let deadline = tokio::time::Instant::from_std(deadline);
                if me.sleep.deadline() != deadline {
                    me.sleep.as_mut().reset(deadline);
                }
                me.sleep.as_mut().poll(cx)
            }
            None => Poll::Pending,
        }
    }
}
