#!/usr/bin/env bash
# Runs every test: builds the host, the wasm component (plain, pre-initialised, and a scalar
# build for the SIMD check), then the Rust and Python suites.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p spinfer
# spin.toml's build command: the component and its Wizer snapshot; then the wasi-nn variant.
target/release/spinfer build
target/release/spinfer build -f spin-nn.toml
CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS="" \
    cargo build -p spinfer-classifier --target wasm32-wasip2 --profile wasm --target-dir target/scalar

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r tests/python/requirements.txt
fi
# ONNX Runtime for the wasi-nn `ort` backend, from the onnxruntime wheel in the venv.
if [ -z "${ORT_DYLIB_PATH:-}" ]; then
    ORT_DYLIB_PATH=$(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -n 1)
    export ORT_DYLIB_PATH
fi

cargo test --release --workspace --features spinfer/ort
.venv/bin/python -m pytest -q tests/python
