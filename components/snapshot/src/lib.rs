//! What the tract components (the Spin build and the portable one) share besides the handler:
//! the models an instance serves ([`open`]), loaded by a Wizer snapshot at build time and
//! checked against the mounted files at run time, and the snapshot world's exports, `init` (what
//! `spinfer snapshot` calls once) and `ready`. A component exports them with
//! `spinfer_snapshot::export!(Exports with_types_in spinfer_snapshot::bindings)`, where
//! `type Exports = spinfer_snapshot::Exports<S>` names where its settings come from.

mod models;

use std::marker::PhantomData;

use spinfer_handler::{Instance, Source};

pub use models::open;

/// The snapshot world's bindings (`wit/inference.wit`).
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "spinfer:inference/snapshot",
        pub_export_macro: true,
        default_bindings_module: "spinfer_snapshot::bindings",
    });
}

pub use bindings::export;

unsafe extern "C" {
    /// Runs static constructors (tract registers its kernels in them). Wizer calls `init`
    /// on a fresh instance in which nothing has run yet.
    fn __wasm_call_ctors();
    /// wasi-libc forgets the preopened directories and the environment it read, so that the
    /// snapshot holds no handles of the build-time instance and reads them anew at run time.
    fn __wasilibc_reset_preopens();
    fn __wasilibc_deinitialize_environ();
}

/// The snapshot exports of a component whose settings come from `S`.
pub struct Exports<S>(PhantomData<S>);

impl<S: Source> bindings::Guest for Exports<S> {
    fn init() {
        // SAFETY: called once by the snapshot tool, before any other export.
        unsafe { __wasm_call_ctors() };
        models::preload_for_snapshot();
        // SAFETY: no file or environment access is in flight; both are reinitialised lazily.
        unsafe {
            __wasilibc_reset_preopens();
            __wasilibc_deinitialize_environ();
        }
    }

    fn ready() -> Result<String, String> {
        // A plain export, so the settings' reads run to completion here, as `S` waits.
        let instance = S::block_on(Instance::get::<S>(open));
        instance
            .and_then(|instance| instance.ready())
            .map_err(|e| e.message)
    }
}
