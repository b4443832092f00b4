"""What an operator of `spinfer up` sees: Prometheus metrics that match the traffic, request
ids in headers and logs, CORS for the origins a deployer allows, and a graceful SIGTERM."""

import json
import signal
import socket
import time
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from support import Server, load_test_images
from test_faults import faulty_app
from test_shutdown import app_with_faulty

MODEL = "mnist-compact"


def scrape(server) -> dict[tuple, float]:
    reply = server.request("GET", "/metrics", addr=server.metrics_addr)
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def delta(before, after, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_metrics_label_another_apps_routes_by_its_manifest(tmp_path):
    # Spinfer's API beside a component that is not Spinfer's (the faulty one, at /faulty/...):
    # the API's paths are labelled with its route templates, any other with the manifest route.
    server = Server("--metrics-listen", "127.0.0.1:0", manifest=str(app_with_faulty(tmp_path)))
    try:
        before = scrape(server)
        assert server.request("GET", "/faulty/count").status == 200
        assert server.request("GET", "/faulty/no-such-fault").status == 404
        assert server.request("GET", f"/v2/models/{MODEL}").status == 200
        assert server.request("GET", "/no-such-api-route").status == 404
        after = scrape(server)
    finally:
        server.close()
    requests = "spinfer_requests_total"
    assert delta(before, after, requests, route="/faulty/...", method="GET", status="200") == 1
    assert delta(before, after, requests, route="/faulty/...", method="GET", status="404") == 1
    assert delta(before, after, requests, route="/v2/models/{name}", method="GET", status="200") == 1
    assert delta(before, after, requests, route="/...", method="GET", status="404") == 1


def test_another_spin_app_alone_is_served_and_measured(tmp_path):
    # A Spin app with no Spinfer component at all: routed by its manifest (`/...`), measured
    # under that route, with no model and no inference time, and its request ids passed in.
    app = faulty_app(tmp_path, 128, "--metrics-listen", "127.0.0.1:0")
    try:
        before = scrape(app)
        for _ in range(3):
            assert app.request("GET", "/count").status == 200
        echoed = app.request("GET", "/request-id", headers={"x-request-id": "another-app-1"})
        assert echoed.status == 200 and echoed.body == b"another-app-1"
        after = scrape(app)
    finally:
        app.close()
    requests = "spinfer_requests_total"
    assert delta(before, after, requests, route="/...", method="GET", status="200") == 4
    seconds = "spinfer_request_duration_seconds_count"
    assert delta(before, after, seconds, route="/...", model="none") == 4
    assert not [key for key in after if key[0].startswith("spinfer_inference_duration_seconds")]


def test_metrics_count_the_traffic(server):
    images, _ = load_test_images(1)
    pixels = images[0].flatten().tolist()
    before = scrape(server)
    for _ in range(3):
        assert server.post_json("/predict", {"pixels": pixels}).status == 200
    assert server.post_json("/predict", {"pixels": [1]}).status == 400
    for _ in range(2):
        assert server.request("GET", "/healthz").status == 200
    too_big = b"0" * (10 * 1024 * 1024 + 1)
    assert server.request("POST", "/predict", too_big, {"content-type": "application/json"}).status == 413
    after = scrape(server)

    requests = "spinfer_requests_total"
    assert delta(before, after, requests, route="/predict", method="POST", status="200") == 3
    assert delta(before, after, requests, route="/predict", method="POST", status="400") == 1
    assert delta(before, after, requests, route="/predict", method="POST", status="413") == 1
    assert delta(before, after, requests, route="/healthz", method="GET", status="200") == 2
    assert delta(before, after, "spinfer_request_duration_seconds_count", route="/predict", model=MODEL) == 3
    assert delta(before, after, "spinfer_inference_duration_seconds_count", model=MODEL) == 3
    assert delta(before, after, "spinfer_requests_rejected_total", reason="size") == 1
    # The buckets are cumulative and end with +Inf, which holds every sample.
    total = after[("spinfer_inference_duration_seconds_count", (("model", MODEL),))]
    assert after[("spinfer_inference_duration_seconds_bucket", (("le", "+Inf"), ("model", MODEL)))] == total
    started = after[("spinfer_instances_started_total", (("component", "classifier"),))]
    reused = after.get(("spinfer_instance_reuses_total", (("component", "classifier"),)), 0)
    assert started >= 1 and reused >= 1, (started, reused)
    assert after[("spinfer_instances_live", (("component", "classifier"),))] >= 0
    assert server.request("GET", "/", addr=server.metrics_addr).status == 404


def test_request_ids_are_kept_or_made(server):
    mine = server.request("GET", "/healthz", headers={"x-request-id": "trace-42"})
    assert mine.headers["x-request-id"] == "trace-42"
    made = server.request("GET", "/healthz")
    uuid.UUID(made.headers["x-request-id"])
    other = server.request("GET", "/healthz")
    assert other.headers["x-request-id"] != made.headers["x-request-id"]
    # An id that is too long or not printable is replaced, not echoed.
    long = server.request("GET", "/healthz", headers={"x-request-id": "x" * 500})
    uuid.UUID(long.headers["x-request-id"])


def test_cors_is_off_unless_a_deployer_allows_origins(server):
    preflight = {"origin": "https://a.example", "access-control-request-method": "POST",
                 "access-control-request-headers": "content-type"}
    closed = server.request("OPTIONS", "/predict", headers=preflight)
    assert closed.status == 204 and "access-control-allow-origin" not in closed.headers
    assert "access-control-allow-origin" not in server.request("GET", "/healthz", headers={"origin": "https://a.example"}).headers

    opened = Server("--variable", "allowed_origins=https://a.example, https://b.example")
    try:
        answer = opened.request("OPTIONS", "/predict", headers=preflight)
        assert answer.status == 204
        assert answer.headers["access-control-allow-origin"] == "https://a.example"
        assert "POST" in answer.headers["access-control-allow-methods"]
        assert "content-type" in answer.headers["access-control-allow-headers"]
        get = opened.request("GET", "/healthz", headers={"origin": "https://b.example"})
        assert get.status == 200 and get.headers["access-control-allow-origin"] == "https://b.example"
        assert "x-request-id" in get.headers["access-control-expose-headers"]
        assert get.headers["vary"].lower() == "origin"
        stranger = opened.request("GET", "/healthz", headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in stranger.headers
        # Errors carry the headers too, so a browser script can read what went wrong.
        error = opened.request("POST", "/predict", b"{", {"origin": "https://a.example", "content-type": "application/json"})
        assert error.status == 400 and error.headers["access-control-allow-origin"] == "https://a.example"
    finally:
        opened.close()


def test_sigterm_lets_in_flight_requests_finish():
    server = Server()
    try:
        host, port = server.addr.rsplit(":", 1)
        images, _ = load_test_images(1)
        body = json.dumps({"pixels": images[0].flatten().tolist()}).encode()
        head = (f"POST /predict HTTP/1.1\r\nhost: {server.addr}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
        # A request in flight: its headers and half its body are in when the signal comes.
        client = socket.create_connection((host, int(port)), timeout=20)
        client.sendall(head + body[: len(body) // 2])
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, int(port)), timeout=2)
        client.sendall(body[len(body) // 2 :])
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
        client.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert b'"label":7' in answer
        assert server.process.wait(15) == 0
    finally:
        server.close()


def test_slow_clients_are_cut_off_and_hold_nothing():
    server = Server("--read-timeout", "1", "--max-in-flight", "4")
    try:
        host, port = server.addr.rsplit(":", 1)
        # Headers dribbled in and never finished; a body that stops half way.
        headers = socket.create_connection((host, int(port)), timeout=10)
        headers.sendall(b"POST /predict HTTP/1.1\r\nhost: x\r\n")
        bodies = []
        for _ in range(3):
            body = socket.create_connection((host, int(port)), timeout=10)
            body.sendall(b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                         b"content-length: 5000\r\n\r\n{\"pixels\": [")
            bodies.append(body)
        started = time.monotonic()
        # Their bodies are read outside any instance: the component still answers meanwhile.
        assert server.request("GET", "/healthz").status == 200
        for body in bodies:
            answer = body.recv(65536)
            assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
            assert b"did not arrive within 1 s" in answer
            body.close()
        rest = headers.recv(65536)
        assert rest == b"" or rest.startswith(b"HTTP/1.1 408"), rest[:100]
        assert time.monotonic() - started < 5
        headers.close()
        # Their slots are free again: the whole in-flight limit serves.
        assert all(server.request("GET", "/healthz").status == 200 for _ in range(8))
    finally:
        server.close()


def test_every_layer_reports_its_span_and_they_nest(server):
    import http.client
    host, port = server.addr.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    images, _ = load_test_images(1)
    connection.request("POST", "/predict", json.dumps({"pixels": images[0].flatten().tolist()}).encode(),
                       {"content-type": "application/json"})
    response = connection.getresponse()
    response.read()
    spans = {}
    for name, value in response.getheaders():
        if name.lower() == "server-timing":
            for metric in value.split(","):
                label, _, duration = metric.strip().partition(";dur=")
                spans[label] = float(duration)
    connection.close()
    # `check` comes from an instance whose snapshot model serves for the first time.
    assert set(spans) - {"check"} == {"decode", "infer", "component", "ready", "host"}, spans
    assert spans["host"] >= spans["component"] + spans["ready"]
    assert spans["component"] >= spans["decode"] + spans["infer"] + spans.get("check", 0.0)
