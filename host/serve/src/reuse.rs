//! How long an instance lives under the [`ReusePolicy`]: how many requests it takes, how many
//! at once, and when it expires (idle, a request past its deadline, or the server stopping);
//! [`Lifecycle`] counts the live instances so that the server can wait for the last one.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::component::GuestTaskId;
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi_http::handler::{ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus};

use tokio::sync::watch;

use crate::store::Host;
use crate::{ReusePolicy, metrics};

/// The app's instances, all components together: how many are alive, and whether the server
/// is stopping. Once it stops, no instance takes a new request, an idle one ends at once and a
/// busy one ends when its requests are answered (or past their deadline), each through
/// [`WorkerState::drop`], while the tokio runtime still runs.
#[derive(Clone)]
pub struct Lifecycle {
    live: watch::Sender<usize>,
    stopping: watch::Sender<bool>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            live: watch::Sender::new(0),
            stopping: watch::Sender::new(false),
        }
    }
}

impl Lifecycle {
    pub fn started(&self) {
        self.live.send_modify(|live| *live += 1);
    }

    fn ended(&self) {
        self.live.send_modify(|live| *live -= 1);
    }

    pub fn live(&self) -> usize {
        *self.live.borrow()
    }

    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Tells every instance to end once idle, and waits until none is alive.
    pub async fn stop(&self) {
        self.stopping.send_replace(true);
        let mut live = self.live.subscribe();
        // The sender lives in `self`, so the wait cannot fail.
        let _ = live.wait_for(|live| *live == 0).await;
    }

    /// Resolves when [`Lifecycle::stop`] is called.
    fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopping = self.stopping.subscribe();
        async move {
            let _ = stopping.wait_for(|stopping| *stopping).await;
        }
    }
}

pub struct Worker {
    pub reuse: ReusePolicy,
    pub request_timeout: Duration,
    /// The component it is an instance of, for metrics.
    pub component: Arc<str>,
    /// Requests started on it so far.
    pub served: AtomicUsize,
    pub lifecycle: Lifecycle,
}

impl WorkerState for Worker {
    type StoreData = Host;
    type RequestData = u64;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.reuse.max_reuse || self.lifecycle.is_stopping() {
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
        self.lifecycle.ended();
    }
}

pub struct Expiration {
    idle_timeout: Duration,
    request_timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// Resolves when the server stops; `None` once it has. (The mutex only makes it `Sync`:
    /// `poll` has the expiration to itself.)
    stopped: Option<Mutex<Pin<Box<dyn Future<Output = ()> + Send>>>>,
}

impl Expiration {
    pub fn new(idle_timeout: Duration, request_timeout: Duration, lifecycle: &Lifecycle) -> Expiration {
        Expiration {
            idle_timeout,
            request_timeout,
            sleep: Box::pin(tokio::time::sleep(Duration::MAX)),
            stopped: Some(Mutex::new(Box::pin(lifecycle.stopped()))),
        }
    }
}

impl WorkerExpiration for Expiration {
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>, status: WorkerStatus, start: Instant) -> Poll<()> {
        let me = self.get_mut();
        if let Some(stopped) = &mut me.stopped {
            let stopped = stopped.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
            if stopped.as_mut().poll(cx).is_ready() {
                me.stopped = None;
            }
        }
        // Stopping: an idle instance ends now; a busy one keeps its requests' deadline.
        if me.stopped.is_none() && status == WorkerStatus::Idle {
            return Poll::Ready(());
        }
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
