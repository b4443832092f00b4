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
    _signature: super::Signature,
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

    use anyhow::{Context as _, Result, anyhow, bail};
    use ort::execution_providers::CUDAExecutionProvider;
    use ort::session::Session;
    use ort::tensor::{PrimitiveTensorElementType, TensorElementType};
    use ort::value::DynValue;
    use spinfer_model::{DType, Tensor};
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
        signature: Signature,
    }

    impl Pool {
        fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, String> {
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            let n = self.sessions.len();
            // A free session if there is one, else wait for this request's own slot.
            let mut session = (0..n)
                .find_map(|i| self.sessions[(start + i) % n].try_lock().ok())
                .map_or_else(|| self.sessions[start % n].lock(), Ok)
                .map_err(|_| "an ONNX Runtime session panicked".to_string())?;
            let values = inputs
                .iter()
                .map(|t| Ok((t.name.clone(), ort_value(t)?)))
                .collect::<Result<Vec<(String, DynValue)>, String>>()?;
            let outputs = session.run(values).map_err(|e| e.to_string())?;
            self.signature
                .outputs
                .iter()
                .map(|spec| {
                    let value = outputs
                        .get(spec.name.as_str())
                        .ok_or_else(|| format!("ONNX Runtime returned no {:?}", spec.name))?;
                    let (shape, data) = tensor_bytes(spec.dtype, value)?;
                    Tensor::new(spec.name.clone(), spec.dtype, shape, data).map_err(|e| e.to_string())
                })
                .collect()
        }
    }

    /// ONNX Runtime's element type for `dtype`, where this backend carries it.
    fn element_type(dtype: DType) -> Option<TensorElementType> {
        Some(match dtype {
            DType::Float32 => TensorElementType::Float32,
            DType::Float64 => TensorElementType::Float64,
            DType::Int32 => TensorElementType::Int32,
            DType::Int64 => TensorElementType::Int64,
            DType::Uint8 => TensorElementType::Uint8,
            _ => return None,
        })
    }

    fn unsupported(dtype: DType) -> String {
        format!(
            "the ONNX Runtime backend carries FP32, FP64, INT32, INT64 and UINT8 tensors, not {}",
            dtype.oip()
        )
    }

    fn typed<T, const N: usize>(t: &Tensor, from: fn([u8; N]) -> T) -> Result<DynValue, String>
    where
        T: PrimitiveTensorElementType + Clone + std::fmt::Debug + 'static,
    {
        let data: Vec<T> = t
            .data
            .chunks_exact(N)
            .map(|b| from(b.try_into().expect("N bytes")))
            .collect();
        ort::value::Tensor::from_array((t.shape.clone(), data))
            .map(|v| v.into_dyn())
            .map_err(|e| e.to_string())
    }

    fn ort_value(t: &Tensor) -> Result<DynValue, String> {
        match t.dtype {
            DType::Float32 => typed(t, f32::from_le_bytes),
            DType::Float64 => typed(t, f64::from_le_bytes),
            DType::Int32 => typed(t, i32::from_le_bytes),
            DType::Int64 => typed(t, i64::from_le_bytes),
            DType::Uint8 => typed(t, u8::from_le_bytes),
            other => Err(unsupported(other)),
        }
    }

    fn extracted<T, const N: usize>(
        value: &DynValue,
        to: fn(T) -> [u8; N],
    ) -> Result<(Vec<usize>, Vec<u8>), String>
    where
        T: PrimitiveTensorElementType + Copy,
    {
        let (shape, data) = value.try_extract_tensor::<T>().map_err(|e| e.to_string())?;
        let shape = shape.iter().map(|&d| d.max(0) as usize).collect();
        Ok((shape, data.iter().flat_map(|&v| to(v)).collect()))
    }

    fn tensor_bytes(dtype: DType, value: &DynValue) -> Result<(Vec<usize>, Vec<u8>), String> {
        match dtype {
            DType::Float32 => extracted(value, f32::to_le_bytes),
            DType::Float64 => extracted(value, f64::to_le_bytes),
            DType::Int32 => extracted(value, i32::to_le_bytes),
            DType::Int64 => extracted(value, i64::to_le_bytes),
            DType::Uint8 => extracted(value, u8::to_le_bytes),
            other => Err(unsupported(other)),
        }
    }

    struct OrtGraph(Arc<Pool>);

    impl BackendGraph for OrtGraph {
        fn init_execution_context(&self) -> Result<ExecutionContext, BackendError> {
            let pool = self.0.clone();
            let signature = pool.signature.clone();
            Ok(Context::boxed(move |inputs| pool.run(inputs), signature))
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

    /// The model at `onnx`, whose card gives `signature`: ONNX Runtime's session must have the
    /// card's inputs and outputs, of types this backend carries.
    pub fn graph(onnx: &Path, signature: Signature, target: NnTarget) -> Result<Box<dyn BackendGraph>> {
        init()?;
        if let Some(spec) = signature
            .inputs
            .iter()
            .chain(&signature.outputs)
            .find(|s| element_type(s.dtype).is_none())
        {
            bail!("{}: {:?}: {}", onnx.display(), spec.name, unsupported(spec.dtype));
        }
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        let sessions = (0..n)
            .map(|_| session(onnx, target).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        let Some(first) = sessions.first() else {
            bail!("no ONNX Runtime session");
        };
        {
            let session = first.lock().expect("a new session");
            let dtype = |t: Option<TensorElementType>| {
                DType::ALL
                    .into_iter()
                    .find(|&d| element_type(d) == t && t.is_some())
            };
            let inputs: Vec<(String, DType)> = session
                .inputs
                .iter()
                .map(|i| {
                    (
                        i.name.clone(),
                        dtype(i.input_type.tensor_type()).unwrap_or(DType::Bool),
                    )
                })
                .collect();
            let outputs: Vec<(String, DType)> = session
                .outputs
                .iter()
                .map(|o| {
                    (
                        o.name.clone(),
                        dtype(o.output_type.tensor_type()).unwrap_or(DType::Bool),
                    )
                })
                .collect();
            signature.check(onnx, &inputs, &outputs)?;
        }
        Ok(Box::new(OrtGraph(Arc::new(Pool {
            sessions,
            next: AtomicUsize::new(0),
            signature,
        }))))
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
