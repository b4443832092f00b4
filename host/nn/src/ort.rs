//! ONNX Runtime as a `wasi:nn` backend (`--nn ort`). The library is loaded at run time, so the
//! binary builds without it: from `ORT_DYLIB_PATH`, else the `onnxruntime` Python wheel (an
//! active virtual environment, `./.venv`, the user's and the system's site-packages), else the
//! system's library folders. With none found, the error lists every place it looked. The
//! input's shape and the output's name are read from the session.
//!
//! An ONNX Runtime session runs one call at a time, so each graph keeps a small pool of
//! sessions, one per core: concurrent requests use different sessions instead of queueing
//! behind one lock. A GPU target registers CUDA with `error_on_failure`: without a usable GPU
//! the server does not start, rather than silently running on the CPU.

use std::path::{Path, PathBuf};

use super::NnTarget;

/// The environment variable that names the library, as the `ort` crate reads it.
pub const DYLIB_VAR: &str = "ORT_DYLIB_PATH";

/// Where the library is looked for, in order, when `ORT_DYLIB_PATH` is not set.
fn candidate_dirs() -> Vec<PathBuf> {
    let mut site_packages = Vec::new();
    let mut venvs: Vec<PathBuf> = std::env::var_os("VIRTUAL_ENV")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    venvs.push(PathBuf::from(".venv"));
    for venv in venvs {
        site_packages.extend(python_dirs(&venv.join("lib"), "site-packages"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        site_packages.extend(python_dirs(
            &PathBuf::from(home).join(".local/lib"),
            "site-packages",
        ));
    }
    for lib in ["/usr/local/lib", "/usr/lib"] {
        site_packages.extend(python_dirs(Path::new(lib), "site-packages"));
        site_packages.extend(python_dirs(Path::new(lib), "dist-packages"));
    }
    let mut dirs: Vec<PathBuf> = site_packages
        .into_iter()
        .map(|dir| dir.join("onnxruntime/capi"))
        .collect();
    dirs.extend(
        [
            "/usr/local/lib",
            "/usr/lib",
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
        ]
        .map(PathBuf::from),
    );
    dirs
}

/// `<lib>/python3.*/<packages>` folders.
fn python_dirs(lib: &Path, packages: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(lib) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path().join(packages))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// `libonnxruntime.so`, or the newest `libonnxruntime.so.<version>`, in `dir`.
fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libonnxruntime.so"))
                && p.is_file()
        })
        .collect();
    found.sort();
    found.pop()
}

/// The library to load, or an error that lists where it looked.
pub fn find_library() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(DYLIB_VAR) {
        let path = PathBuf::from(path);
        anyhow::ensure!(path.is_file(), "{DYLIB_VAR}={} is not a file", path.display());
        return Ok(path);
    }
    let dirs = candidate_dirs();
    dirs.iter().find_map(|dir| library_in(dir)).ok_or_else(|| {
        anyhow::anyhow!(
            "--nn ort: no ONNX Runtime library found. Looked at {DYLIB_VAR} (not set), then for \
             libonnxruntime.so* in:\n  {}\nInstall the `onnxruntime` Python wheel \
             (`pip install onnxruntime`) or set {DYLIB_VAR} to the library's path.",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join("\n  ")
        )
    })
}

#[cfg(not(feature = "ort"))]
pub fn graph(
    _onnx: &Path,
    _target: NnTarget,
) -> anyhow::Result<Box<dyn wasmtime_wasi_nn::backend::BackendGraph>> {
    anyhow::bail!(
        "this spinfer was built without ONNX Runtime support (the `ort` feature of spinfer-nn, on by default)"
    )
}

#[cfg(feature = "ort")]
pub use with_ort::graph;

#[cfg(feature = "ort")]
mod with_ort {
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    use anyhow::{Context as _, Result, anyhow, bail, ensure};
    use ort::execution_providers::CUDAExecutionProvider;
    use ort::session::Session;
    use ort::tensor::TensorElementType;
    use wasmtime_wasi_nn::ExecutionContext;
    use wasmtime_wasi_nn::backend::{BackendError, BackendGraph};

