use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use spinfer::metrics::{Report, predictions};
use spinfer::mnist::{self, Mnist};
use spinfer::model::Arch;
use spinfer::train::TrainConfig;
use spinfer::{pipeline, verify};
use spinfer_engine::Classifier;

/// Train, export and serve the Spinfer MNIST model as a WebAssembly function.
#[derive(Parser)]
#[command(name = "spinfer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a CNN on MNIST with burn, export it to ONNX and write its card and plots.
    Train(TrainArgs),
    /// Evaluate an ONNX model with native tract on the 10k MNIST test set.
    Eval(EvalArgs),
    /// Classify one image (PNG/JPEG) or one test-set image with native tract.
    Predict(PredictArgs),
    /// Serve a Spin app's HTTP components on an embedded wasmtime (no Spin needed).
    Up(UpArgs),
    /// Benchmark `/predict`: native tract baseline vs the component through `spinfer up`.
    Bench(BenchArgs),
    /// Run the build command of every component in a Spin manifest (as `spin build` does).
    Build(BuildArgs),
    /// Pre-initialise a component (Wizer) with its models loaded, for fast instance starts.
    Snapshot(SnapshotArgs),
}

#[derive(clap::Args)]
struct BuildArgs {
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
}

#[derive(clap::Args)]
struct SnapshotArgs {
    /// The manifest whose file mounts and environment the snapshot is taken with.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
    /// The component (in the manifest) whose mounts and environment to use.
    #[arg(long, default_value = "classifier")]
    component: String,
    /// The plain component to pre-initialise.
    #[arg(long)]
    wasm: PathBuf,
    /// Where the pre-initialised component goes.
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
struct BenchArgs {
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
    /// Connection counts to measure at.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    connections: Vec<usize>,
    /// Seconds of measurement per point (after one second of warm-up).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Also write the results table to this markdown file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// A Python with onnxruntime, to add the plain Python + ONNX Runtime server as a row.
    #[arg(long)]
    python: Option<PathBuf>,
    /// A scalar (no simd128) build of the component, to measure the SIMD gain.
    #[arg(long)]
    scalar_wasm: Option<PathBuf>,
    /// The wasi-nn variant's manifest, to add its rows (host tract and ONNX Runtime backends).
    #[arg(long)]
    nn_manifest: Option<PathBuf>,
    /// The model every server serves (default: the manifest's `SPINFER_DEFAULT_MODEL`).
    #[arg(long)]
    model: Option<String>,
}

#[derive(clap::Args)]
struct UpArgs {
    /// The Spin manifest.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: std::net::SocketAddr,
    /// Run each component's build command first.
    #[arg(long)]
    build: bool,
    /// Linear-memory limit per instance, in MiB.
    #[arg(long, default_value_t = 128)]
    memory_limit_mb: usize,
    /// Deadline per request, in seconds (epoch interruption).
    #[arg(long, default_value_t = 30.0)]
    request_timeout: f64,
    /// Largest accepted request body, in bytes (larger ones get 413).
    #[arg(long, default_value_t = spinfer_protocol::MAX_BODY_BYTES)]
    max_body: usize,
    /// Requests one `wasi:http` 0.3 instance may serve; 1 = a fresh instance per request.
    #[arg(long, default_value_t = 1)]
    max_instance_reuse_count: usize,
    /// Requests one 0.3 instance may serve at once when reused.
    #[arg(long, default_value_t = 16)]
    max_instance_concurrent_reuse_count: usize,
    /// How long an idle reused instance is kept, in seconds.
    #[arg(long, default_value_t = 1.0)]
    idle_instance_timeout: f64,
    /// Compile every start instead of using the compiled-component cache.
    #[arg(long)]
    no_cache: bool,
    /// Use on-demand instead of pooled instance allocation.
    #[arg(long)]
    no_pooling: bool,
    /// Extra environment for the components, KEY=VALUE (overrides the manifest).
    #[arg(short = 'e', long = "env", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Provide `wasi:nn` with this native backend (overrides `[component.<id>.tool.spinfer] nn`).
    #[arg(long, value_enum)]
    nn: Option<spinfer::serve::nn::NnBackend>,
    /// Where `wasi:nn` runs; a GPU that cannot be used is an error, never a CPU fallback.
    #[arg(long, value_enum, default_value = "cpu", requires = "nn")]
    nn_target: spinfer::serve::nn::NnTarget,
}

fn parse_env(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{raw:?} is not KEY=VALUE"))
}

#[derive(clap::Args)]
struct TrainArgs {
    #[arg(long, value_enum, default_value_t = Arch::Improved)]
    arch: Arch,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Directory with the four MNIST IDX files (gzipped or raw).
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Where the model, card and plots go.
    #[arg(long, default_value = "models")]
    out: PathBuf,
    /// Model name; defaults to mnist-seed, mnist-cnn or mnist-lean by architecture.
    #[arg(long)]
    name: Option<String>,
    /// Train on only the first N training images.
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(clap::Args)]
struct EvalArgs {
    #[arg(long, default_value = "models/mnist-cnn.onnx")]
    model: PathBuf,
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Evaluate only the first N test images.
    #[arg(long)]
    limit: Option<usize>,
    /// Also write the probabilities, float32 little-endian [N,10], to this file.
    #[arg(long)]
    dump_probs: Option<PathBuf>,
    /// Also draw the confusion matrix to this PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
}

#[derive(clap::Args)]
struct PredictArgs {
    #[arg(long, default_value = "models/mnist-cnn.onnx")]
    model: PathBuf,
    /// A PNG or JPEG of a digit (any size; dark-on-light is inverted).
    #[arg(required_unless_present = "idx", conflicts_with = "idx")]
    image: Option<PathBuf>,
    /// Classify test-set image N instead.
    #[arg(long)]
    idx: Option<usize>,
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Train(args) => train(args),
        Command::Eval(args) => eval(args),
        Command::Predict(args) => predict(args),
        Command::Up(args) => up(args),
        Command::Bench(args) => bench(args),
        Command::Build(args) => spinfer::serve::app::build(&spinfer::serve::Manifest::load(&args.manifest)?),
        Command::Snapshot(args) => snapshot(args),
    }
}

