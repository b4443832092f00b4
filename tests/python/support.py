"""What the Python tests share: the repository's paths, the MNIST test set, a `spinfer up`
server in a child process, and a small HTTP client."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import threading
import http.client
from dataclasses import dataclass
from pathlib import Path

import io

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def spinfer_bin() -> Path:
    path = Path(os.environ.get("SPINFER_BIN", ROOT / "target" / "release" / "spinfer"))
    if not path.exists():
        pytest.fail(f"{path} not found: build it with `cargo build --release -p spinfer`")
    return path


def load_test_images(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` MNIST test images as uint8 [count, 28, 28], and their labels."""
    with gzip.open(ROOT / "data/mnist/t10k-images-idx3-ubyte.gz") as f:
        raw = f.read()
    assert int.from_bytes(raw[:4], "big") == 0x803
    images = np.frombuffer(raw[16:], dtype=np.uint8).reshape(-1, 28, 28)[:count]
    with gzip.open(ROOT / "data/mnist/t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read()[8:], dtype=np.uint8)[:count]
    return images, labels


def encode(image: np.ndarray, format: str = "PNG") -> bytes:
    """A uint8 grayscale image as PNG or JPEG bytes."""
    out = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8), mode="L").save(out, format=format)
    return out.getvalue()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


class Client:
    """A small HTTP client for a server at `addr` (one connection per request)."""

    addr: str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.addr}"

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, addr: str | None = None) -> Reply:
        host, port = (addr or self.addr).rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            try:
                connection.request(method, path, body=body, headers=headers or {})
            except (BrokenPipeError, ConnectionResetError):
                pass  # answered (413, say) and closed before the whole body was taken
            response = connection.getresponse()
            # A header sent more than once (each layer's `server-timing`) reads as one list.
            headers: dict[str, str] = {}
            for name, value in response.getheaders():
                name = name.lower()
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            return Reply(response.status, headers, response.read())
        finally:
            connection.close()

    def post_json(self, path: str, value) -> Reply:
        return self.request("POST", path, json.dumps(value).encode(), {"content-type": "application/json"})


class Server(Client):
    """`spinfer up` on free ports (the app's and, optionally, the metrics listener), killed on
    `close`. The addresses come from the lines it prints."""

    def __init__(self, *args: str, manifest: str = "spin.toml", log: Path | None = None):
        """`log`: a file that takes the server's log (standard error) instead of the terminal."""
        command = [str(spinfer_bin()), "up", "--listen", "127.0.0.1:0", "-f", str(ROOT / manifest), *args]
        stderr = open(log, "w") if log else None
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True)
        if stderr:
            stderr.close()
        self.addr: str | None = None
        self.metrics_addr: str | None = None
        ready = threading.Event()
        wants_metrics = "--metrics-listen" in args

        def read() -> None:
            for line in self.process.stdout:
                if " on http://" in line and self.addr is None:
                    self.addr = line.rsplit("http://", 1)[1].strip()
                elif "metrics at http://" in line:
                    self.metrics_addr = line.rsplit("http://", 1)[1].split("/")[0]
                if self.addr and (self.metrics_addr or not wants_metrics):
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(120) or self.addr is None:
            self.close()
            pytest.fail(f"spinfer up printed no address (exit status {self.process.poll()})")

    def close(self) -> None:
        """Stops the server as an operator would (SIGTERM), so that it removes what it made at
        start (the copy of a manifest's files); killed if it has not exited within 15 s."""
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