    use super::super::{Context, Signature};
    use super::{NnTarget, find_library};

    /// Loads the shared library once per process.
    fn init() -> Result<()> {
        static INIT: OnceLock<Result<(), String>> = OnceLock::new();
        INIT.get_or_init(|| {
            let path = find_library().map_err(|e| format!("{e:#}"))?;
            // ort panics inside calls if the library is unusable: check it here, at start.
            std::panic::catch_unwind(|| ort::init_from(path.to_string_lossy()).commit())
                .map_err(|_| format!("cannot load ONNX Runtime from {}", path.display()))?
                .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", path.display()))?;
            tracing::info!(library = %path.display(), "ONNX Runtime loaded");
            Ok(())
        })
        .clone()
        .map_err(anyhow::Error::msg)
    }

    struct Pool {
        sessions: Vec<Mutex<Session>>,
        next: AtomicUsize,
        input_name: String,
        signature: Signature,
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
            let shape: Vec<usize> = std::iter::once(batch)
                .chain(self.signature.item_shape.iter().copied())
                .collect();
            let input =
                ort::value::Tensor::from_array((shape, values.to_vec())).map_err(|e| e.to_string())?;
            let outputs = session
                .run(ort::inputs![self.input_name.as_str() => input])
                .map_err(|e| e.to_string())?;
            let (_, probs) = outputs[self.signature.output_name.as_str()]
                .try_extract_tensor::<f32>()
                .map_err(|e| e.to_string())?;
            Ok(probs.to_vec())
        }
    }

    struct OrtGraph(Arc<Pool>);

    impl BackendGraph for OrtGraph {
        fn init_execution_context(&self) -> Result<ExecutionContext, BackendError> {
            let pool = self.0.clone();
            let signature = pool.signature.clone();
            Ok(Context::boxed(
                move |values: &[f32], batch| pool.run(values, batch),
                signature,
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
        let Some(first) = sessions.first() else {
            bail!("no ONNX Runtime session");
        };
        let (input_name, signature) = signature(&first.lock().expect("a new session"), onnx)?;
        Ok(Box::new(OrtGraph(Arc::new(Pool {
            sessions,
            next: AtomicUsize::new(0),
            input_name,
            signature,
        }))))
    }

    /// The graph's one input (FP32, every dimension past the batch fixed) and its first output.
    fn signature(session: &Session, onnx: &Path) -> Result<(String, Signature)> {
        let [input] = session.inputs.as_slice() else {
            bail!(
                "{}: wasi-nn serves models of one input, this one has {}",
                onnx.display(),
                session.inputs.len()
            );
        };
        let output = session
            .outputs
            .first()
            .with_context(|| format!("{}: the model has no output", onnx.display()))?;
        ensure!(
            input.input_type.tensor_type() == Some(TensorElementType::Float32),
            "{}: input {:?} is {:?}, not an FP32 tensor",
            onnx.display(),
            input.name,
            input.input_type
        );
        let dims = input
            .input_type
            .tensor_shape()
            .map(|shape| &shape[..])
            .unwrap_or_default();
        let item_shape = dims
            .iter()
            .skip(1)
            .map(|&d| usize::try_from(d))
            .collect::<Result<Vec<usize>, _>>()
            .map_err(|_| {
                anyhow!(
                    "{}: input {:?} of shape {dims:?} is not fixed past the batch",
                    onnx.display(),
                    input.name
                )
            })?;
        Ok((
            input.name.clone(),
            Signature {
                item_shape,
                output_name: output.name.clone(),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_newest_library_in_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(library_in(dir.path()), None);
        for name in [
            "libonnxruntime.so.1.20.0",
            "libonnxruntime.so.1.22.1",
            "libother.so",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(
            library_in(dir.path()),
            Some(dir.path().join("libonnxruntime.so.1.22.1"))
        );
    }

    #[test]
    fn looks_in_wheels_before_system_folders() {
        let dirs = candidate_dirs();
        let system = dirs
            .iter()
            .position(|d| d == Path::new("/usr/local/lib"))
            .unwrap();
        assert!(dirs[..system].iter().all(|d| d.ends_with("onnxruntime/capi")));
    }
}
