"""Every route of the HTTP/JSON API: the happy path and its error paths, over real HTTP on loopback."""

from __future__ import annotations

import json

import pytest

from omnisched_allinone.core.errors import PermissionDenied, Unavailable
from omnisched_allinone.http.routes import ROUTES
from tests.http.conftest import FakeDispatcher, job_body, start_api, stop_api, unique

SEED_CREATE = (
    b'{"name": "Custom Scraping Job", "job_type": "SCRAPING", '
    b'"target_service": "scraper-service", "target_method": "ScrapeCompetitorPrices", '
    b'"schedule_config": {"type": "cron", "config": {"hour": "10", "minute": "0"}}, '
    b'"parameters": {"competitor_ids": ["amazon"]}, "description": "Custom job description"}'
)


def assert_error(response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert body["message"]
    if field is not None:
        assert body["details"] == {"field": field}
    return body


# Create.
async def test_the_seed_create_example_as_curl_sends_it(client):
    # curl -d sends form content type unless told otherwise; the body is JSON all the same.
    response = await client.post(
        "/v1/jobs",
        content=SEED_CREATE,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["name"] == "Custom Scraping Job"
    assert job["id"].startswith("job-custom-scraping-job-")
    assert job["status"] == "ACTIVE"
    assert job["queue"] == "scraping"
    assert job["version"] == "1"  # int64 is a string in the proto JSON mapping
    assert job["schedule_config"]["config"]["expression"] == "0 10 * * *"
    assert job["parameters"] == {"competitor_ids": ["amazon"]}
    assert job["description"] == "Custom job description"
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert (await client.get(response.headers["location"])).json() == job


async def test_create_accepts_lower_camel_case_names(client):
    body = {
        "name": unique(),
        "jobType": "SCRAPING",
        "targetService": "scraper-service",
        "targetMethod": "ScrapeCompetitorPrices",
        "scheduleConfig": {"type": "interval", "config": {"every": "10", "period": "minutes"}},
        "policies": {"maxRetries": 1},
    }
    response = await client.post("/v1/jobs", json=body)
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["target_service"] == "scraper-service"
    assert job["policies"]["max_retries"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (job_body(name=""), "name"),
        (job_body(job_type="NOPE"), "job_type"),
        (job_body(target_service="nowhere"), "target_service"),
        (job_body(schedule_config=None), "schedule_config"),
        ({**job_body(), "colour": "red"}, "colour"),
        (job_body(schedule_config={"type": "cron", "bogus": 1}), "schedule_config.bogus"),
        (job_body(policies={"maxRetries": "many"}), "policies.max_retries"),
        (job_body(paused="yes"), "paused"),
        (job_body(parameters=[1, 2]), "parameters"),
    ],
)
async def test_create_refuses_an_invalid_field_naming_it(client, body, field):
    response = await client.post("/v1/jobs", json=body)
    assert_error(response, 400, "INVALID_ARGUMENT", field)


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[1, 2]", b'"a string"', b'{"name": NaN}', b"\xff\xfe"],
)
async def test_create_refuses_a_body_that_is_not_a_json_object(client, raw):
    response = await client.post("/v1/jobs", content=raw)
    assert_error(response, 400, "INVALID_ARGUMENT", "body")


async def test_create_refuses_a_taken_name(client, make_job):
    job = await make_job()
    response = await client.post("/v1/jobs", json=job_body(name=job["name"]))
    assert_error(response, 409, "ALREADY_EXISTS")


async def test_a_body_over_the_message_limit_is_413():
    api = await start_api(settings=None)
    try:
        limit = api.services.settings.max_message_bytes
        body = job_body(description="x" * (limit + 1))
        response = await api.client.post("/v1/jobs", json=body)
        assert_error(response, 413, "RESOURCE_EXHAUSTED")
    finally:
        await stop_api(api)


