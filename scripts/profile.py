"""Each node of a model's batch-1 plan, natively and in wasm with each GEMM kernel, side by side.

Builds the engine's `profile` example natively and for wasm32-wasip2 (the component's `wasm`
profile), runs the wasm build on the test runner (`target/release/wasm-test`) once per kernel
(`SPINFER_WASM_GEMM`; `default`: unset, Spinfer's rule), in rounds so that the machine's noise
falls on every column alike (the wasm columns in one order, then the reverse), and prints a
Markdown table per model: median microseconds per node,
the multiply-adds tract counts for it, the matrix kernel each build ran, the GFLOP/s each column
reaches on the matrix products, and ONNX Runtime's whole run (one thread) on the same input.

A model is a name in `models/` or one of the third-party models of the bring-your-own tests
(`tests/python/own_models.py`: `text-orientation`, `text-detector`, `yolov8n`, at the shape they
are imported with); `NAME:INPUT=D1,D2,…` profiles it at another shape
(`text-detector:x=1,3,640,640`). A model of more than `--detail` nodes gets a table per op (the
nodes of one op summed) and its per-node table inside a `<details>` block.

The wasm columns run as `spinfer up` and Spin serve: with epoch interruption on (the runner's
default). `--epochs on off` adds a column per kernel without it (`4x8 no-epochs`), to see what
the checks cost. `--ops spinfer tract` adds a column per kernel with tract's ops only
(`default tract-ops`: `SPINFER_WASM_OPS=tract`), to see what Spinfer's own ops (a direct
convolution, a softmax over an inner axis) change.

`--ort-web` adds ONNX Runtime Web, the other engine that runs inside wasm: the pinned npm
`onnxruntime-web` (installed into `target/ort-web` on first use; Node 20 or later), its wasm SIMD
build on one thread, run by `scripts/ort_web.mjs` on the same input in the same rounds. Each
model then gets a table of the four engines' whole runs, and one per kind of ONNX op (a
convolution by its kernel and groups): tract's nodes are traced back to the ONNX node they came
from, ONNX Runtime Web's come from its own profiler (a separate, profiled session).

    .venv/bin/python scripts/profile.py [--runs 300] [--rounds 3] [--models mnist-cnn mnist-compact]
        [--kernels tract default 4x8 4x8u1 6x8 4x16 8x8 4x4] [--epochs on off] [--ops spinfer tract]
        [--wasm relaxed=path/to/profile.wasm] [--ghz 4.26] [--markdown out.md] [--no-build]
        [--save raw.json] [--load raw.json] [--ort-web]

A relaxed-SIMD build (fused multiply-add in Spinfer's and tract's kernels) to pass as `--wasm`:

    RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" cargo build --profile wasm \
        --target wasm32-wasip2 -p spinfer-engine --example profile --target-dir target/relaxed
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NATIVE = ROOT / "target/release/examples/profile"
WASM = ROOT / "target/wasm32-wasip2/wasm/examples/profile.wasm"
RUNNER = ROOT / "target/release/wasm-test"
# ONNX Runtime Web, pinned, installed on first use into an ignored folder.
ORT_WEB_VERSION = "1.30.0"
ORT_WEB = ROOT / "target/ort-web"
ORT_WEB_DIST = ORT_WEB / "node_modules/onnxruntime-web/dist"
# The column of ONNX Runtime Web in the rounds.
WEB = "ort-web"
# Where `own_models` (the third-party models of the bring-your-own tests) lives.
sys.path.append(str(ROOT / "tests" / "python"))
# A column's suffix for a run without epoch interruption.
NO_EPOCHS = " no-epochs"
# A column's suffix for a run with tract's ops only (SPINFER_WASM_OPS=tract).
TRACT_OPS = " tract-ops"


def build() -> None:
    cargo = ["cargo", "build", "-q"]
    subprocess.run([*cargo, "--release", "-p", "spinfer-engine", "--example", "profile"], cwd=ROOT, check=True)
    subprocess.run([*cargo, "--release", "-p", "spinfer-tests", "--bin", "wasm-test"], cwd=ROOT, check=True)
    subprocess.run(
        [*cargo, "--profile", "wasm", "--target", "wasm32-wasip2", "-p", "spinfer-engine", "--example", "profile"],
        cwd=ROOT,
        check=True,
    )


def resolve(model: str) -> tuple[Path, str | None]:
    """The file (relative to the repository, which the wasm runner mounts) and pinned shape of
    `NAME[:INPUT=DIMS]`."""
    name, _, shape = model.partition(":")
    own = ROOT / "models" / f"{name}.onnx"
    if own.exists():
        return own.relative_to(ROOT), shape or None
    from own_models import MODELS  # noqa: PLC0415 (onnxruntime and the wheels, only when asked)

    if name not in MODELS:
        raise SystemExit(f"{name}: not in models/ nor one of {', '.join(MODELS)}")
    file, pinned, _ = MODELS[name]
    return file.resolve().relative_to(ROOT), shape or pinned


def run(column: str, model: str, runs: int, builds: dict[str, Path]) -> dict:
    """One profile of `model` for one column: `native`, or a wasm kernel choice, prefixed with
    the label of another wasm build (`relaxed 4x8`) for that build."""
    path, shape = resolve(model)
    args = [*(["--shape", shape] if shape else []), str(path)]
    env = dict(os.environ)
    env.pop("SPINFER_WASM_GEMM", None)
    env.pop("SPINFER_WASM_OPS", None)
    if column.endswith(TRACT_OPS):
        column = column.removesuffix(TRACT_OPS)
        env["SPINFER_WASM_OPS"] = "tract"
    if column.endswith(NO_EPOCHS):
        column = column.removesuffix(NO_EPOCHS)
        env["WASM_TEST_EPOCHS"] = "0"
    label, _, kernel = column.rpartition(" ")
    wasm = builds.get(label, WASM)
    if column == "native":
        command = [str(NATIVE), "--runs", str(runs), *args]
    else:
        if kernel != "default":
            env["SPINFER_WASM_GEMM"] = kernel
        command = [str(RUNNER), str(wasm), "--runs", str(runs), *args]
    out = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    return next(json.loads(line) for line in out.splitlines() if line.startswith("{"))


def onnx_runtime(model: str, shape: list, runs: int) -> float:
    """ONNX Runtime's median whole run in µs, one intra-op thread, on the profile's input (the
    example's fixed pattern), batch 1."""
    import numpy as np  # noqa: PLC0415
    import onnxruntime as ort  # noqa: PLC0415

    path, _ = resolve(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(ROOT / path), options, providers=["CPUExecutionProvider"])
    dims = [d if isinstance(d, int) else 1 for d in shape]
    x = ((np.arange(int(np.prod(dims))) * 37 % 256) / 255.0).astype(np.float32).reshape(dims)
    feed = {session.get_inputs()[0].name: x}
    session.run(None, feed)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - started) * 1e6)
    return statistics.median(times)


