"""Schemathesis against /openapi.json: no server error, and every answer matches the document.

Each operation is fuzzed with ids that do not exist and, in positive mode, with a job or an
execution that does (so the 200 answers are checked too); the documented request examples are sent
as well. Bounded: a dozen examples per operation and mode.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.http.conftest import FakeDispatcher, ThreadedApi, job_body

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def running():
    with ThreadedApi() as threaded:
        # With an engine, :run answers executions too (not only 412).
        threaded.api.services.service.dispatcher = FakeDispatcher()
        yield threaded


@pytest.fixture(scope="module")
def schema(running):
    loaded = schemathesis.openapi.from_url(f"{running.base_url}/openapi.json")
    # The event stream never ends by itself; test_watch.py covers it.
    return loaded.exclude(operation_id="WatchJobExecutions")


def existing_ids(base_url: str) -> dict[str, str]:
    """A fresh job (each operation may delete or pause it) and one execution of it."""
    job = httpx.post(f"{base_url}/v1/jobs", json=job_body()).json()
    ran = httpx.post(f"{base_url}/v1/jobs/{job['id']}:run").json()
    return {"job_id": job["id"], "execution_id": ran["execution_id"]}


def fuzz(operation: Any, mode: GenerationMode, path_parameters: dict[str, str] | None) -> None:
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    @settings(
        max_examples=12,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case) -> None:
        case.call_and_validate(checks=CHECKS, timeout=10)

    check()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented(running, schema, mode):
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 15
    for operation in operations:
        raw = operation.definition.raw
        path_names = [p["name"] for p in raw.get("parameters", []) if p["in"] == "path"]
        if mode is GenerationMode.NEGATIVE and not (raw.get("parameters") or "requestBody" in raw):
            continue  # nothing to make invalid
        fuzz(operation, mode, None)
        if path_names and mode is GenerationMode.POSITIVE:
            ids = existing_ids(running.base_url)
            fuzz(operation, mode, {name: ids[name] for name in path_names})
