"""No secret in logs or banners: passwords in URLs, bearer tokens and API tokens are masked."""

from __future__ import annotations

import time
import uuid

import pytest

from omnisched_allinone.app import Part, banner
from omnisched_allinone.settings import Settings, mask_secrets
from tests.ops.conftest import clean_env, free_port

SECRET = "Pw" + uuid.uuid4().hex[:12]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("authorization: Bearer abc.def-123", "authorization: Bearer ***"),
        ("('authorization', 'bearer tok_1')", "('authorization', 'bearer ***')"),
        ("no token here", "no token here"),
    ],
)
def test_bearer_tokens_are_masked(text, masked):
    assert mask_secrets(text) == masked


def test_banner_shows_no_password():
    settings = Settings(
        MONGODB_URL=f"mongodb://admin:{SECRET}@db:27017",
        CELERY_BROKER_URL=f"amqp://guest:{SECRET}@mq:5672//",
        CELERY_RESULT_BACKEND=f"redis://:{SECRET}@redis:6379/0",
    )
    text = banner(settings, (Part.GRPC, Part.WORKER), 50054, dev=False, http_port=8054)
    assert SECRET not in text
    assert "mongodb://admin:***@db:27017" in text


@pytest.mark.slow
def test_processes_waiting_for_unreachable_servers_print_no_secret(background):
    # Given: URLs with passwords for servers that are not there, and API tokens
    closed = free_port()
    token = "tok" + uuid.uuid4().hex[:12]
    common = {
        "OMNISCHED_GRPC_HOST": "127.0.0.1",
        "OMNISCHED_API_TOKENS": token,
        "OMNISCHED_STORE_TIMEOUT_MS": "300",
        "LOG_LEVEL": "DEBUG",
    }
    store_down = clean_env(
        **common,
        GRPC_PORT=str(free_port()),
        OMNISCHED_HTTP_PORT=str(free_port()),
        MONGODB_URL=f"mongodb://admin:{SECRET}@127.0.0.1:{closed}/?authSource=admin",
        CELERY_BROKER_URL=f"amqp://guest:{SECRET}@127.0.0.1:{closed}//",
        CELERY_RESULT_BACKEND=f"redis://:{SECRET}@127.0.0.1:{closed}/0",
    )
    broker_down = clean_env(
        **common,
        GRPC_PORT=str(free_port()),
        OMNISCHED_HTTP_PORT=str(free_port()),
        MONGODB_URL="memory://",
        CELERY_BROKER_URL=f"amqp://guest:{SECRET}@127.0.0.1:{closed}//",
        CELERY_RESULT_BACKEND=f"redis://:{SECRET}@127.0.0.1:{closed}/0",
    )
    # When: they start and retry for a while (JSON logs too), then stop
    runs = [
        background(["run"], store_down, "store-down"),
        background(["run", "--parts", "grpc,worker,beat"], broker_down, "broker-down"),
        background(["run", "--parts", "worker,beat"], {**broker_down, "LOG_FORMAT": "json"}),
    ]
    time.sleep(7)
    outputs = []
    for run in runs:
        run.terminate(timeout_s=30)
        outputs.append(run.text())

    # Then: they said what they wait for, and never printed a secret
    assert "waiting for MongoDB" in outputs[0], outputs[0][-2000:]
    assert "waiting for RabbitMQ" in outputs[1], outputs[1][-2000:]
    assert "waiting for Redis" in outputs[1], outputs[1][-2000:]
    assert "waiting for RabbitMQ" in outputs[2], outputs[2][-2000:]
    for text in outputs:
        assert SECRET not in text
        assert token not in text
