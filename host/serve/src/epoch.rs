//! Request deadlines: a thread advances the engine's epoch every [`EPOCH_TICK`], so that guest
//! code yields to the executor and an expired request can be stopped (by the per-request timer
//! of `reuse::Expiration`, the hook wasmtime-wasi-http gives for it); [`exceeded`] tells a
//! request that failed at its deadline from one whose component failed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::Engine;
use wasmtime_wasi_http::handler::{ExpirationError, TrapOrPanicError};

/// Epoch ticks happen this often; guest code yields to the executor at each one.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Advances the engine's epoch so that deadlines expire; stops when dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub fn start(engine: Engine) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        });
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Whether a request that ran for `ran` and failed with `error` was stopped at its deadline
/// `timeout`: its instance expired, or the epoch interrupt reached it (as its worker's trap).
pub fn exceeded(error: &wasmtime::Error, ran: Duration, timeout: Duration) -> bool {
    let interrupted = error
        .downcast_ref::<wasmtime::Trap>()
        .is_some_and(|trap| *trap == wasmtime::Trap::Interrupt);
    error.is::<ExpirationError>() || interrupted || (error.is::<TrapOrPanicError>() && ran >= timeout)
}
