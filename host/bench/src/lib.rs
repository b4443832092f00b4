//! `spinfer bench`: the same `/predict` requests against every way Spinfer serves — native
//! tract in process (the baseline), the component through `spinfer up` with and without a
//! snapshot, fresh or reused instances, the wasi-nn variant, and optionally Python + ONNX
//! Runtime — over real TCP, one after another in one run; plus the cold start, a fresh
//! instance's way to a ready model, and inference inside wasm against native.
//!
//! The rows are data ([`scenarios`]); the load generator is [`load`], the other measurements
//! are [`probes`], the native baseline is [`native`].

pub mod frontier;
pub mod load;
pub mod native;
pub mod probes;
pub mod stress;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow};
use bytes::Bytes;
use spinfer_model::contract::{DEFAULT_MODEL_ENV, DEFAULT_MODEL_VARIABLE, MODELS_DIR};
use spinfer_nn::{NnBackend, NnOptions, NnTarget};
use spinfer_serve::process::ServerProcess;
use spinfer_serve::{App, AppOptions, Manifest, ReusePolicy, server};
use tokio::net::TcpListener;

use crate::load::{LoadOptions, Target};

pub struct BenchConfig {
    pub manifest: PathBuf,
    pub data: PathBuf,
    pub connections: Vec<usize>,
    pub seconds: f64,
    pub python: Option<PathBuf>,
    pub scalar_wasm: Option<PathBuf>,
    /// The wasi-nn variant's manifest, for its rows.
    pub nn_manifest: Option<PathBuf>,
    /// The portable build's manifest, for its row.
    pub p2_manifest: Option<PathBuf>,
    /// The model to serve, instead of the manifest's default.
    pub model: Option<String>,
}

impl BenchConfig {
    /// The flags that give this configuration, as the report's command line.
    fn flags(&self) -> String {
        let connections: Vec<String> = self.connections.iter().map(|c| c.to_string()).collect();
        let mut flags = vec![
            format!("-f {}", self.manifest.display()),
            format!("--connections {}", connections.join(",")),
            format!("--seconds {}", self.seconds),
        ];
        let paths = [
            ("--python", &self.python),
            ("--scalar-wasm", &self.scalar_wasm),
            ("--nn-manifest", &self.nn_manifest),
            ("--p2-manifest", &self.p2_manifest),
        ];
        for (flag, path) in paths {
            if let Some(path) = path {
                flags.push(format!("{flag} {}", path.display()));
            }
        }
        if let Some(model) = &self.model {
            flags.push(format!("--model {model}"));
        }
        flags.join(" ")
    }
}

/// Which build of the component a row serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The plain component (no Wizer snapshot): each fresh instance loads the model.
    Plain,
    /// The snapshot the manifest serves.
    Snapshot,
    /// The wasi-nn variant (`--nn-manifest`) with this host backend.
    Nn(NnBackend),
    /// The portable build (`--p2-manifest`): `wasi:http` 0.2, always a fresh instance.
    Portable,
}

/// One served row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    pub label: &'static str,
    pub source: Source,
    pub reuse: ReusePolicy,
}

/// Every component row, in table order; rows whose source is not available are skipped.
pub fn scenarios() -> Vec<Scenario> {
    let row = |label, source, reuse| Scenario { label, source, reuse };
    vec![
        row(
            "(b) component, fresh instance, no snapshot",
            Source::Plain,
            ReusePolicy::FRESH,
        ),
        row(
            "(c) component, snapshot, fresh instance (--max-instance-reuse-count 1)",
            Source::Snapshot,
            ReusePolicy::FRESH,
        ),
        row(
            "(d) component, snapshot, instance reuse 128/16/1 s (default, as Spin 4)",
            Source::Snapshot,
            ReusePolicy::SPIN,
        ),
        row(
            "(e) wasi-nn component, host tract, fresh instance",
            Source::Nn(NnBackend::Tract),
            ReusePolicy::FRESH,
        ),
        row(
            "(e) wasi-nn component, host ONNX Runtime CPU, fresh instance",
            Source::Nn(NnBackend::Ort),
            ReusePolicy::FRESH,
        ),
        row(
            "(f) wasi-nn component, host ONNX Runtime CPU, instance reuse 128/16/1 s",
            Source::Nn(NnBackend::Ort),
            ReusePolicy::SPIN,
        ),
        row(
            "(g) portable component (wasi:http 0.2), snapshot, fresh instance (as every host runs it)",
            Source::Portable,
            ReusePolicy::FRESH,
        ),
    ]
}

/// What the rows need from the manifests.
struct Setup {
    manifest_path: PathBuf,
    component: String,
    models: PathBuf,
    model: String,
    snapshot: PathBuf,
    plain: Option<PathBuf>,
    nn_manifest: Option<PathBuf>,
    p2_manifest: Option<PathBuf>,
}

