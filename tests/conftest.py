"""Shared test fixtures: real services are required in CI and skipped (with the reason) locally."""

from __future__ import annotations

import os
import socket

import pytest

pytest_plugins = ["tests.support.fixtures"]

REQUIRE_SERVICES = os.environ.get("OMNISCHED_REQUIRE_SERVICES") == "1"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    """Skip when the service is down, or fail when OMNISCHED_REQUIRE_SERVICES=1 (CI)."""
    if _answers(host, port):
        return
    message = f"{name} is not answering on {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (OMNISCHED_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@pytest.fixture
def rabbitmq() -> str:
    need_service("RabbitMQ", "127.0.0.1", 5672)
    return "amqp://guest:guest@127.0.0.1:5672//"


@pytest.fixture
def redis_url() -> str:
    need_service("Redis", "127.0.0.1", 6379)
    return "redis://127.0.0.1:6379/15"
