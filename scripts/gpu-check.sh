#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: serve the wasi-nn app with ONNX Runtime on the GPU, check its
# answers against ONNX Runtime on the CPU, and print batch-1 and batch-64 latencies for both.
# Needs: a Rust toolchain, python3, and the onnxruntime-gpu wheel (pip, or a folder of wheels
# given as WHEELS=dir for machines without network).
set -euo pipefail
cd "$(dirname "$0")/.."

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
venv=${VENV:-/tmp/spinfer-gpu-venv}
python3 -m venv "$venv"
if [ -n "${WHEELS:-}" ]; then
    "$venv/bin/pip" install -q --no-index --find-links "$WHEELS" onnxruntime-gpu numpy
else
    "$venv/bin/pip" install -q onnxruntime-gpu==1.22.0 numpy
fi
ORT_DYLIB_PATH=$(ls "$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -n 1)
export ORT_DYLIB_PATH

cargo build --release -p spinfer
target/release/spinfer build -f spin-nn.toml

start() { # target port
    target/release/spinfer up -f spin-nn.toml --nn ort --nn-target "$1" --listen "127.0.0.1:$2" > "/tmp/spinfer-$1.log" 2>&1 &
    for _ in $(seq 60); do curl -sf "localhost:$2/healthz" > /dev/null && return; sleep 1; done
    cat "/tmp/spinfer-$1.log"; exit 1
}
start gpu 3101
start cpu 3102
trap 'kill $(jobs -p) 2>/dev/null' EXIT

"$venv/bin/python" - <<'PY'
import gzip, json, time, urllib.request
import numpy as np

raw = gzip.open("data/mnist/t10k-images-idx3-ubyte.gz").read()[16:]
images = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 784)

def predict(port, rows):
    body = json.dumps({"instances": [r.tolist() for r in rows]}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/predict", body, {"content-type": "application/json"})
    return json.load(urllib.request.urlopen(req))["predictions"]

gpu = predict(3101, images[:1000]); cpu = predict(3102, images[:1000])
same = sum(a["label"] == b["label"] for a, b in zip(gpu, cpu))
diff = max(abs(x - y) for a, b in zip(gpu, cpu) for x, y in zip(a["probabilities"], b["probabilities"]))
print(f"GPU vs CPU on 1000 images: same label on {same}, max |dp| {diff:.2e}")
assert same == 1000 and diff < 1e-4
for port, name in [(3101, "gpu"), (3102, "cpu")]:
    for batch in [1, 64]:
        times = []
        for i in range(50):
            t = time.perf_counter(); predict(port, images[i * batch:(i + 1) * batch]); times.append(time.perf_counter() - t)
        times.sort()
        print(f"{name} batch {batch:>2}: p50 {times[25] * 1e3:.2f} ms, p90 {times[45] * 1e3:.2f} ms per request")
PY