def install_ort_web() -> None:
    """The pinned `onnxruntime-web` in `target/ort-web`, unless it is there already."""
    if (ORT_WEB_DIST / "ort.node.min.mjs").exists():
        return
    ORT_WEB.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(ORT_WEB),
                    f"onnxruntime-web@{ORT_WEB_VERSION}"], check=True)


def web_input(model: str, shape: list) -> str:
    """`INPUT=D1,D2,…` for ONNX Runtime Web: the graph's first input at the profile's shape."""
    import onnx  # noqa: PLC0415

    path, _ = resolve(model)
    graph = onnx.load(str(ROOT / path), load_external_data=False).graph
    initialised = {i.name for i in graph.initializer}
    name = next(i.name for i in graph.input if i.name not in initialised)
    return f"{name}=" + ",".join(str(d if isinstance(d, int) else 1) for d in shape)


def run_web(model: str, shape: list, runs: int) -> dict:
    """One run of ONNX Runtime Web on `model`: the time of each run (µs), and its profiler's
    events, each node's median over the profiled runs (µs, by node name)."""
    path, _ = resolve(model)
    command = ["node", str(ROOT / "scripts/ort_web.mjs"), str(ORT_WEB_DIST), str(ROOT / path),
               web_input(model, shape), "--runs", str(runs), "--profile"]
    # A run that hangs (seen once in Node here) fails the profile rather than stalling it.
    out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True, timeout=600).stdout
    micros: list[float] = []
    durations: dict[str, list[float]] = defaultdict(list)
    ops: dict[str, str] = {}
    for line in out.splitlines():
        if line.startswith('{"ort_web"'):
            micros = json.loads(line)["ort_web"]["micros"]
        elif line.startswith('{"cat" : "Node"'):
            event = json.loads(line.rstrip(","))
            if event["name"].endswith("_kernel_time"):
                name = event["name"].removesuffix("_kernel_time")
                durations[name].append(float(event["dur"]))
                ops[name] = event["args"]["op_name"]
    nodes = {name: {"op": ops[name], "micros": statistics.median(d)} for name, d in durations.items()}
    return {"micros": micros, "nodes": nodes}


