"""Admission by waiting time: ordinary load waits its turn and is served; only requests that
would wait past the bound are shed, each with a JSON 503 and `Retry-After`. Counts of answers,
never timings."""

import json
from concurrent.futures import ThreadPoolExecutor

from support import Server, load_test_images
from test_faults import faulty_app


def test_ordinary_load_is_served_not_shed():
    server = Server()  # the defaults
    images, labels = load_test_images(16)
    bodies = [json.dumps({"pixels": image.flatten().tolist()}).encode() for image in images]

    def client(index):
        # One connection's worth of back-to-back requests.
        return [server.request("POST", "/predict", bodies[(index + i) % 16], {"content-type": "application/json"})
                for i in range(10)]

    try:
        with ThreadPoolExecutor(64) as pool:
            replies = [reply for replies in pool.map(client, range(64)) for reply in replies]
    finally:
        server.close()
    statuses = [reply.status for reply in replies]
    assert statuses.count(200) == len(replies), {s: statuses.count(s) for s in set(statuses)}


def test_requests_that_would_wait_past_the_bound_are_shed_with_retry_after(tmp_path):
    # Two run at once, each for 200 ms, and a request may wait 50 ms: of 32 sent together,
    # the first ones run and most of the rest are shed.
    app = faulty_app(tmp_path, 128, "--max-running", "2", "--max-queue-wait-ms", "50")
    try:
        with ThreadPoolExecutor(32) as pool:
            replies = list(pool.map(lambda _: app.request("GET", "/busy?200"), range(32)))
        # The server is fine afterwards.
        assert app.request("GET", "/count").status == 200
    finally:
        app.close()
    served = [reply for reply in replies if reply.status == 200]
    shed = [reply for reply in replies if reply.status == 503]
    assert len(served) + len(shed) == len(replies), [reply.status for reply in replies]
    assert len(served) >= 2 and len(shed) >= 16, (len(served), len(shed))
    for reply in shed:
        assert reply.headers["retry-after"] == "1"
        assert reply.headers["content-type"] == "application/json" and "capacity" in reply.json()["error"]