# Get, list.
async def test_get_answers_the_job_or_404(client, make_job):
    job = await make_job()
    assert (await client.get(f"/v1/jobs/{job['id']}")).json() == job
    assert_error(await client.get("/v1/jobs/job-missing"), 404, "NOT_FOUND")


async def test_list_filters_and_pages_like_list_scheduled_jobs(client, make_job):
    made = [await make_job(labels={"team": "pricing"}) for _ in range(3)]
    await make_job(job_type="MONITORING", labels={"team": "ops"})
    first = (await client.get("/v1/jobs", params={"label": "team=pricing", "page_size": 2})).json()
    assert len(first["jobs"]) == 2 and first["next_page_token"]
    second = (
        await client.get(
            "/v1/jobs",
            params={
                "label": "team=pricing",
                "page_size": 2,
                "page_token": first["next_page_token"],
            },
        )
    ).json()
    assert second["next_page_token"] == ""
    ids = [job["id"] for job in first["jobs"] + second["jobs"]]
    assert sorted(ids) == sorted(job["id"] for job in made)
    monitoring = (await client.get("/v1/jobs", params={"jobType": "MONITORING"})).json()
    assert [job["job_type"] for job in monitoring["jobs"]] == ["MONITORING"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page_size": "501"}, "page_size"),
        ({"page_size": "many"}, "page_size"),
        ({"page_token": "forged"}, "page_token"),
        ({"status": "SLEEPING"}, "status"),
        ({"colour": "red"}, "colour"),
        ([("queue", "a"), ("queue", "b")], "queue"),
    ],
)
async def test_list_refuses_an_invalid_query_parameter_naming_it(client, params, field):
    response = await client.get("/v1/jobs", params=params)
    assert_error(response, 400, "INVALID_ARGUMENT", field)