# The ONNX ops tract runs as element-wise chains, grouped as one kind.
ELEMENT_WISE = {"Add", "Sub", "Mul", "Div", "Clip", "Relu", "Sigmoid", "HardSigmoid", "HardSwish",
                "BatchNormalization", "Max", "Min", "Pow", "Sqrt", "Exp", "Tanh", "Neg", "Cast",
                # ONNX Runtime's fusion of x · sigmoid(αx) (SiLU).
                "QuickGelu"}


def op_kinds(model: str) -> tuple[dict[str, str], dict[tuple[int, int], str]]:
    """Each ONNX node's kind (its op; a convolution by kernel, stride and groups; the element-wise
    ops as one), and the kind of each dense convolution's product by its M × K (output channels
    × input channels × kernel), which is how tract's matrix products are traced back when a fused
    node took another node's name."""
    import onnx  # noqa: PLC0415

    path, _ = resolve(model)
    graph = onnx.load(str(ROOT / path), load_external_data=False).graph
    weights = {i.name: list(i.dims) for i in graph.initializer}
    # Some exporters (Paddle's) give the weights as Constant nodes.
    weights |= {node.output[0]: list(a.t.dims) for node in graph.node if node.op_type == "Constant"
                for a in node.attribute if a.name == "value"}
    kinds: dict[str, str] = {}
    products: dict[tuple[int, int], str] = {}
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        kind = "element-wise" if node.op_type in ELEMENT_WISE else node.op_type
        if node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in weights:
            out_channels, per_group, *kernel = weights[node.input[1]]
            group = attrs.get("group", 1)
            size = "×".join(map(str, kernel))
            stride = max(attrs.get("strides", [1]))
            kind = f"Conv {size}" + (f" stride {stride}" if stride > 1 else "")
            if group > 1:
                kind += " depthwise" if per_group == 1 else f" {group} groups"
            else:
                products.setdefault((out_channels, per_group * math.prod(kernel)), kind)
        kinds[node.name] = kind
    return kinds, products


def tract_kind(node: dict, kinds: dict[str, str], products: dict[tuple[int, int], str]) -> str:
    """The kind of ONNX node a tract node came from: a product by its M (or N) × K, else the longest
    ONNX node name its name starts with (tract names a node it makes from one after it), else
    tract's own op."""
    if node["op"] == "OptMatMul" and node["mkn"]:
        m, k, n = (int(d) for d in node["mkn"].split("×"))
        # tract may run a convolution with its pixels as M and its channels as N.
        for rows in (m, n):
            if (rows, k) in products:
                return products[(rows, k)]
    name = node["node"]
    while name:
        if name in kinds:
            return kinds[name]
        name = name.rpartition(".")[0]
    return f"{node['op']} (tract)"


