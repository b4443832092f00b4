//! Runs a `wasm32-wasip2` test binary (a `wasi:cli` command) on wasmtime, with the host's
//! arguments, environment and standard streams and the working directory (read-only), and exits
//! with its status: cargo's runner for the code that only means something inside wasm
//! (`spinfer-gemm`'s SIMD kernels, `spinfer-engine`'s profile example).
//!
//! The code runs as it is served: with epoch interruption on, as in Spin and `spinfer up`
//! (Cranelift then checks the epoch at every loop header and function entry), and a deadline
//! that never comes. `WASM_TEST_EPOCHS=0` runs it without the checks, for comparison.
//!
//! `CARGO_TARGET_WASM32_WASIP2_RUNNER=target/release/wasm-test cargo test --target wasm32-wasip2 -p spinfer-gemm`

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxView, WasiView};

struct Host {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

fn main() -> wasmtime::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        wasmtime::bail!("usage: wasm-test <component.wasm> [args...]");
    };
    let epochs = std::env::var("WASM_TEST_EPOCHS").map_or(true, |value| value != "0");
    let mut config = Config::new();
    config.epoch_interruption(epochs);
    let engine = Engine::new(&config)?;
    let component = Component::from_file(&engine, path)?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    let mut ctx = WasiCtx::builder();
    ctx.inherit_stdio().inherit_env().args(&args);
    ctx.preopened_dir(".", ".", FsPerms::ReadOnly)?;
    let ctx = ctx.build();
    let mut store = Store::new(
        &engine,
        Host {
            ctx,
            table: ResourceTable::new(),
        },
    );
    if epochs {
        // Nothing advances the epoch here; the checks run, the deadline never comes.
        store.set_epoch_deadline(u64::MAX / 2);
    }
    let command = Command::instantiate(&mut store, &component, &linker)?;
    let status = match command.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => 0,
        Ok(Err(())) => 1,
        Err(error) => match error.downcast_ref::<I32Exit>() {
            Some(exit) => exit.0,
            // A trap: a failing test under `panic = "abort"`.
            None => {
                eprintln!("{path}: {error}");
                101
            }
        },
    };
    std::process::exit(status)
}
