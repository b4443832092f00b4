"""Each node of a model's batch-1 plan, natively and in wasm with each GEMM kernel, side by side.

Builds the engine's `profile` example natively and for wasm32-wasip2 (the component's `wasm`
profile), runs the wasm build on the test runner (`target/release/wasm-test`) once per kernel
(`SPINFER_WASM_GEMM`; `default`: unset, Spinfer's rule), in rounds so that the machine's noise falls on every column alike, and
prints a Markdown table per model: median microseconds per node, the multiply-adds tract counts
for it, and the GFLOP/s each column reaches on the matrix products.

The wasm columns run as `spinfer up` and Spin serve: with epoch interruption on (the runner's
default). `--epochs on off` adds a column per kernel without it (`4x8 no-epochs`), to see what
the checks cost.

    .venv/bin/python scripts/profile.py [--runs 300] [--rounds 3] [--models mnist-cnn mnist-compact]
        [--kernels tract default 4x8 4x8u1 6x8 4x16 8x8 4x4] [--epochs on off]
        [--wasm relaxed=path/to/profile.wasm] [--ghz 4.26] [--markdown out.md] [--no-build]

A relaxed-SIMD build (fused multiply-add in Spinfer's and tract's kernels) to pass as `--wasm`:

    RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" cargo build --profile wasm \
        --target wasm32-wasip2 -p spinfer-engine --example profile --target-dir target/relaxed
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NATIVE = ROOT / "target/release/examples/profile"
WASM = ROOT / "target/wasm32-wasip2/wasm/examples/profile.wasm"
RUNNER = ROOT / "target/release/wasm-test"
# A column's suffix for a run without epoch interruption.
NO_EPOCHS = " no-epochs"


def build() -> None:
    cargo = ["cargo", "build", "-q"]
    subprocess.run([*cargo, "--release", "-p", "spinfer-engine", "--example", "profile"], cwd=ROOT, check=True)
    subprocess.run([*cargo, "--release", "-p", "spinfer-tests", "--bin", "wasm-test"], cwd=ROOT, check=True)
    subprocess.run(
        [*cargo, "--profile", "wasm", "--target", "wasm32-wasip2", "-p", "spinfer-engine", "--example", "profile"],
        cwd=ROOT,
        check=True,
    )


def run(column: str, models: list[str], runs: int, builds: dict[str, Path]) -> dict[str, dict]:
    """One profile per model for one column: `native`, or a wasm kernel choice, prefixed with
    the label of another wasm build (`relaxed 4x8`) for that build."""
    paths = [f"models/{m}.onnx" for m in models]
    env = dict(os.environ)
    env.pop("SPINFER_WASM_GEMM", None)
    if column.endswith(NO_EPOCHS):
        column = column.removesuffix(NO_EPOCHS)
        env["WASM_TEST_EPOCHS"] = "0"
    label, _, kernel = column.rpartition(" ")
    wasm = builds.get(label, WASM)
    if column == "native":
        command = [str(NATIVE), "--runs", str(runs), *paths]
    else:
        if kernel != "default":
            env["SPINFER_WASM_GEMM"] = kernel
        command = [str(RUNNER), str(wasm), "--runs", str(runs), *paths]
    out = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {Path(line["model"]).stem: line["profile"] for line in lines}


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


def table(model: str, columns: list[str], profiles: dict[str, list[dict]]) -> str:
    """Rows: the nodes with multiply-adds, the others summed, the whole run."""
    def median(column: str, index: int) -> float:
        return statistics.median(p["nodes"][index]["micros"] for p in profiles[column])

    first = profiles[columns[0]][0]["nodes"]
    header = ["node", "op", "multiply-adds", *[f"{c} µs" for c in columns]]
    rows = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    heavy = [i for i, n in enumerate(first) if n["multiply_adds"] > 0]
    light = [i for i, n in enumerate(first) if n["multiply_adds"] == 0]
    for i in heavy:
        node = first[i]
        cells = [f"{median(c, i):.1f}" for c in columns]
        rows.append(f"| {node['node']} | {node['op']} | {node['multiply_adds']:,} | " + " | ".join(cells) + " |")
    others = [f"{sum(median(c, i) for i in light):.1f}" for c in columns]
    rows.append(f"| {len(light)} other nodes | | | " + " | ".join(others) + " |")
    whole = [f"**{statistics.median(p['run_micros'] for p in profiles[c]):.1f}**" for c in columns]
    rows.append("| whole run | | | " + " | ".join(whole) + " |")
    api = [f"{statistics.median(p['api_micros'] for p in profiles[c]):.1f}" for c in columns]
    rows.append("| `Classifier::run`, untimed nodes | | | " + " | ".join(api) + " |")
    macs = sum(first[i]["multiply_adds"] for i in heavy)
    rates = [f"{2 * macs / (sum(median(c, i) for i in heavy) * 1e3):.1f}" for c in columns]
    rows.append(f"| GFLOP/s on the products | | {macs:,} | " + " | ".join(rates) + " |")
    return f"**{model}** (batch 1)\n\n" + "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["mnist-cnn", "mnist-compact"])
    parser.add_argument("--kernels", nargs="+", default=["tract", "default", "4x8"])
    parser.add_argument("--epochs", nargs="+", choices=["on", "off"], default=["on"])
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument(
        "--wasm",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="another wasm build of the example (say, with +relaxed-simd), profiled with every kernel too",
    )
    parser.add_argument("--ghz", type=float, help="the clock for the SIMD128 peak (default: /proc/cpuinfo's)")
    args = parser.parse_args()
    if not args.no_build:
        build()
    builds = {label: Path(path) for label, _, path in (w.partition("=") for w in args.wasm)}
    kernels = [*args.kernels, *[f"{label} {k}" for label in builds for k in args.kernels]]
    suffixes = {"on": "", "off": NO_EPOCHS}
    columns = ["native", *[k + suffixes[e] for k in kernels for e in args.epochs]]
    profiles: dict[str, dict[str, list]] = {m: {c: [] for c in columns} for m in args.models}
    for round_ in range(args.rounds):
        for column in columns:
            print(f"round {round_ + 1}/{args.rounds}: {column}", file=sys.stderr)
            for model, profile in run(column, args.models, args.runs, builds).items():
                profiles[model][column].append(profile)
    peak, how = peak_gflops(args.ghz)
    text = "\n".join(table(m, columns, profiles[m]) for m in args.models)
    text += f"\nSIMD128 peak on this host: {peak:.1f} GFLOP/s ({how}).\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
