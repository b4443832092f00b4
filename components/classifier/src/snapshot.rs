//! The `init` export that `spinfer snapshot` (Wizer) calls once at build time, and `ready`.

wit_bindgen::generate!({
    path: "../../wit",
    world: "spinfer:inference/snapshot",
});

unsafe extern "C" {
    /// Runs static constructors (tract registers its kernels in them). Wizer calls `init`
    /// on a fresh instance in which nothing has run yet.
    fn __wasm_call_ctors();
    /// wasi-libc forgets the preopened directories and the environment it read, so that the
    /// snapshot holds no handles of the build-time instance and reads them anew at run time.
    fn __wasilibc_reset_preopens();
    fn __wasilibc_deinitialize_environ();
}

struct Snapshot;

impl Guest for Snapshot {
    fn init() {
        // SAFETY: called once by the snapshot tool, before any other export.
        unsafe { __wasm_call_ctors() };
        crate::models::preload_for_snapshot();
        // SAFETY: no file or environment access is in flight; both are reinitialised lazily.
        unsafe {
            __wasilibc_reset_preopens();
            __wasilibc_deinitialize_environ();
        }
    }

    fn ready() -> Result<String, String> {
        // A plain export, so the variables' async reads run to completion here.
        let instance = wit_bindgen::block_on(spinfer_spin_http::Instance::get(crate::models::open));
        instance
            .and_then(|instance| instance.ready())
            .map_err(|e| e.message)
    }
}

export!(Snapshot);
