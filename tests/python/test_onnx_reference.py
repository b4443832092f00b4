"""Independent check of the exported models with the ONNX reference tooling.

`onnx.checker` validates each file in full, and ONNX Runtime's outputs are compared with
native tract's (dumped by `spinfer eval --dump-probs`) on the first 2,000 test images.
"""

import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from support import ROOT, load_test_images, spinfer_bin

# Every committed model, so a new one is checked without editing this list.
MODELS = sorted(path.stem for path in (ROOT / "models").glob("*.onnx"))
COUNT = 2000


def load_inputs(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The model input: float32 [count, 1, 28, 28] in [0, 1], and the labels."""
    images, labels = load_test_images(count)
    return images.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0, labels


@pytest.mark.parametrize("name", MODELS)
def test_checker_accepts_model(name: str) -> None:
    model = onnx.load(ROOT / "models" / f"{name}.onnx")
    onnx.checker.check_model(model, full_check=True)
    assert model.producer_name == "spinfer"
    assert model.opset_import[0].version >= 13
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["probs"]
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param, "batch dimension must be symbolic"
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["labels"] == '["0","1","2","3","4","5","6","7","8","9"]'
    assert "preprocessing" in meta


@pytest.mark.parametrize("name", MODELS)
def test_onnx_runtime_agrees_with_tract(name: str, tmp_path: Path) -> None:
    model_path = ROOT / "models" / f"{name}.onnx"
    dump = tmp_path / "tract.f32"
    subprocess.run(
        [spinfer_bin(), "eval", "--model", model_path, "--data", ROOT / "data/mnist",
         "--limit", str(COUNT), "--dump-probs", dump],
        check=True, capture_output=True,
    )
    tract = np.fromfile(dump, dtype="<f4").reshape(COUNT, 10)

    images, labels = load_inputs(COUNT)
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    reference = np.concatenate(
        [session.run(["probs"], {"input": images[i:i + 500]})[0] for i in range(0, COUNT, 500)]
    )

    assert reference.shape == (COUNT, 10)
    np.testing.assert_array_equal(reference.argmax(1), tract.argmax(1))
    assert np.abs(reference - tract).max() <= 1e-5
    assert (reference.argmax(1) == labels).mean() > 0.97