def web_table(model: str, columns: list[str], profiles: dict[str, list[dict]], web: list[dict], ort_micros: float) -> str:
    """The four engines' whole runs (min and median of the rounds' medians; every wasm column),
    then each kind of ONNX op: tract's nodes natively and in each wasm column, ONNX Runtime
    Web's (medians), and the first wasm column against ONNX Runtime Web."""
    wasm = [c for c in columns if c != "native"]
    kinds, products = op_kinds(model)

    def rounds(c: str) -> list[float]:
        return [p["profile"]["run_micros"] for p in profiles[c]]

    web_rounds = [statistics.median(w["micros"]) for w in web]
    whole = {"native tract": rounds("native"), **{f"tract in wasm ({c})": rounds(c) for c in wasm},
             "ONNX Runtime Web": web_rounds}
    rows = ["| engine | min of rounds, ms | median, ms | / ONNX Runtime Web |", "| --- | ---: | ---: | ---: |"]
    for engine, values in whole.items():
        rows.append(f"| {engine} | {min(values) / 1e3:,.2f} | {statistics.median(values) / 1e3:,.2f} | "
                    f"{min(values) / min(web_rounds):.2f}× |")
    rows.append(f"| ONNX Runtime native, one thread | | {ort_micros / 1e3:,.2f} | {ort_micros / min(web_rounds):.2f}× |")

    per_kind: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c in ["native", *wasm]:
        for i, node in enumerate(profiles[c][0]["profile"]["nodes"]):
            kind = tract_kind(node, kinds, products)
            per_kind[kind][c] += statistics.median(p["profile"]["nodes"][i]["micros"] for p in profiles[c])
            counts[kind][c] += 1
    for name, node in web[0]["nodes"].items():
        kind = kinds.get(name, "element-wise" if node["op"] in ELEMENT_WISE else node["op"])
        per_kind[kind][WEB] += statistics.median(w["nodes"][name]["micros"] for w in web if name in w["nodes"])
        counts[kind][WEB] += 1
    first = wasm[0]
    header = ["ONNX op", f"nodes: tract ({first}) / ORT-Web", "native tract µs", *[f"{c} µs" for c in wasm],
              "ORT-Web µs", f"{first} / ORT-Web"]
    ops = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for kind in sorted(per_kind, key=lambda k: -max(per_kind[k][first], per_kind[k][WEB])):
        t = per_kind[kind]
        ratio = f"{t[first] / t[WEB]:.2f}×" if t[WEB] else ""
        cells = [f"{t[c]:,.0f}" for c in ["native", *wasm, WEB]]
        ops.append(f"| {kind} | {counts[kind][first]} / {counts[kind][WEB]} | " + " | ".join(cells) + f" | {ratio} |")
    sums = {c: sum(per_kind[k][c] for k in per_kind) for c in ["native", *wasm, WEB]}
    ops.append("| **nodes summed** | | " + " | ".join(f"{sums[c]:,.0f}" for c in ["native", *wasm, WEB])
               + f" | {sums[first] / sums[WEB]:.2f}× |")
    shape = "×".join(str(d) for d in profiles["native"][0]["shape"])
    return (f"**{model}**, {shape}: four engines, {len(web)} rounds\n\n" + "\n".join(rows)
            + f"\n\n**{model}** by ONNX op (medians; ORT-Web's from its profiler, which adds its own cost)\n\n"
            + "\n".join(ops) + "\n")


def peak_gflops(ghz: float | None) -> tuple[float, str]:
    """SIMD128's peak on this host: 4 lanes × 2 flops × 2 multiply-adds issued per cycle × clock
    (`--ghz`, else the clock /proc/cpuinfo reports, which may be the nominal one)."""
    if ghz is None:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                ghz = float(line.split(":")[1]) / 1000
                break
    ghz = ghz or 0.0
    return 4 * 2 * 2 * ghz, f"4 lanes × 2 flops × 2 issued per cycle × {ghz:.2f} GHz"