fn train(args: TrainArgs) -> Result<()> {
    let mnist = Mnist::load(&args.data)?;
    let name = args.name.unwrap_or_else(|| {
        match args.arch {
            Arch::Seed => "mnist-seed",
            Arch::Improved => "mnist-cnn",
            Arch::Lean => "mnist-lean",
        }
        .into()
    });
    let config = TrainConfig {
        arch: args.arch,
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        seed: args.seed,
        limit: args.limit,
        progress: true,
    };
    pipeline::run(&mnist, &config, &name, &args.out)?;
    Ok(())
}

fn load(model: &std::path::Path) -> Result<Classifier> {
    Classifier::from_path(model).map_err(|e| anyhow!("{e}"))
}

fn eval(args: EvalArgs) -> Result<()> {
    let classifier = load(&args.model)?;
    let mut test = Mnist::load_test(&args.data)?;
    if let Some(limit) = args.limit {
        test = test.head(limit);
    }
    let started = std::time::Instant::now();
    let probs = verify::tract_probabilities(&classifier, &test)?;
    let report = Report::new(&test.labels, &predictions(&probs));
    println!(
        "{}: {} test images in {:.2}s with native tract",
        args.model.display(),
        test.len(),
        started.elapsed().as_secs_f64()
    );
    print!("{}", report.render());
    if let Some(path) = &args.plot {
        let name = args
            .model
            .file_stem()
            .map_or("model".into(), |s| s.to_string_lossy());
        spinfer::plots::confusion_matrix(path, &name, &report)?;
    }
    if let Some(path) = args.dump_probs {
        let bytes: Vec<u8> = probs.iter().flat_map(|p| p.to_le_bytes()).collect();
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn predict(args: PredictArgs) -> Result<()> {
    let classifier = load(&args.model)?;
    let pixels = match (args.idx, &args.image) {
        (Some(index), _) => {
            let test = Mnist::load_test(&args.data)?;
            if index >= test.len() {
                bail!(
                    "--idx {index} is out of range: the test set has {} images",
                    test.len()
                );
            }
            println!("test image {index}, true label {}", test.labels[index]);
            test.normalized([index])
        }
        (None, Some(path)) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            spinfer_protocol::preprocess::image_to_input(&bytes)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?
                .to_vec()
        }
        (None, None) => unreachable!("clap requires an image or --idx"),
    };
    let probs = classifier.run(&pixels).map_err(|e| anyhow!("{e}"))?;
    let label = spinfer_engine::argmax(&probs);
    println!("label {label} (confidence {:.4})", probs[label]);
    for (class, p) in probs.iter().enumerate().take(mnist::CLASSES) {
        println!("  {class}: {p:.6}");
    }
    Ok(())
}

fn up(args: UpArgs) -> Result<()> {
    use spinfer::serve::{App, AppOptions, Manifest, ReusePolicy, engine::default_cache_dir, server};
    let manifest = Manifest::load(&args.manifest)?;
    if args.build {
        spinfer::serve::app::build(&manifest)?;
    }
    let options = AppOptions {
        memory_limit: args.memory_limit_mb << 20,
        request_timeout: std::time::Duration::from_secs_f64(args.request_timeout),
        max_body: args.max_body,
        reuse: ReusePolicy {
            max_reuse: args.max_instance_reuse_count.max(1),
            max_concurrent: args.max_instance_concurrent_reuse_count.max(1),
            idle_timeout: std::time::Duration::from_secs_f64(args.idle_instance_timeout),
        },
        cache_dir: (!args.no_cache).then(default_cache_dir),
        pooling: !args.no_pooling,
        environment: args.env,
        nn: args.nn.map(|backend| spinfer::serve::nn::NnOptions {
            backend,
            target: args.nn_target,
        }),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let app = std::sync::Arc::new(App::load(&manifest, &options)?);
        let listener = server::bind(args.listen).await?;
        // The line tests and scripts wait for.
        println!(
            "spinfer: serving {} on http://{}",
            app.name,
            listener.local_addr()?
        );
        server::serve(app, listener, async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await
    })
}

fn bench(args: BenchArgs) -> Result<()> {
    let report = spinfer::bench::run(&spinfer::bench::BenchConfig {
        manifest: args.manifest,
        data: args.data,
        connections: args.connections,
        seconds: args.seconds,
        python: args.python,
        scalar_wasm: args.scalar_wasm,
        nn_manifest: args.nn_manifest,
        model: args.model,
    })?;
    print!("{report}");
    if let Some(path) = args.markdown {
        std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn snapshot(args: SnapshotArgs) -> Result<()> {
    use spinfer::serve::{AppOptions, Manifest, app::sandbox};
    let manifest = Manifest::load(&args.manifest)?;
    let def = manifest.component.get(&args.component).ok_or_else(|| {
        anyhow!(
            "{} has no component {:?}",
            args.manifest.display(),
            args.component
        )
    })?;
    let sandbox = sandbox(&manifest, def, &AppOptions::default())?;
    spinfer::serve::snapshot::snapshot(
        &manifest.resolve(&args.wasm),
        &sandbox,
        &manifest.resolve(&args.out),
    )
}
