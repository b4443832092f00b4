//! `spinfer`: one clap struct per subcommand, each with its own `run`, over the library crates
//! (`spinfer-serve`, `spinfer-bench`, and `spinfer-train` with the `train` feature).

mod commands;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Train, import and serve ONNX models as a WebAssembly function.
#[derive(Parser)]
#[command(name = "spinfer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a CNN on MNIST with burn, export it to ONNX and write its card and plots.
    #[cfg(feature = "train")]
    Train(commands::train::TrainCommand),
    /// Evaluate an ONNX model with native tract on the 10k MNIST test set.
    #[cfg(feature = "train")]
    Eval(commands::eval::EvalCommand),
    /// Classify one image (PNG/JPEG) with any image classifier's card, or one MNIST test-set
    /// image, with native tract.
    Predict(commands::predict::PredictCommand),
    /// Copy any ONNX model tract can run into a models folder, with a card read from its graph.
    Import(commands::import::ImportCommand),
    /// Serve a Spin app's HTTP components on an embedded wasmtime (no Spin needed).
    Up(commands::up::UpCommand),
    /// Benchmark `/predict` in every serving mode side by side.
    Bench(commands::bench::BenchCommand),
    /// Overload and soak: mixed valid and invalid requests against `spinfer up`, every answer
    /// checked, load shedding counted, memory sampled.
    Stress(commands::stress::StressCommand),
    /// Every model's cost, accuracy and latency (native, in wasm, fresh instance): table and plot.
    #[cfg(feature = "train")]
    Frontier(commands::frontier::FrontierCommand),
    /// Run the build command of every component in a Spin manifest (as `spin build` does).
    Build(commands::build::BuildCommand),
    /// Pre-initialise a component (Wizer) with its models loaded, for fast instance starts.
    Snapshot(commands::snapshot::SnapshotCommand),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // The bench measures serving, not the access log (one line per request, as `spinfer up`
    // writes by default); `RUST_LOG` still decides when set.
    let default_filter = match cli.command {
        Command::Bench(_) => "info,access=off",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        #[cfg(feature = "train")]
        Command::Train(command) => command.run(),
        #[cfg(feature = "train")]
        Command::Eval(command) => command.run(),
        Command::Predict(command) => command.run(),
        Command::Import(command) => command.run(),
        Command::Up(command) => command.run(),
        Command::Bench(command) => command.run(),
        Command::Stress(command) => command.run(),
        #[cfg(feature = "train")]
        Command::Frontier(command) => command.run(),
        Command::Build(command) => command.run(),
        Command::Snapshot(command) => command.run(),
    }
}
