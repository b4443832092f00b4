"""The cost of the third-party models at real size, batch 1, side by side in one run: tract in
the component (`spinfer up`, instance reused), native tract and ONNX Runtime through wasi-nn
(`spinfer up -f spin-nn.toml --nn tract|ort`), and Python + ONNX Runtime (one intra-op thread)
behind a plain `http.server`. Per request: the client's round trip of an Open Inference Protocol
call with binary tensors; inference alone: the `infer` span of `server-timing` (the session's
own run for Python). Prints a markdown table.

    .venv/bin/python scripts/bench_own_models.py [--requests 30]

Needs the built `spinfer` and components (scripts/test.sh builds them) and the wheels of
tests/python/third-party-models.txt.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from own_models import MODELS, drawn_scene, import_all, infer_binary, manifest  # noqa: E402
from support import Server  # noqa: E402


def model_input(name: str) -> np.ndarray:
    shape = [int(d) for d in MODELS[name][1].split("=")[1].split(",")]
    if shape[2:] == [320, 320]:
        return drawn_scene()
    return np.random.default_rng(0).random(shape, dtype=np.float32)


def infer_ms(reply_headers: dict[str, str]) -> float:
    for part in reply_headers.get("server-timing", "").split(","):
        name, _, rest = part.strip().partition(";dur=")
        if name == "infer":
            return float(rest)
    return float("nan")


def served(server: Server, name: str, x: np.ndarray, requests: int) -> tuple[float, float]:
    """Median round trip and median `infer` span, ms, after three warm-up calls."""
    walls, infers = [], []
    for i in range(requests + 3):
        started = time.perf_counter()
        _, _, headers = infer_binary(server, name, x)
        wall = (time.perf_counter() - started) * 1000
        if i >= 3:
            walls.append(wall)
            infers.append(infer_ms(headers))
    return statistics.median(walls), statistics.median(infers)


def python_ort(name: str, x: np.ndarray, requests: int) -> tuple[float, float]:
    """A plain Python HTTP server around one ONNX Runtime session: median round trip of a raw
    float32 body, and median `session.run`."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(MODELS[name][0]), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    runs: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *_args) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            tensor = np.frombuffer(body, "<f4").reshape(x.shape)
            started = time.perf_counter()
            out = session.run(None, {input_name: tensor})[0]
            runs.append((time.perf_counter() - started) * 1000)
            data = out.astype("<f4").tobytes()
            self.send_response(200)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    connection = http.client.HTTPConnection("127.0.0.1", httpd.server_address[1])
    walls = []
    body = x.astype("<f4").tobytes()
    for i in range(requests + 3):
        started = time.perf_counter()
        connection.request("POST", "/", body)
        connection.getresponse().read()
        if i >= 3:
            walls.append((time.perf_counter() - started) * 1000)
    httpd.shutdown()
    return statistics.median(walls), statistics.median(runs[3:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()

    rows: dict[str, dict[str, tuple[float, float]]] = {name: {} for name in MODELS}
    with tempfile.TemporaryDirectory() as tmp:
        models = import_all(Path(tmp))
        for label, nn, flags in [("tract in the component", False, []),
                                 ("wasi-nn tract (native)", True, ["--nn", "tract"]),
                                 ("wasi-nn ONNX Runtime", True, ["--nn", "ort"])]:
            server = Server(*flags, manifest=str(manifest(models, nn=nn)))
            try:
                for name in MODELS:
                    rows[name][label] = served(server, name, model_input(name), args.requests)
            finally:
                server.close()
    for name in MODELS:
        rows[name]["Python + ONNX Runtime"] = python_ort(name, model_input(name), args.requests)

    columns = list(next(iter(rows.values())).keys())
    print("| model (batch 1) | " + " | ".join(columns) + " |")
    print("| --- |" + " ---: |" * len(columns))
    for name, row in rows.items():
        shape = MODELS[name][1].split("=")[1].replace(",", "×")
        cells = [f"{wall:.1f} / {infer:.1f}" for wall, infer in row.values()]
        print(f"| `{name}` {shape} | " + " | ".join(cells) + " |")
    print("\n(ms, medians of", args.requests, "requests: per request / inference alone)")


if __name__ == "__main__":
    main()
