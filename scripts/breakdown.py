"""Where one `/predict` (or `/healthz`) request's time goes, fresh instance against reused, at one
connection.

Every layer that serves a request adds its own `server-timing` span: `spinfer up` (`host`), the
component (`component`: body read, routing, decoding, inference, encoding; `ready`: getting the
instance's models before it; `check`, inside `component`: a snapshot's model checked against the
mounted files before it first serves), the API (`decode`: JSON and preprocessing; `infer`). The client
times the round trip, and the server's minor page faults come from /proc. Each row is the
median over the requests of that layer's span minus the spans inside it.

    .venv/bin/python scripts/breakdown.py [--requests 2000] [--healthz] [--markdown out.md] [-- spinfer up flags]
"""

import argparse
import http.client
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from support import Server, load_test_images  # noqa: E402


def minor_faults(pid: int) -> int:
    # Field 10 of /proc/<pid>/stat, after the command name (which may hold spaces).
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[7])


def spans(headers) -> dict[str, float]:
    out = {}
    for name, value in headers:
        if name.lower() != "server-timing":
            continue
        for metric in value.split(","):
            parts = metric.strip().split(";")
            for param in parts[1:]:
                if param.strip().startswith("dur="):
                    out[parts[0].strip()] = float(param.strip()[4:])
    return out


def measure(args: list[str], requests: int, body: bytes | None) -> dict[str, float]:
    """`POST /predict` with `body`, or `GET /healthz` when there is none."""
    server = Server(*args)
    try:
        host, port = server.addr.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port))
        rows = []
        for i in range(requests + 200):
            if i == 200:  # after warm-up
                faults = minor_faults(server.process.pid)
            started = time.perf_counter()
            if body is None:
                connection.request("GET", "/healthz")
            else:
                connection.request("POST", "/predict", body, {"content-type": "application/json"})
            response = connection.getresponse()
            response.read()
            rtt = (time.perf_counter() - started) * 1e3
            assert response.status == 200, response.status
            if i >= 200:
                rows.append((rtt, spans(response.getheaders())))
        faults = minor_faults(server.process.pid) - faults
    finally:
        server.close()
    med = lambda f: statistics.median(f(rtt, s) for rtt, s in rows)
    return {
        "client round trip": med(lambda rtt, s: rtt),
        "outside the host's handler (TCP, hyper, the Python client)": med(lambda rtt, s: rtt - s["host"]),
        "host around the component (routing, body read, an instance, wasi-http)":
            med(lambda rtt, s: s["host"] - s["component"] - s["ready"]),
        "component: models ready (`ready`, and a snapshot's `check` of the served model)":
            med(lambda rtt, s: s["ready"] + s.get("check", 0.0)),
        "component: body read, routing, response encoding":
            med(lambda rtt, s: s["component"] - s.get("check", 0.0) - s.get("decode", 0.0) - s.get("infer", 0.0)),
        "JSON decode and preprocessing": med(lambda rtt, s: s.get("decode", 0.0)),
        "inference (tract in wasm)": med(lambda rtt, s: s.get("infer", 0.0)),
        "minor page faults per request (server process)": faults / requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--healthz", action="store_true", help="GET /healthz instead of POST /predict")
    parser.add_argument("up_flags", nargs="*", help="more `spinfer up` flags for both runs (after --)")
    options = parser.parse_args()
    images, _ = load_test_images(1)
    body = None if options.healthz else json.dumps({"pixels": images[0].flatten().tolist()}).encode()
    fresh = measure(["--max-instance-reuse-count", "1", *options.up_flags], options.requests, body)
    reused = measure(options.up_flags, options.requests, body)
    lines = ["| part (medians, ms) | fresh instance | reused instance |", "| --- | ---: | ---: |"]
    for part in fresh:
        lines.append(f"| {part} | {fresh[part]:.3f} | {reused[part]:.3f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if options.markdown:
        options.markdown.write_text(table)


if __name__ == "__main__":
    main()
