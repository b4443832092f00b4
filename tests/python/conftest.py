"""Fixtures shared by the Python tests (helpers live in `support.py`)."""

import pytest

from support import Server


@pytest.fixture(scope="session")
def server():
    """The app as a newcomer runs it (`spinfer up`), with the metrics listener on."""
    server = Server("--metrics-listen", "127.0.0.1:0")
    yield server
    server.close()