impl Setup {
    fn new(config: &BenchConfig) -> Result<Setup> {
        let manifest = Manifest::load(&config.manifest)?;
        let (component, def) = manifest
            .component
            .iter()
            .next()
            .ok_or_else(|| anyhow!("the manifest has no component"))?;
        let models = manifest.mount(def, MODELS_DIR)?;
        let model = config
            .model
            .clone()
            .or_else(|| {
                manifest
                    .variables
                    .get(DEFAULT_MODEL_VARIABLE)
                    .and_then(|v| v.default.clone())
            })
            .ok_or_else(|| anyhow!("no --model and no {DEFAULT_MODEL_VARIABLE} default in the manifest"))?;
        let snapshot = manifest.resolve(&def.source);
        let plain = snapshot
            .to_str()
            .and_then(|s| s.strip_suffix(".snapshot.wasm"))
            .map(|s| PathBuf::from(format!("{s}.wasm")))
            .filter(|p| p.exists());
        Ok(Setup {
            manifest_path: config.manifest.clone(),
            component: component.clone(),
            models,
            model,
            snapshot,
            plain,
            nn_manifest: config.nn_manifest.clone(),
            p2_manifest: config.p2_manifest.clone(),
        })
    }

    fn options(&self, reuse: ReusePolicy, nn: Option<NnOptions>) -> AppOptions {
        AppOptions {
            reuse,
            variables: vec![(DEFAULT_MODEL_VARIABLE.to_string(), self.model.clone())],
            nn: nn.map(spinfer_app::nn_settings),
            // The serving defaults, admission included: what a user of `spinfer up` gets.
            ..spinfer_app::options()
        }
    }

    /// The app of the manifest with its component's source replaced by `wasm`.
    fn component_app(&self, wasm: &Path, reuse: ReusePolicy) -> Result<Arc<App>> {
        let mut manifest = Manifest::load(&self.manifest_path)?;
        manifest
            .component
            .get_mut(&self.component)
            .expect("the component exists")
            .source = wasm.to_path_buf();
        Ok(Arc::new(App::load(&manifest, &self.options(reuse, None))?))
    }

    /// The app of a scenario, or `None` when its source is not available.
    fn app(&self, scenario: &Scenario) -> Result<Option<Arc<App>>> {
        match scenario.source {
            Source::Plain => self
                .plain
                .as_deref()
                .map(|plain| self.component_app(plain, scenario.reuse))
                .transpose(),
            Source::Snapshot => self.component_app(&self.snapshot, scenario.reuse).map(Some),
            Source::Nn(backend) => {
                let Some(path) = &self.nn_manifest else {
                    return Ok(None);
                };
                let nn = NnOptions {
                    backend,
                    target: NnTarget::Cpu,
                };
                let app = App::load(&Manifest::load(path)?, &self.options(scenario.reuse, Some(nn)))?;
                Ok(Some(Arc::new(app)))
            }
            Source::Portable => {
                let Some(path) = &self.p2_manifest else {
                    return Ok(None);
                };
                // Its settings come from the environment; its manifest has no variables.
                let options = AppOptions {
                    environment: vec![(DEFAULT_MODEL_ENV.to_string(), self.model.clone())],
                    variables: Vec::new(),
                    ..self.options(scenario.reuse, None)
                };
                Ok(Some(Arc::new(App::load(&Manifest::load(path)?, &options)?)))
            }
        }
    }
}

/// The loaded app of the first scenario that matches.
fn find(apps: &[(Scenario, Arc<App>)], source: Source, reuse: ReusePolicy) -> Option<&App> {
    apps.iter()
        .find(|(s, _)| s.source == source && s.reuse == reuse)
        .map(|(_, app)| app.as_ref())
}

