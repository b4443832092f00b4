"""`spinfer import` without `--shape`: graphs that compute a shape from their free batch, an image
model whose graph leaves its image dimensions free, and the error that names the flag. Each graph
is made here with the `onnx` package; every served answer is checked against ONNX Runtime."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from own_models import MODELS, infer_binary, manifest
from support import Server, spinfer_bin


def shape_from_batch(cast: bool) -> onnx.ModelProto:
    """probs[N, 3] = softmax(reshape(x @ W + expand(bias, [N, 3]), [N, 3])) for x[N, 4], the
    shape [N, 3] computed from x: Shape → Slice → Concat (the batch through Cast to float and
    back when `cast`, as converters emit it), into Expand and Reshape."""
    rng = np.random.default_rng(7)
    constants = {
        "W": rng.standard_normal((4, 3)).astype(np.float32),
        "bias": np.array([0.5, -1.0, 2.0], np.float32),
        "start": np.array([0], np.int64),
        "end": np.array([1], np.int64),
        "three": np.array([3], np.int64),
    }
    batch = "batch"
    nodes = [helper.make_node("Shape", ["x"], ["shape_of_x"]),
             helper.make_node("Slice", ["shape_of_x", "start", "end"], [batch])]
    if cast:
        nodes += [helper.make_node("Cast", [batch], ["batch_f"], to=TensorProto.FLOAT),
                  helper.make_node("Cast", ["batch_f"], ["batch_i"], to=TensorProto.INT64)]
        batch = "batch_i"
    nodes += [helper.make_node("Concat", [batch, "three"], ["target"], axis=0),
              helper.make_node("Expand", ["bias", "target"], ["bias_n"]),
              helper.make_node("MatMul", ["x", "W"], ["product"]),
              helper.make_node("Add", ["product", "bias_n"], ["logits"]),
              helper.make_node("Reshape", ["logits", "target"], ["reshaped"]),
              helper.make_node("Softmax", ["reshaped"], ["probs"], axis=-1)]
    graph = helper.make_graph(
        nodes, "shape-from-batch",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(v, k) for k, v in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def spinfer_import(models: Path, file: Path, name: str, *flags: str) -> subprocess.CompletedProcess:
    command = [str(spinfer_bin()), "import", str(file), "--name", name, "--models-dir", str(models), *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


ORIENTATION = ["--image", "48x192", "--channels", "3", "--order", "bgr", "--mean", "0.5", "--std", "0.5",
               "--resize", "fit"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """The two graphs and the orientation classifier imported without `--shape`; each import's
    standard output, and the folder."""
    root = tmp_path_factory.mktemp("import")
    models = root / "models"
    printed = {}
    for name, cast in [("shape-from-batch", False), ("shape-from-batch-cast", True)]:
        file = root / f"{name}.onnx"
        onnx.save(shape_from_batch(cast), file)
        done = spinfer_import(models, file, name)
        assert done.returncode == 0, done.stderr
        printed[name] = done.stdout
    done = spinfer_import(models, MODELS["text-orientation"][0], "text-orientation", *ORIENTATION)
    assert done.returncode == 0, done.stderr
    printed["text-orientation"] = done.stdout
    return models, printed


@pytest.fixture(scope="module")
def served(imported):
    server = Server(manifest=str(manifest(imported[0], nn=False)))
    yield server
    server.close()


def test_a_graph_whose_batch_tract_cannot_type_runs_item_by_item(imported):
    models, printed = imported
    card = json.loads((models / "shape-from-batch-cast.json").read_text())
    # The card still takes any batch, and says how it is run.
    assert card["inputs"][0]["shape"][1:] == [4] and card["inputs"][0]["shape"][0] not in (1, -1)
    assert card["outputs"][0]["shape"][1:] == [3]
    assert "item by item" in card["limitations"], card
    assert "item by item" in printed["shape-from-batch-cast"], printed


@pytest.mark.parametrize("name,cast", [("shape-from-batch", False), ("shape-from-batch-cast", True)])
@pytest.mark.parametrize("items", [1, 3])
def test_a_shape_computed_from_the_batch_serves_any_batch(served, name, cast, items):
    x = np.random.default_rng(items).standard_normal((items, 4)).astype(np.float32)
    session = ort.InferenceSession(shape_from_batch(cast).SerializeToString(), providers=["CPUExecutionProvider"])
    want = session.run(None, {"x": x})[0]
    _, got, _ = infer_binary(served, name, x)
    assert got.shape == want.shape == (items, 3)
    assert float(np.abs(got - want).max()) <= 1e-5, (got, want)


def test_an_image_model_takes_its_free_image_dimensions_from_the_image_block(imported, served):
    models, printed = imported
    card = json.loads((models / "text-orientation.json").read_text())
    assert card["inputs"][0]["shape"][1:] == [3, 48, 192], card["inputs"]
    assert "image block" in printed["text-orientation"] and "48, 192" in printed["text-orientation"], printed
    x = np.random.default_rng(2).uniform(-1, 1, (2, 3, 48, 192)).astype(np.float32)
    session = ort.InferenceSession(str(MODELS["text-orientation"][0]), providers=["CPUExecutionProvider"])
    want = session.run(None, {"x": x})[0]
    _, got, _ = infer_binary(served, "text-orientation", x)
    assert got.shape == want.shape
    assert float(np.abs(got - want).max()) <= 1e-4 * max(float(np.abs(want).max()), 1e-6)


def shape_from_width() -> onnx.ModelProto:
    """y[N, D] = relu(reshape(x, [-1, D])) for x[N, D], D through Cast to float and back: tract
    cannot type it while D is free, whatever the batch."""
    constants = {
        "start": np.array([1], np.int64),
        "end": np.array([2], np.int64),
        "rest": np.array([-1], np.int64),
    }
    nodes = [helper.make_node("Shape", ["x"], ["shape_of_x"]),
             helper.make_node("Slice", ["shape_of_x", "start", "end"], ["width"]),
             helper.make_node("Cast", ["width"], ["width_f"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["width_f"], ["width_i"], to=TensorProto.INT64),
             helper.make_node("Concat", ["rest", "width_i"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["reshaped"]),
             helper.make_node("Relu", ["reshaped"], ["y"])]
    graph = helper.make_graph(
        nodes, "shape-from-width",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "D"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "D"])],
        [numpy_helper.from_array(v, k) for k, v in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_a_shape_problem_names_the_input_and_the_flag(tmp_path):
    file = tmp_path / "width.onnx"
    onnx.save(shape_from_width(), file)
    models = tmp_path / "models"
    done = spinfer_import(models, file, "width")
    assert done.returncode != 0
    assert "--shape x=1,D" in done.stderr, done.stderr
    assert not (models / "width.json").exists()
    # The flag it names makes the graph load.
    done = spinfer_import(models, file, "width", "--shape", "x=1,8")
    assert done.returncode == 0, done.stderr
    assert json.loads((models / "width.json").read_text())["inputs"][0]["shape"] == [1, 8]
