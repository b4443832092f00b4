"""The cost of the third-party models at real size, batch 1, side by side in one run: tract in
the component (`spinfer up`, instance reused), native tract and ONNX Runtime through wasi-nn
(`spinfer up -f spin-nn.toml --nn tract|ort`), and Python + ONNX Runtime (one intra-op thread)
behind a plain `http.server`. Per request: the client's round trip of an Open Inference Protocol
call with binary tensors; inference alone: the `infer` span of `server-timing` (the session's
own run for Python). Prints a markdown table.

`--load SECONDS` adds a second table: each server under 1 and 4 connections sending the same call
back to back for that long (`--connections`), with the median round trip of the good answers
(200) and good answers per second.

    .venv/bin/python scripts/bench_own_models.py [--requests 30] [--load 10 --connections 1 4 --models text-detector]

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
from collections.abc import Callable
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


def loaded(send: Callable[[], bool], connections: int, seconds: float) -> tuple[float, float]:
    """`connections` clients each sending back to back for `seconds`: the median round trip of
    the good answers, ms, and good answers per second."""
    walls: list[float] = []
    started = time.perf_counter()
    stop = started + seconds

    def client() -> None:
        while time.perf_counter() < stop:
            sent = time.perf_counter()
            if send():
                walls.append((time.perf_counter() - sent) * 1000)

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return (statistics.median(walls) if walls else float("nan")), len(walls) / elapsed


def answered(server: Server, name: str, x: np.ndarray) -> Callable[[], bool]:
    """One Open Inference Protocol call to `server`, true when it is answered 200."""
    def send() -> bool:
        try:
            infer_binary(server, name, x)
        except (AssertionError, OSError):
            return False
        return True

    return send


class PythonOrt:
    """A plain Python HTTP server around one ONNX Runtime session (one intra-op thread, a thread
    per connection) taking a raw float32 body; `runs` holds each `session.run`, ms."""

    def __init__(self, name: str, x: np.ndarray):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(str(MODELS[name][0]), options, providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name
        runs: list[float] = []
        self.runs = runs
        self.body = x.astype("<f4").tobytes()

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

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def send(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.httpd.server_address[1], timeout=60)
        try:
            connection.request("POST", "/", self.body)
            reply = connection.getresponse()
            reply.read()
            return reply.status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def close(self) -> None:
        self.httpd.shutdown()


def python_ort(name: str, x: np.ndarray, requests: int) -> tuple[float, float]:
    """Median round trip of a raw float32 body to [`PythonOrt`] over one keep-alive connection,
    and median `session.run`."""
    server = PythonOrt(name, x)
    connection = http.client.HTTPConnection("127.0.0.1", server.httpd.server_address[1])
    walls = []
    for i in range(requests + 3):
        started = time.perf_counter()
        connection.request("POST", "/", server.body)
        connection.getresponse().read()
        if i >= 3:
            walls.append((time.perf_counter() - started) * 1000)
    server.close()
    return statistics.median(walls), statistics.median(server.runs[3:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--load", type=float, help="seconds per point of the table under load")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()

    rows: dict[str, dict[str, tuple[float, float]]] = {name: {} for name in args.models}
    load: dict[tuple[str, int], dict[str, tuple[float, float]]] = {
        (name, c): {} for name in args.models for c in args.connections}
    with tempfile.TemporaryDirectory() as tmp:
        models = import_all(Path(tmp))
        for label, nn, flags in [("tract in the component", False, []),
                                 ("wasi-nn tract (native)", True, ["--nn", "tract"]),
                                 ("wasi-nn ONNX Runtime", True, ["--nn", "ort"])]:
            server = Server(*flags, manifest=str(manifest(models, nn=nn)))
            try:
                for name in args.models:
                    rows[name][label] = served(server, name, model_input(name), args.requests)
                    for connections in args.connections if args.load else []:
                        send = answered(server, name, model_input(name))
                        load[(name, connections)][label] = loaded(send, connections, args.load)
            finally:
                server.close()
    for name in args.models:
        rows[name]["Python + ONNX Runtime"] = python_ort(name, model_input(name), args.requests)
        for connections in args.connections if args.load else []:
            server = PythonOrt(name, model_input(name))
            try:
                load[(name, connections)]["Python + ONNX Runtime"] = loaded(server.send, connections, args.load)
            finally:
                server.close()

    columns = list(next(iter(rows.values())).keys())
    print("| model (batch 1) | " + " | ".join(columns) + " |")
    print("| --- |" + " ---: |" * len(columns))
    for name, row in rows.items():
        shape = MODELS[name][1].split("=")[1].replace(",", "×")
        cells = [f"{wall:.1f} / {infer:.1f}" for wall, infer in row.values()]
        print(f"| `{name}` {shape} | " + " | ".join(cells) + " |")
    print("\n(ms, medians of", args.requests, "requests: per request / inference alone)")
    if args.load:
        print("\n| model | connections | " + " | ".join(columns) + " |")
        print("| --- | ---: |" + " ---: |" * len(columns))
        for (name, connections), row in load.items():
            cells = [f"{p50:.1f} / {rate:.1f}" for p50, rate in row.values()]
            print(f"| `{name}` | {connections} | " + " | ".join(cells) + " |")
        print(f"\n(p50 ms of the good answers / good answers per second, {args.load:g} s per point)")


if __name__ == "__main__":
    main()
