//! ONNX Runtime behind `wasi:nn` (`--nn ort`), compiled in with the `ort` cargo feature and
//! loaded at run time from `ORT_DYLIB_PATH` (e.g. the PyPI `onnxruntime` wheel's
//! `capi/libonnxruntime.so.*`, or `onnxruntime-gpu` for CUDA).
//!
//! An ONNX Runtime session runs one call at a time, so each graph keeps a small pool of
//! sessions, one per core: concurrent requests use different sessions instead of queueing
//! behind one lock. A GPU target registers CUDA with `error_on_failure`: without a usable GPU
//! the server does not start, rather than silently running on the CPU.

use super::nn::NnTarget;

#[cfg(not(feature = "ort"))]
pub fn graph(
    _onnx: &std::path::Path,
    _target: NnTarget,
) -> anyhow::Result<Box<dyn wasmtime_wasi_nn::backend::BackendGraph>> {
    anyhow::bail!(
        "this spinfer was built without ONNX Runtime; rebuild with `cargo build --release -p spinfer --features ort`"
    )
}

#[cfg(feature = "ort")]
pub use with_ort::graph;

#[cfg(feature = "ort")]
mod with_ort {
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    use anyhow::{Context as _, Result, anyhow, bail};
    use ort::execution_providers::CUDAExecutionProvider;
    use ort::session::Session;
    use wasmtime_wasi_nn::ExecutionContext;
    use wasmtime_wasi_nn::backend::{BackendError, BackendGraph};

    use super::NnTarget;
    use crate::serve::nn::Context;

    const ITEM_LEN: usize = 28 * 28;

    /// Loads the shared library once per process.
    fn init() -> Result<()> {
        static INIT: OnceLock<Result<(), String>> = OnceLock::new();
        INIT.get_or_init(|| {
            let path = std::env::var("ORT_DYLIB_PATH").map_err(|_| {
                "--nn ort needs ORT_DYLIB_PATH: the path of libonnxruntime.so, e.g. \
                 <venv>/lib/python3.*/site-packages/onnxruntime/capi/libonnxruntime.so.1.22.1"
                    .to_string()
            })?;
            if !Path::new(&path).is_file() {
                return Err(format!("ORT_DYLIB_PATH={path} is not a file"));
            }
            // ort panics inside calls if the library is unusable: check it here, at start.
            std::panic::catch_unwind(|| ort::init_from(&path).commit())
                .map_err(|_| format!("cannot load ONNX Runtime from {path}"))?
                .map_err(|e| format!("cannot load ONNX Runtime from {path}: {e}"))?;
            Ok(())
        })
        .clone()
        .map_err(anyhow::Error::msg)
    }

    struct Pool {
        sessions: Vec<Mutex<Session>>,
        next: AtomicUsize,
    }

    impl Pool {
        fn run(&self, values: &[f32], batch: usize) -> Result<Vec<f32>, String> {
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            let n = self.sessions.len();
            // A free session if there is one, else wait for this request's own slot.
            let mut session = (0..n)
                .find_map(|i| self.sessions[(start + i) % n].try_lock().ok())
                .map_or_else(|| self.sessions[start % n].lock(), Ok)
                .map_err(|_| "an ONNX Runtime session panicked".to_string())?;
            let input = ort::value::Tensor::from_array(([batch, 1, 28, 28], values.to_vec()))
                .map_err(|e| e.to_string())?;
            let outputs = session
                .run(ort::inputs!["input" => input])
                .map_err(|e| e.to_string())?;
            let (_, probs) = outputs["probs"]
                .try_extract_tensor::<f32>()
                .map_err(|e| e.to_string())?;
            Ok(probs.to_vec())
        }
    }

    struct OrtGraph(Arc<Pool>);

    impl BackendGraph for OrtGraph {
        fn init_execution_context(&self) -> Result<ExecutionContext, BackendError> {
            let pool = self.0.clone();
            Ok(Context::boxed(
                move |values: &[f32], batch| pool.run(values, batch),
                ITEM_LEN,
            ))
        }
    }

    fn session(onnx: &Path, target: NnTarget) -> Result<Session> {
        let mut builder = Session::builder()?.with_intra_threads(1)?;
        if target == NnTarget::Gpu {
            builder = builder
                .with_execution_providers([CUDAExecutionProvider::default().build().error_on_failure()])
                .map_err(|e| anyhow!("--nn-target gpu: CUDA is not available to ONNX Runtime: {e}"))?;
        }
        builder
            .commit_from_file(onnx)
            .with_context(|| format!("ONNX Runtime cannot load {}", onnx.display()))
    }

    pub fn graph(onnx: &Path, target: NnTarget) -> Result<Box<dyn BackendGraph>> {
        init()?;
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        let sessions = (0..n)
            .map(|_| session(onnx, target).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        if sessions.is_empty() {
            bail!("no ONNX Runtime session");
        }
        Ok(Box::new(OrtGraph(Arc::new(Pool {
            sessions,
            next: AtomicUsize::new(0),
        }))))
    }
}
