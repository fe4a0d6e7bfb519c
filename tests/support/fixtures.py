"""Pytest fixtures for tests/support/mongo_wire.py: one MongoDB for the whole session.

Use them from a conftest with `from tests.support.fixtures import mongo_wire_server,
mongo_wire_url`. The server runs in a thread of the test process; subprocesses (API, workers,
beats) reach it through the URL, and it outlives any of them being killed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.mongo_wire import MongoWireServer


@pytest.fixture(scope="session")
def mongo_wire_server() -> Iterator[MongoWireServer]:
    """The session's mongomock-backed MongoDB server (`reset()` drops every database)."""
    with MongoWireServer() as server:
        yield server


@pytest.fixture(scope="session")
def mongo_wire_url(mongo_wire_server: MongoWireServer) -> str:
    """`mongodb://127.0.0.1:PORT/?directConnection=true` of the session's server."""
    return mongo_wire_server.url
