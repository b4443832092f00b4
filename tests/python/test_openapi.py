"""`/openapi.json` is a valid OpenAPI 3 document, and real requests and responses of every
route it describes validate against it (openapi-core)."""

import base64
import json

import numpy as np
import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from support import encode, load_test_images

MODEL = "mnist-compact"


@pytest.fixture(scope="module")
def api(server):
    reply = server.request("GET", "/openapi.json")
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    return OpenAPI.from_dict(reply.json())


def exchanges(server):
    """(method, path, pattern, body, content type, expected status) of real calls to each route."""
    images, _ = load_test_images(2)
    pixels = images[0].flatten().tolist()
    both = [images[0].flatten().tolist(), images[1].flatten().tolist()]
    infer = {"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32",
                         "data": (images[0].flatten() / 255).tolist()}]}
    j = lambda value: json.dumps(value).encode()
    model = f"/v2/models/{MODEL}"
    return [
        ("GET", "/healthz", "/healthz", None, None, 200),
        ("GET", "/openapi.json", "/openapi.json", None, None, 200),
        ("POST", "/predict", "/predict", j({"pixels": pixels}), "application/json", 200),
        ("POST", "/predict?top_k=10", "/predict", j({"instances": both}), "application/json", 200),
        ("POST", "/predict", "/predict", encode(255 - images[1]), "image/png", 200),
        ("POST", "/predict", "/predict", j({"image": base64.b64encode(encode(images[0])).decode()}), "application/json", 200),
        ("POST", "/predict", "/predict", j({"pixels": [1, 2]}), "application/json", 400),
        ("POST", "/predict?model=nope", "/predict", j({"pixels": pixels}), "application/json", 404),
        ("POST", "/predict", "/predict", b"x", "text/plain", 415),
        ("GET", "/v2", "/v2", None, None, 200),
        ("GET", "/v2/health/live", "/v2/health/live", None, None, 200),
        ("GET", "/v2/health/ready", "/v2/health/ready", None, None, 200),
        ("GET", model, "/v2/models/{name}", None, None, 200),
        ("GET", "/v2/models/nope", "/v2/models/{name}", None, None, 404),
        ("GET", f"{model}/ready", "/v2/models/{name}/ready", None, None, 200),
        ("POST", f"{model}/infer", "/v2/models/{name}/infer", j(infer), "application/json", 200),
        ("POST", f"{model}/infer", "/v2/models/{name}/infer", j({"inputs": []}), "application/json", 400),
    ]


def test_every_described_route_answers_as_described(api, server):
    for method, path, pattern, body, content_type, status in exchanges(server):
        headers = {"content-type": content_type} if content_type else {}
        reply = server.request(method, path, body, headers)
        assert reply.status == status, (method, path, reply.status, reply.body[:200])
        route, _, query = path.partition("?")
        args = dict(pair.split("=") for pair in query.split("&")) if query else {}
        view_args = {"name": route.split("/")[3]} if "{name}" in pattern else None
        request = MockRequest(server.url, method.lower(), route, path_pattern=pattern, args=args, view_args=view_args,
                              data=body or b"", content_type=content_type or "application/json")
        response = MockResponse(reply.body, status_code=reply.status, headers=reply.headers,
                                content_type=reply.headers["content-type"].split(";")[0])
        if status < 400:
            api.validate_request(request)
        api.validate_response(request, response)


def test_the_page_is_described_and_served(server):
    reply = server.request("GET", "/")
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/html")
    assert b"<canvas" in reply.body and len(reply.body) < 50 * 1024