def table(model: str, columns: list[str], profiles: dict[str, list[dict]], ort_micros: float, detail: int) -> str:
    """Rows: the nodes with multiply-adds (or, past `detail` nodes, each op's nodes summed), the
    others summed, the whole run, the serving API's run, GFLOP/s on the products; the ratio of
    the first wasm column to native; ONNX Runtime's whole run. Nodes are matched by name: a build
    may optimise a node differently (a direct convolution natively, im2col and a product in wasm),
    and a node a column lacks counts 0 there."""
    nodes_of = {c: profiles[c][0]["profile"]["nodes"] for c in columns}
    micros = {
        c: {n["node"]: statistics.median(p["profile"]["nodes"][i]["micros"] for p in profiles[c])
            for i, n in enumerate(nodes_of[c])}
        for c in columns
    }
    nodes = {n["node"]: n for c in columns for n in reversed(nodes_of[c])}
    order = list(dict.fromkeys(n["node"] for c in columns for n in nodes_of[c]))
    wasm = next((c for c in columns if c != "native"), None)
    shown = ["native", wasm] if wasm else ["native"]

    def kernels(names: list[str]) -> str:
        per_build = []
        for c in shown:
            found = dict.fromkeys(n["kernel"] for n in nodes_of[c] if n["node"] in names and n["kernel"])
            per_build.append(", ".join(found) or "—")
        return " / ".join(per_build) if any(k != "—" for k in per_build) else ""

    def total(c: str, names: list[str]) -> float:
        return sum(micros[c].get(name, 0.0) for name in names)

    def line(label: str, op: str, kern: str, macs: str, values: list[float]) -> str:
        cells = [f"{v:,.1f}" for v in values]
        if wasm:
            cells.append(f"{values[1] / values[0]:.2f}×" if values[0] else "")
        return f"| {label} | {op} | {kern} | {macs} | " + " | ".join(cells) + " |"

    header = ["node", "op", "kernel (native / wasm)", "multiply-adds", *[f"{c} µs" for c in columns]]
    if wasm:
        header.append(f"{wasm} / native")
    rows = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    per_node = list(rows)
    for name in order:
        node = nodes[name]
        macs = f"{node['multiply_adds']:,}" if node["multiply_adds"] else ""
        label = f"{name} ({node['mkn']})" if node["mkn"] else name
        per_node.append(line(label, node["op"], kernels([name]), macs, [total(c, [name]) for c in columns]))
    heavy = [name for name in order if nodes[name]["multiply_adds"] > 0]
    light = [name for name in order if nodes[name]["multiply_adds"] == 0]
    if len(order) > detail:
        groups: dict[str, list[str]] = defaultdict(list)
        for name in order:
            # Matrix-vector products (N = 1) apart from the others.
            op = nodes[name]["op"] + (", N = 1" if nodes[name]["mkn"].endswith("×1") else "")
            groups[op].append(name)
        for op in sorted(groups, key=lambda g: -total(columns[-1], groups[g])):
            members = groups[op]
            macs = sum(nodes[name]["multiply_adds"] for name in members)
            rows.append(line(f"{len(members)} node{'s' if len(members) > 1 else ''}", op, kernels(members), f"{macs:,}" if macs else "",
                             [total(c, members) for c in columns]))
    else:
        for name in heavy:
            node = nodes[name]
            label = f"{name} ({node['mkn']})" if node["mkn"] else name
            rows.append(line(label, node["op"], kernels([name]), f"{node['multiply_adds']:,}",
                             [total(c, [name]) for c in columns]))
        rows.append(line(f"{len(light)} other nodes", "", "", "", [total(c, light) for c in columns]))

    def whole(c: str, key: str) -> float:
        return statistics.median(p["profile"][key] for p in profiles[c])

    rows.append(line("**whole run**", "", "", "", [whole(c, "run_micros") for c in columns]))
    rows.append(line("`Model::classify`, untimed nodes", "", "", "", [whole(c, "api_micros") for c in columns]))
    macs = {c: sum(n["multiply_adds"] for n in nodes_of[c] if n["mkn"]) for c in columns}
    rates = [f"{2 * macs[c] / (total(c, [n['node'] for n in nodes_of[c] if n['mkn']]) * 1e3):.1f}" for c in columns]
    rows.append(f"| GFLOP/s on the products | | | {macs['native']:,} | " + " | ".join(rates) + (" | |" if wasm else " |"))
    shape = "×".join(str(d) for d in profiles["native"][0]["shape"])
    text = f"**{model}** (batch 1, input {shape}; ONNX Runtime, one thread: {ort_micros:,.1f} µs)\n\n"
    text += "\n".join(rows) + "\n"
    if len(order) > detail:
        text += f"\n<details><summary>{model}: each of its {len(order)} nodes</summary>\n\n"
        text += "\n".join(per_node) + "\n\n</details>\n"
    return text


