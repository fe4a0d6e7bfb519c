"""`omnisched flower`: authentication required, and our tasks visible with names and args."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid

import pytest

from omnisched_allinone.app import Part
from omnisched_allinone.settings import Settings
from tests.app_thread import AppThread
from tests.ops.conftest import clean_env, free_port, omnisched, unique, wait_for

PASSWORD = "fl0wer-" + uuid.uuid4().hex[:10]


def _get(url: str, auth: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except OSError:
        return 0, ""


def test_flower_refuses_to_start_without_credentials_unless_insecure():
    result = omnisched(["flower"], clean_env(CELERY_BROKER_URL="amqp://127.0.0.1:1//"))
    assert result.returncode == 2
    assert "FLOWER_BASIC_AUTH" in result.stderr and "--insecure" in result.stderr


@pytest.mark.services
@pytest.mark.slow
def test_flower_answers_401_without_credentials_and_lists_a_task_that_ran(
    rabbitmq, redis_url, background
):
    # Given: Flower with basic auth, and a worker on the same broker
    port = free_port()
    auth = f"admin:{PASSWORD}"
    env = clean_env(
        CELERY_BROKER_URL=rabbitmq,
        CELERY_RESULT_BACKEND=redis_url,
        FLOWER_BASIC_AUTH=auth,
        FLOWER_PORT=str(port),
        FLOWER_ADDRESS="127.0.0.1",
    )
    flower = background(["flower"], env, "flower")
    base = f"http://127.0.0.1:{port}"
    wait_for("Flower to answer", lambda: _get(f"{base}/healthcheck")[0] == 200, 30)

    # Then: without credentials, 401
    assert _get(f"{base}/api/tasks")[0] == 401
    assert _get(f"{base}/api/tasks", "admin:wrong")[0] == 401

    settings = Settings(
        MONGODB_URL="memory://", CELERY_BROKER_URL=rabbitmq, CELERY_RESULT_BACKEND=redis_url
    )
    with AppThread(settings, (Part.WORKER,), worker_hostname=unique("flower-") + "@test") as app:
        from omnisched_allinone.celery_app import celery_app

        # When: a task runs (resent until Flower's event consumer has caught one)
        sent: list[str] = []

        def listed() -> dict | None:
            task_id = str(uuid.uuid4())
            celery_app.send_task(
                "cleanup_old_execution_records",
                kwargs={"retention_days": 7},
                task_id=task_id,
                queue="maintenance",
                routing_key="maintenance",
                exchange="maintenance",
            )
            sent.append(task_id)
            code, body = _get(f"{base}/api/tasks", auth)
            assert code == 200
            tasks = json.loads(body)
            return next((tasks[t] for t in sent if t in tasks and tasks[t].get("name")), None)

        task = wait_for("Flower to list a task that ran", listed, 30)
        assert app.error is None

    # Then: it is listed with its name and arguments
    assert task["name"] == "cleanup_old_execution_records"
    assert "retention_days" in str(task.get("kwargs"))
    assert flower.terminate() in (0, -15)
    assert PASSWORD not in flower.text()
