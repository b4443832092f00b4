#!/usr/bin/env bash
# Runs every test: builds the wasm component and the host, then the Rust and Python suites.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -p spinfer-classifier --target wasm32-wasip2 --profile wasm
cargo build --release -p spinfer
cargo test --release --workspace

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r tests/python/requirements.txt
fi
.venv/bin/python -m pytest -q tests/python