def routines(columns: list[str], profiles: dict[str, list[dict]]) -> str:
    """Which kernel of tract-linalg's routine registry each build runs for each element-wise,
    reduction and depthwise function (`generic_…` and `S…4` are tract's portable Rust)."""
    builds = ["native", *[c for c in columns if c != "native"][:1]]
    found = [profiles[b][0].get("routines", {}) for b in builds]
    rows = ["| function | " + " | ".join(f"{b} kernel" for b in builds) + " |", "|" + " --- |" * (len(builds) + 1)]
    for func in found[0]:
        rows.append(f"| {func} | " + " | ".join(f.get(func, "") for f in found) + " |")
    return "Element-wise and other routines (tract-linalg's registry), per build:\n\n" + "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["mnist-cnn", "mnist-compact"])
    parser.add_argument("--kernels", nargs="+", default=["tract", "default", "4x8"])
    parser.add_argument("--epochs", nargs="+", choices=["on", "off"], default=["on"])
    parser.add_argument("--ops", nargs="+", choices=["spinfer", "tract"], default=["spinfer"],
                        help="Spinfer's own ops in the wasm build (the default), tract's only, or both")
    parser.add_argument("--detail", type=int, default=40, help="past this many nodes, a table per op")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--save", type=Path, help="write the raw profiles here (JSON)")
    parser.add_argument("--load", type=Path, help="make the tables from raw profiles saved before; run nothing")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument(
        "--wasm",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="another wasm build of the example (say, with +relaxed-simd), profiled with every kernel too",
    )
    parser.add_argument("--ghz", type=float, help="the clock for the SIMD128 peak (default: /proc/cpuinfo's)")
    parser.add_argument("--ort-web", action="store_true", help="ONNX Runtime Web too, and the per-op table against it")
    args = parser.parse_args()
    if not args.no_build and not args.load:
        build()
    builds = {label: Path(path) for label, _, path in (w.partition("=") for w in args.wasm)}
    kernels = [*args.kernels, *[f"{label} {k}" for label in builds for k in args.kernels]]
    suffixes = {"on": "", "off": NO_EPOCHS}
    ops = {"spinfer": "", "tract": TRACT_OPS}
    columns = ["native", *[k + suffixes[e] + ops[o] for k in kernels for e in args.epochs for o in args.ops]]
    if args.load:
        saved = json.loads(args.load.read_text())
        columns, profiles, ort = saved["columns"], saved["profiles"], saved["onnx_runtime"]
        web = saved.get("ort_web", {})
    else:
        if args.ort_web:
            install_ort_web()
        profiles = {m: {c: [] for c in columns} for m in args.models}
        web = {m: [] for m in args.models} if args.ort_web else {}
        for round_ in range(args.rounds):
            # The wasm columns in turn in one order, then the other: on this machine the first
            # wasm run after the native one runs slower, whichever build it is. ONNX Runtime Web
            # runs last in one round, first after native in the next.
            wasm = columns[1:] + ([WEB] if web else [])
            order = [columns[0], *(wasm if round_ % 2 == 0 else reversed(wasm))]
            for column in order:
                print(f"round {round_ + 1}/{args.rounds}: {column}", file=sys.stderr)
                for model in args.models:
                    if column == WEB:
                        web[model].append(run_web(model, profiles[model]["native"][-1]["shape"], args.runs))
                    else:
                        profiles[model][column].append(run(column, model, args.runs, builds))
        ort = {m: onnx_runtime(m, profiles[m]["native"][0]["shape"], args.runs) for m in args.models}
    if args.save:
        args.save.write_text(json.dumps({"columns": columns, "profiles": profiles, "onnx_runtime": ort, "ort_web": web}))
    text = "".join(table(m, columns, profiles[m], ort[m], args.detail) + "\n" for m in profiles)
    text += "".join(web_table(m, columns, profiles[m], web[m], ort[m]) + "\n" for m in web)
    text += routines(columns, next(iter(profiles.values()))) + "\n"
    peak, how = peak_gflops(args.ghz)
    text += f"SIMD128 peak on this host: {peak:.1f} GFLOP/s ({how}).\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
