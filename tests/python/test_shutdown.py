"""Shutdown is clean: on SIGTERM or Ctrl-C, `spinfer up` answers the requests in flight, ends
its idle and busy instances through their workers, exits 0, and logs no panic, warning or
error."""

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from support import ROOT, Server, load_test_images
from test_faults import FAULTY, with_models_copy

BUSY_MS = 1500


def app_with_faulty(tmp_path):
    """The app's spin.toml plus the faulty component under `/faulty/...`."""
    if not FAULTY.exists():
        pytest.fail(f"{FAULTY} not found: scripts/test.sh builds it")
    manifest, _ = with_models_copy(tmp_path)
    manifest.write_text(manifest.read_text() + f"""
[[trigger.http]]
route = "/faulty/..."
component = "faulty"

[component.faulty]
source = "{FAULTY}"
allowed_outbound_hosts = []
""")
    return manifest


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
@pytest.mark.parametrize("reuse", [128, 1], ids=["reused instances", "fresh instances"])
def test_shutdown_answers_in_flight_requests_and_logs_nothing_wrong(tmp_path, reuse, sig):
    log = tmp_path / "server.log"
    server = Server("--max-instance-reuse-count", str(reuse), manifest=str(app_with_faulty(tmp_path)), log=log)
    images, labels = load_test_images(8)
    try:
        with ThreadPoolExecutor(16) as pool:
            busy = [pool.submit(server.request, "GET", f"/faulty/busy?{BUSY_MS}") for _ in range(4)]
            # Predictions on parallel connections, answered before the signal: with reuse, they
            # leave idle instances behind.
            predictions = [pool.submit(server.post_json, "/predict", {"pixels": image.flatten().tolist()})
                           for image in images]
            for future, label in zip(predictions, labels):
                reply = future.result()
                assert reply.status == 200 and reply.json()["label"] == label, reply
            # The busy requests are running now (they started before the predictions).
            time.sleep(0.2)
            assert not any(future.done() for future in busy)
            server.process.send_signal(sig)
            answers = [future.result() for future in busy]
        assert server.process.wait(timeout=20) == 0
    finally:
        server.close()
    for answer in answers:
        assert answer.status == 200 and answer.body == f"busy {BUSY_MS} ms".encode(), answer
    text = log.read_text()
    assert "shutting down" in text, text
    bad = [line for line in text.splitlines() if "panicked" in line or " WARN " in line or "ERROR" in line]
    assert not bad, "\n".join(bad)