# Update, delete.
async def test_patch_changes_only_the_fields_that_are_set(client, make_job):
    job = await make_job(description="before", labels={"a": "1"})
    response = await client.patch(
        f"/v1/jobs/{job['id']}",
        json={"description": "after", "labels": {"values": {"b": "2"}}, "expectedVersion": "1"},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["description"] == "after"
    assert updated["labels"] == {"b": "2"}
    assert updated["name"] == job["name"]
    assert updated["version"] == "2"


async def test_patch_errors(client, make_job):
    job = await make_job()
    stale = await client.patch(f"/v1/jobs/{job['id']}", json={"expected_version": 7})
    assert_error(stale, 409, "ABORTED")
    bad = await client.patch(
        f"/v1/jobs/{job['id']}",
        json={"schedule_config": {"type": "cron", "config": {"hour": "25"}}},
    )
    assert bad.status_code == 400 and bad.json()["details"]["field"].startswith("schedule_config")
    other_id = await client.patch(f"/v1/jobs/{job['id']}", json={"job_id": "job-other"})
    assert_error(other_id, 400, "INVALID_ARGUMENT", "job_id")
    assert_error(await client.patch("/v1/jobs/job-missing", json={}), 404, "NOT_FOUND")


async def test_delete_answers_deleted_then_404(client, make_job):
    job = await make_job()
    response = await client.delete(f"/v1/jobs/{job['id']}")
    assert response.json() == {"job_id": job["id"], "deleted": True}
    assert_error(await client.delete(f"/v1/jobs/{job['id']}"), 404, "NOT_FOUND")


# Pause, resume.
async def test_pause_and_resume(client, make_job):
    job = await make_job()
    paused = await client.post(f"/v1/jobs/{job['id']}:pause", json={"note": "holiday"})
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "PAUSED" and paused.json()["pause_note"] == "holiday"
    resumed = await client.post(f"/v1/jobs/{job['id']}:resume")
    assert resumed.json()["status"] == "ACTIVE" and resumed.json()["pause_note"] == ""


async def test_pause_and_resume_errors(client, make_job):
    job = await make_job()
    long_note = await client.post(f"/v1/jobs/{job['id']}:pause", json={"note": "n" * 501})
    assert_error(long_note, 400, "INVALID_ARGUMENT", "note")
    assert_error(await client.post("/v1/jobs/job-missing:pause"), 404, "NOT_FOUND")
    assert_error(await client.post("/v1/jobs/job-missing:resume"), 404, "NOT_FOUND")
    unknown_verb = await client.post(f"/v1/jobs/{job['id']}:explode")
    assert_error(unknown_verb, 404, "NOT_FOUND")


# Run.
async def test_run_without_a_worker_engine_is_412(client, make_job):
    job = await make_job()
    response = await client.post(f"/v1/jobs/{job['id']}:run")
    body = assert_error(response, 412, "FAILED_PRECONDITION")
    assert "no worker engine configured" in body["message"]


async def test_run_with_an_engine_answers_the_execution_and_is_idempotent(api, client, make_job):
    dispatcher = FakeDispatcher()
    api.services.service.dispatcher = dispatcher
    job = await make_job()
    body = {"parameters": {"competitor_ids": ["ebay"]}, "request_id": "req-1"}
    response = await client.post(f"/v1/jobs/{job['id']}:run", json=body)
    assert response.status_code == 200, response.text
    ran = response.json()
    assert ran["success"] is True and ran["job_id"] == job["id"]
    execution = ran["execution"]
    assert execution["id"] == ran["execution_id"]
    assert execution["trigger"] == "MANUAL" and execution["status"] == "PENDING"
    assert execution["enqueued"] is True and ran["task_id"] == f"task-{execution['id']}"
    assert execution["parameters"] == {"competitor_ids": ["ebay"]}
    again = (await client.post(f"/v1/jobs/{job['id']}:run", json=body)).json()
    assert again["execution_id"] == ran["execution_id"]
    assert dispatcher.published == [ran["execution_id"]]
    assert_error(await client.post("/v1/jobs/job-missing:run"), 404, "NOT_FOUND")


# Status, executions.
async def test_status_answers_next_run_times(client, make_job):
    job = await make_job()
    status = (await client.get(f"/v1/jobs/{job['id']}/status", params={"next_runs": 3})).json()
    assert status["job_id"] == job["id"] and status["status"] == "ACTIVE"
    assert len(status["next_run_times"]) == 3
    assert status["next_run_times"][0] == job["next_run_at"]
    assert status["active_executions"] == 0 and "last_execution" not in status
    too_many = await client.get(f"/v1/jobs/{job['id']}/status", params={"next_runs": 101})
    assert_error(too_many, 400, "INVALID_ARGUMENT", "next_runs")
    assert_error(await client.get("/v1/jobs/job-missing/status"), 404, "NOT_FOUND")


async def test_executions_of_a_job_and_of_all_jobs(api, client, make_job):
    api.services.service.dispatcher = FakeDispatcher()
    job = await make_job()
    ran = (await client.post(f"/v1/jobs/{job['id']}:run")).json()
    listed = (await client.get(f"/v1/jobs/{job['id']}/executions")).json()
    assert [e["id"] for e in listed["executions"]] == [ran["execution_id"]]
    everything = (await client.get("/v1/executions", params={"trigger": "MANUAL"})).json()
    assert ran["execution_id"] in [e["id"] for e in everything["executions"]]
    one = (await client.get(f"/v1/executions/{ran['execution_id']}")).json()
    assert one == ran["execution"]
    assert_error(await client.get("/v1/jobs/job-missing/executions"), 404, "NOT_FOUND")
    assert_error(await client.get("/v1/executions", params={"job_id": "job-x"}), 404, "NOT_FOUND")
    assert_error(await client.get("/v1/executions/exe-missing"), 404, "NOT_FOUND")
    bad_status = await client.get("/v1/executions", params={"status": "DONE"})
    assert_error(bad_status, 400, "INVALID_ARGUMENT", "status")


# Preview.
async def test_preview_answers_fire_times(client):
    body = {
        "schedule_config": {"type": "cron", "config": {"hour": "10", "minute": "0"}},
        "count": 3,
        "after": "2030-01-01T00:00:00Z",
    }
    response = await client.post("/v1/schedules:preview", json=body)
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["fire_times"] == [
        "2030-01-01T10:00:00Z",
        "2030-01-02T10:00:00Z",
        "2030-01-03T10:00:00Z",
    ]
    assert preview["schedule_config"]["config"]["expression"] == "0 10 * * *"
    assert preview["description"]


@pytest.mark.parametrize(
    ("body", "field_prefix"),
    [
        ({}, "schedule_config"),
        ({"schedule_config": {"type": "cron", "config": {"minute": "61"}}}, "schedule_config"),
        ({"schedule_config": {"type": "cron"}, "count": 1000}, "count"),
        ({"schedule_config": {"type": "cron"}, "after": "yesterday"}, "after"),
    ],
)
async def test_preview_refuses_an_invalid_request(client, body, field_prefix):
    response = await client.post("/v1/schedules:preview", json=body)
    assert_error(response, 400, "INVALID_ARGUMENT")
    assert response.json()["details"]["field"].startswith(field_prefix)


# The edges: unknown routes, probes, the auth hook, the documents.
async def test_unknown_routes_and_methods_answer_json_errors(client):
    assert_error(await client.get("/v1/nothing"), 404, "NOT_FOUND")
    assert_error(await client.put("/v1/jobs"), 405, "UNIMPLEMENTED")
    assert_error(await client.get("/v1/jobs/"), 404, "NOT_FOUND")  # no redirect


async def test_health_and_readiness(api, client, monkeypatch):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}

    async def down() -> None:
        raise Unavailable("MongoDB did not answer")

    monkeypatch.setattr(api.services.store, "ping", down)
    assert_error(await client.get("/readyz"), 503, "UNAVAILABLE")
    assert (await client.get("/healthz")).status_code == 200