pub fn run(config: &BenchConfig) -> Result<String> {
    let setup = Setup::new(config)?;
    let model = setup.model.clone();
    let test = spinfer_mnist::Mnist::load_test(&config.data)?;
    let body = Bytes::from(serde_json::to_vec(
        &serde_json::json!({ "pixels": test.image(0) }),
    )?);
    let expected = u64::from(test.labels[0]);

    // The first start fills the compiled-component cache; the second is the one users see.
    let exe = std::env::current_exe()?;
    probes::cold_start(&exe, &config.manifest, &model, &body, expected)?;
    let cold = probes::cold_start(&exe, &config.manifest, &model, &body, expected)?;

    // Native tract, batch 1, in process: the reference for the wasm inference time.
    let onnx = setup.models.join(format!("{model}.onnx"));
    let native = spinfer_engine::Model::from_path(&onnx)?;
    let native_ms = probes::native_inference_ms(&native, &test.normalized([0]), 200)?;

    let options = LoadOptions {
        connections: config.connections.clone(),
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs_f64(config.seconds),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let mut _python = None;
    let mut notes = Vec::new();
    let rows = runtime.block_on(async {
        let mut targets = vec![Target {
            name: "(a) native tract, in-process hyper".into(),
            addr: native::server(&setup.models, &model).await?,
        }];
        let mut apps = Vec::new();
        for scenario in scenarios() {
            match setup.app(&scenario) {
                Ok(Some(app)) => apps.push((scenario, app)),
                Ok(None) => {}
                // ONNX Runtime may be missing on this machine; say so and go on.
                Err(e) if scenario.source == Source::Nn(NnBackend::Ort) => {
                    notes.push(format!("{}: skipped: {e:#}", scenario.label));
                }
                Err(e) => return Err(e),
            }
        }

        // Instance start and in-wasm inference, before the load runs.
        let snapshot_app = find(&apps, Source::Snapshot, ReusePolicy::FRESH).expect("the snapshot row loads");
        let reused_app = find(&apps, Source::Snapshot, ReusePolicy::SPIN).expect("the reuse row loads");
        let (snap_instantiate, snap_ready) = probes::instance_ready_us(snapshot_app, &model, 200).await?;
        let snap_request = probes::ready_request_ms(snapshot_app, &model, 50).await?;
        match find(&apps, Source::Plain, ReusePolicy::FRESH) {
            Some(plain_app) => {
                let (instantiate, ready) = probes::instance_ready_us(plain_app, &model, 50).await?;
                notes.push(format!(
                    "instantiate → model ready, fresh instance, {model} (medians): with the snapshot \
                     {snap_instantiate:.0} µs instantiate + {snap_ready:.0} µs `ready` (the check of \
                     the mounted models) = {:.0} µs; without it {instantiate:.0} µs + {:.2} ms (the \
                     model load) = {:.2} ms",
                    snap_instantiate + snap_ready,
                    ready / 1e3,
                    (instantiate + ready) / 1e3,
                ));
                notes.push(format!(
                    "the same through HTTP (GET /v2/models/{model}/ready on a fresh instance, median \
                     of 50): {snap_request:.3} ms with the snapshot, {:.3} ms without",
                    probes::ready_request_ms(plain_app, &model, 50).await?,
                ));
            }
            None => notes.push(format!(
                "instantiate → model ready, fresh instance, snapshot, {model} (medians): \
                 {snap_instantiate:.0} µs instantiate + {snap_ready:.0} µs `ready`; \
                 GET /v2/models/{model}/ready {snap_request:.3} ms"
            )),
        }
        let wasm_ms = probes::wasm_inference_ms(reused_app, &body, 200).await?;
        notes.push(format!(
            "inference, batch 1, {model} (median): native tract {native_ms:.3} ms; tract in wasm (simd128) {wasm_ms:.3} ms = {:.2}× native",
            wasm_ms / native_ms
        ));
        if let Some(scalar) = &config.scalar_wasm {
            let scalar_app = setup.component_app(scalar, ReusePolicy::SPIN)?;
            let scalar_ms = probes::wasm_inference_ms(&scalar_app, &body, 200).await?;
            notes.push(format!(
                "tract in wasm without simd128: {scalar_ms:.3} ms; SIMD gain {:.2}×",
                scalar_ms / wasm_ms
            ));
        }

        for (scenario, app) in apps {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            tokio::spawn(server::serve(app, listener, None, std::future::pending()));
            targets.push(Target {
                name: scenario.label.into(),
                addr,
            });
        }
        if let Some(python) = &config.python {
            let script = setup
                .manifest_path
                .parent()
                .unwrap_or(Path::new("."))
                .join("scripts/ort_server.py");
            let mut command = std::process::Command::new(python);
            command.arg(script).arg("--model").arg(&onnx);
            let child = ServerProcess::start(command, Duration::from_secs(60))?;
            targets.push(Target {
                name: "(p) Python http.server + ONNX Runtime".into(),
                addr: child.addr,
            });
            _python = Some(child);
        }
        load::measure(&targets, body.clone(), &options).await
    })?;
    runtime.shutdown_timeout(Duration::from_secs(1));

    let mut report = load::table(&rows);
    report += "\n";
    for note in notes {
        report += &format!("- {note}\n");
    }
    report += &format!(
        "- cold start (process start → first correct /predict, warm compiled-component cache): {:.1} ms\n\n\
         Command: `spinfer bench {}`; {} CPUs; model {model}.\n",
        cold.as_secs_f64() * 1e3,
        config.flags(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    Ok(report)
}
