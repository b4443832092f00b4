"""Faults fail loud, and alone: a guest that traps, runs out of memory or overruns its deadline
gets a JSON 5xx and takes down nothing but its own instance; a guest cannot read outside its
mounts or reach the network; bad model files stop the server at start, named."""

import shutil
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

from support import ROOT, Server, spinfer_bin

FAULTY = ROOT / "target/wasm32-wasip2/wasm/spinfer_faulty.wasm"


def faulty_app(tmp_path, reuse: int, *args: str) -> Server:
    if not FAULTY.exists():
        pytest.fail(f"{FAULTY} not found: scripts/test.sh builds it")
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    (mounted / "note.txt").write_text("inside the mount")
    (tmp_path / "spin.toml").write_text(textwrap.dedent(f"""\
        spin_manifest_version = 2
        [application]
        name = "faulty"
        [[trigger.http]]
        route = "/..."
        component = "faulty"
        [component.faulty]
        source = "{FAULTY}"
        files = [{{ source = "{mounted}", destination = "/data" }}]
        allowed_outbound_hosts = []
        """))
    return Server("--request-timeout", "1", "--memory-limit-mb", "32", "--max-instance-reuse-count", str(reuse),
                  *args, manifest=str(tmp_path / "spin.toml"))


def assert_json_error(reply, status):
    assert reply.status == status, (reply.status, reply.body[:200])
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["error"]


@pytest.mark.parametrize("reuse", [1, 128], ids=["fresh instances", "reused instances"])
def test_a_fault_fails_only_its_own_instance(tmp_path, reuse):
    app = faulty_app(tmp_path, reuse)
    try:
        assert app.request("GET", "/count").status == 200
        for fault, status in [("/trap", 500), ("/oom", 500), ("/spin", 504)]:
            with ThreadPoolExecutor(8) as pool:
                beside = [pool.submit(app.request, "GET", "/count") for _ in range(6)]
                failed = app.request("GET", fault)
                answers = [future.result() for future in beside]
            assert_json_error(failed, status)
            # Requests beside it: answered, unless they shared the failing instance (only possible
            # when instances are reused), in which case they fail with it, never hang.
            for answer in answers:
                assert answer.status == 200 or (reuse > 1 and answer.status in (500, 504)), answer
            # The instance that failed is gone: the next request gets one that works.
            after = app.request("GET", "/count")
            assert after.status == 200, after
            if reuse == 1:
                assert after.body == b"1"
        # The server itself is fine.
        assert app.request("GET", "/count").status == 200
    finally:
        app.close()


def test_the_guest_sees_only_its_mounts_and_no_network(tmp_path):
    app = faulty_app(tmp_path, 1)
    try:
        # (And it sees the request id the client gets back.)
        seen = app.request("GET", "/request-id", headers={"x-request-id": "trace-7"})
        assert seen.body == b"trace-7" and seen.headers["x-request-id"] == "trace-7"
        made = app.request("GET", "/request-id")
        assert made.body.decode() == made.headers["x-request-id"]
        assert app.request("GET", "/read?/data/note.txt").status == 200
        for outside in ["/etc/passwd", "/proc/self/environ", str(ROOT / "Cargo.toml"), "/data/../../etc/hostname"]:
            reply = app.request("GET", f"/read?{outside}")
            assert reply.status == 403, (outside, reply.body)
        refused = app.request("GET", "/fetch")
        assert refused.status == 403, refused.body
    finally:
        app.close()


def with_models_copy(tmp_path):
    """The app's spin.toml, written into `tmp_path` to serve a copy of `models/`: (manifest, models)."""
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models", models)
    manifest = (ROOT / "spin.toml").read_text().replace('source = "models"', f'source = "{models}"')
    manifest = manifest.replace('source = "target/', f'source = "{ROOT}/target/')
    # Without exclusions the folder is mounted in place, so that the test can change it under
    # the running server (with them, the server serves a copy made at start, as Spin does).
    manifest = "\n".join(line for line in manifest.splitlines() if not line.startswith("exclude_files"))
    (tmp_path / "spin.toml").write_text(manifest)
    return tmp_path / "spin.toml", models


def test_the_server_refuses_bad_model_files_at_start(tmp_path):
    manifest, models = with_models_copy(tmp_path)

    def start():
        return subprocess.run([spinfer_bin(), "up", "--listen", "127.0.0.1:0", "-f", manifest],
                              capture_output=True, text=True, timeout=60)

    onnx = models / "mnist-seed.onnx"
    onnx.write_bytes(onnx.read_bytes()[:1000])  # truncated
    failed = start()
    assert failed.returncode != 0 and "mnist-seed.onnx" in failed.stderr and "SHA-256" in failed.stderr, failed.stderr
    onnx.unlink()  # missing
    failed = start()
    assert failed.returncode != 0 and "mnist-seed.onnx is missing" in failed.stderr, failed.stderr


def test_a_model_that_goes_missing_is_a_503_and_the_others_serve_on(tmp_path):
    manifest, models = with_models_copy(tmp_path)
    server = Server("--max-instance-reuse-count", "1", manifest=str(manifest))
    try:
        (models / "mnist-seed.onnx").unlink()
        lean = models / "mnist-lean.onnx"
        lean.write_bytes(lean.read_bytes()[:2000])
        pixels = {"pixels": [0] * 784}
        gone = server.post_json("/predict?model=mnist-seed", pixels)
        assert gone.status == 503 and "mnist-seed" in gone.json()["error"], gone
        cut = server.post_json("/predict?model=mnist-lean", pixels)
        assert cut.status == 503 and "mnist-lean" in cut.json()["error"], cut
        for name in ["mnist-compact", "mnist-cnn"]:
            assert server.post_json(f"/predict?model={name}", pixels).status == 200
    finally:
        server.close()