async def test_the_auth_hook_refuses_before_the_service_is_called():
    seen = []

    async def authorize(request, route) -> None:
        seen.append(route.op_id)
        if request.method != "GET":
            raise PermissionDenied("read-only caller")

    api = await start_api(authorize=authorize)
    try:
        assert (await api.client.get("/v1/jobs")).status_code == 200
        assert_error(await api.client.post("/v1/jobs", json=job_body()), 403, "PERMISSION_DENIED")
        assert (await api.client.get("/healthz")).status_code == 200
        assert seen == ["ListScheduledJobs", "CreateScheduledJob"]
        assert (await api.client.get("/v1/jobs")).json()["jobs"] == []
    finally:
        await stop_api(api)


async def test_openapi_document_describes_every_route(client):
    document = (await client.get("/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    for route in ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        assert operation["operationId"] == route.op_id
        assert str(route.status) in operation["responses"]
    schemas = document["components"]["schemas"]
    assert schemas["ScheduledJob"]["properties"]["version"]["type"] == ["string", "integer"]
    assert schemas["ScheduledJob"]["properties"]["created_at"]["format"] == "date-time"
    assert schemas["ScheduleConfig"]["properties"]["config"] == {
        "type": "object",
        "additionalProperties": {"type": "string"},
    }
    assert schemas["ListScheduledJobsResponse"]["properties"]["jobs"]["items"] == {
        "$ref": "#/components/schemas/ScheduledJob"
    }
    json.dumps(document)  # serialisable as is


async def test_docs_page_is_served_without_a_cdn(client):
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    bundle = await client.get("/docs/static/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    assert (await client.get("/docs/static/swagger-ui.css")).status_code == 200
    assert_error(await client.get("/docs/static/index.html"), 404, "NOT_FOUND")


async def test_an_unexpected_failure_is_500_internal_without_details(api, client, monkeypatch):
    async def broken(job_id: str) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api.services.service, "get_job", broken)
    response = await client.get("/v1/jobs/job-any")
    body = assert_error(response, 500, "INTERNAL")
    assert "secret" not in response.text and body["details"] == {}
