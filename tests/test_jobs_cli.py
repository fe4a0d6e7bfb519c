"""`omnisched jobs …` against a real API server on loopback: output, JSON, errors, exit codes."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from concurrent import futures
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from click.testing import CliRunner, Result
from google.protobuf import json_format

from omnisched_allinone import jobs_cli
from omnisched_allinone.cli import main
from omnisched_allinone.core.executions import Execution, ExecutionError, ExecutionStatus
from omnisched_allinone.jobs_cli import ExitCode
from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.proto import scheduler_service_pb2_grpc as pb_grpc
from tests.api.server_thread import ServerThread

_names = itertools.count()


class FinishingDispatcher:
    """Stands in for the broker and a worker: a published run starts, then ends a moment later
    with the status its `outcome` parameter names (SUCCESS by default; STARTED keeps it running),
    recorded in the store as a worker would."""

    def __init__(self) -> None:
        self.store: Any = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def publish(self, execution: Execution, job: Any, *, countdown_s: float = 0.0) -> str:
        task = asyncio.create_task(self._finish(execution))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return f"task-{execution.id}"

    async def drain(self) -> None:
        await asyncio.gather(*self._tasks)

    async def _finish(self, execution: Execution) -> None:
        await asyncio.sleep(0.1)
        started = datetime.now(UTC)
        await self.store.update_execution(
            execution.id,
            {"status": ExecutionStatus.STARTED, "started_at": started, "attempts": 1},
        )
        outcome = ExecutionStatus(execution.parameters.get("outcome", "SUCCESS"))
        if outcome is ExecutionStatus.STARTED:
            return
        await asyncio.sleep(0.1)
        changes: dict[str, Any] = {
            "status": outcome,
            "finished_at": datetime.now(UTC),
            "duration_s": 0.1,
        }
        if outcome is ExecutionStatus.FAILURE:
            changes["error"] = ExecutionError("RuntimeError", "boom")
        await self.store.update_execution(execution.id, changes)


@pytest.fixture(scope="module")
def server():
    dispatcher = FinishingDispatcher()
    with ServerThread(dispatcher=dispatcher) as running:
        dispatcher.store = running.services.store
        yield running
        running.call(dispatcher.drain())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def invoke(port: int, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["jobs", "--server", f"127.0.0.1:{port}", *args], input=input)


@pytest.fixture
def cli(server):
    def run(*args: str, input: str | None = None) -> Result:
        return invoke(server.port, *args, input=input)

    return run


def unique(prefix: str = "cli-job") -> str:
    return f"{prefix}-{next(_names)}"


@pytest.fixture
def make_job(server):
    """Given: a job created straight through the API (not through the CLI under test)."""

    def make(**overrides: Any) -> pb.ScheduledJob:
        fields: dict[str, Any] = {
            "name": unique(),
            "job_type": "SCRAPING",
            "target_service": "scraper-service",
            "target_method": "ScrapeCompetitorPrices",
            "schedule_config": pb.ScheduleConfig(type="cron", config={"minute": "*/5"}),
            "parameters": {"competitor_ids": ["amazon"]},
        }
        fields.update(overrides)
        return server.stub.CreateScheduledJob(pb.CreateScheduledJobRequest(**fields))

    return make


def stored(server, job_id: str) -> pb.ScheduledJob:
    return server.stub.GetScheduledJob(pb.GetScheduledJobRequest(job_id=job_id))


def as_dict(message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result


TARGET = ["--type", "scraping", "--target", "scraper-service", "--method", "ScrapeCompetitorPrices"]


# Create.
def test_create_sends_every_option(cli, server):
    name = unique()
    result = ok(
        cli(
            "create",
            "--name", name,
            *TARGET,
            "--cron", "0 8 * * 1-5",
            "--timezone", "Europe/Berlin",
            "--param", "n=5",
            "--param", 'ids=["a", "b"]',
            "--param", "note=plain text",
            "--params-json", '{"n": 1, "deep": {"x": true}}',
            "--queue", "manual",
            "--label", "team=data",
            "--label", "tier=gold",
            "--max-retries", "7",
            "--timeout-s", "120",
            "--soft-timeout-s", "100",
            "--overlap", "allow",
            "--catchup-window-s", "60",
            "--jitter-s", "3",
            "--paused",
            "--description", "weekday prices",
        )
    )  # fmt: skip
    job_id = result.stdout.split("job created: ")[1].split()[0]
    job = stored(server, job_id)
    assert job.name == name and job.description == "weekday prices"
    assert job.job_type == "SCRAPING" and job.queue == "manual" and job.status == "PAUSED"
    assert job.schedule_config.config["expression"] == "0 8 * * 1-5"
    assert job.schedule_config.timezone == "Europe/Berlin"
    assert as_dict(job.parameters) == {
        "n": 5.0,
        "ids": ["a", "b"],
        "note": "plain text",
        "deep": {"x": True},
    }
    assert dict(job.labels) == {"team": "data", "tier": "gold"}
    policies = job.policies
    assert (policies.max_retries, policies.time_limit_s, policies.overlap) == (7, 120, "ALLOW")
    assert policies.soft_time_limit_s == 100
    assert (policies.catchup_window_s, policies.jitter_s) == (60, 3)
    assert name in result.stdout and "PAUSED" in result.stdout


@pytest.mark.parametrize(
    ("schedule", "kind", "config"),
    [
        (["--every", "2", "--period", "hours"], "interval", {"every": "2", "period": "hours"}),
        (["--every", "30"], "interval", {"every": "30", "period": "seconds"}),
        (["--at", "2999-01-01T00:00:00Z"], "once", {"run_at": "2999-01-01T00:00:00+00:00"}),
    ],
)
def test_create_with_each_kind_of_schedule(cli, server, schedule, kind, config):
    result = ok(cli("--json", "create", "--name", unique(), *TARGET, *schedule))
    created = json.loads(result.stdout)
    assert created["schedule_config"]["type"] == kind
    assert config.items() <= created["schedule_config"]["config"].items()


def test_create_json_is_the_stored_job(cli, server):
    result = ok(cli("--json", "create", "--name", unique(), *TARGET, "--cron", "*/5 * * * *"))
    created = json.loads(result.stdout)
    assert created == as_dict(stored(server, created["id"]))


def test_create_from_file_with_options_over_it(cli, server, tmp_path):
    request = pb.CreateScheduledJobRequest(
        name="from-file",
        job_type="SCRAPING",
        target_service="scraper-service",
        target_method="ScrapeCompetitorPrices",
        schedule_config=pb.ScheduleConfig(type="cron", config={"expression": "0 3 * * *"}),
        parameters={"a": 1},
        labels={"origin": "file"},
    )
    path = tmp_path / "job.json"
    path.write_text(json_format.MessageToJson(request))
    name = unique()
    result = ok(
        cli(
            "--json", "create", "--from-file", str(path), "--name", name,
            "--timezone", "Asia/Tokyo", "--param", "b=2", "--label", "team=data",
        )
    )  # fmt: skip
    job = stored(server, json.loads(result.stdout)["id"])
    assert job.name == name
    assert job.schedule_config.config["expression"] == "0 3 * * *"
    assert job.schedule_config.timezone == "Asia/Tokyo"
    assert as_dict(job.parameters) == {"a": 1.0, "b": 2.0}
    assert dict(job.labels) == {"origin": "file", "team": "data"}


def test_create_from_stdin(cli, server):
    request = {
        "name": unique(),
        "job_type": "MONITORING",
        "schedule_config": {"type": "interval", "config": {"every": "5", "period": "minutes"}},
    }
    result = ok(cli("--json", "create", "--from-file", "-", input=json.dumps(request)))
    assert stored(server, json.loads(result.stdout)["id"]).queue == "monitoring"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cron", "* * * * *", "--every", "5"], "choose one schedule"),
        (["--period", "hours"], "--period and --start-at describe an --every schedule"),
        (["--timezone", "UTC"], "--timezone needs a schedule"),
        (["--param", "novalue"], "'novalue' is not KEY=VALUE"),
        (["--params-json", "{nope"], "not JSON"),
        (["--params-json", "[1]"], "must be a JSON object"),
        (["--label", "=x"], "'=x' is not KEY=VALUE"),
        (["--every", "0"], "--every"),
    ],
)
def test_create_usage_mistakes_exit_2_without_traceback(cli, args, message):
    result = cli("create", "--name", unique(), *TARGET, *args)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_create_from_a_file_that_is_not_a_request(cli, tmp_path):
    path = tmp_path / "job.json"
    path.write_text('{"nme": "typo"}')
    result = cli("create", "--from-file", str(path))
    assert result.exit_code == ExitCode.USAGE
    assert "not a CreateScheduledJobRequest" in result.stderr


# Get / list.
def test_get_shows_the_job(cli, make_job):
    job = make_job(labels={"team": "ops"}, description="the prices")
    result = ok(cli("get", job.id))
    for text in (job.id, job.name, "the prices", "cron */5 * * * *", "team=ops", "scraper-service"):
        assert text in result.stdout, text
    next_run = job.next_run_at.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert next_run in result.stdout


def test_get_json_is_the_proto_mapping(cli, make_job):
    job = make_job()
    assert json.loads(ok(cli("--json", "get", job.id)).stdout) == as_dict(job)


def test_list_filters_and_follows_pages(cli, make_job):
    team = unique("team")
    jobs = [make_job(labels={"team": team}) for _ in range(3)]
    paused = make_job(labels={"team": team}, paused=True)

    table = ok(cli("list", "--label", f"team={team}")).stdout
    assert all(job.id in table for job in [*jobs, paused])
    assert "4 job(s)" in table

    page = json.loads(
        ok(cli("--json", "list", "--label", f"team={team}", "--page-size", "1")).stdout
    )
    assert len(page["jobs"]) == 1 and page["next_page_token"]
    everything = json.loads(
        ok(cli("--json", "list", "--label", f"team={team}", "--page-size", "1", "--all")).stdout
    )
    assert [job["id"] for job in everything["jobs"]] == sorted(j.id for j in [*jobs, paused])
    assert "next_page_token" not in everything
    filtered = json.loads(
        ok(cli("--json", "list", "--label", f"team={team}", "--status", "paused")).stdout
    )
    assert [job["id"] for job in filtered["jobs"]] == [paused.id]


# Update / pause / resume / delete.
def test_update_sends_only_the_options_given(cli, server, make_job):
    job = make_job(description="before", labels={"team": "a"})
    result = ok(
        cli("--json", "update", job.id, "--description", "after", "--every", "2",
            "--period", "hours", "--max-retries", "9")
    )  # fmt: skip
    updated = json.loads(result.stdout)
    assert updated == as_dict(stored(server, job.id))
    assert updated["description"] == "after" and updated["version"] == str(job.version + 1)
    assert updated["schedule_config"]["config"]["period"] == "hours"
    assert updated["policies"]["max_retries"] == 9
    assert updated["policies"]["time_limit_s"] == job.policies.time_limit_s
    assert updated["name"] == job.name and updated["labels"] == {"team": "a"}
    assert updated["parameters"] == as_dict(job.parameters)


def test_update_replaces_parameters_and_labels(cli, server, make_job):
    job = make_job(labels={"team": "a"})
    ok(cli("update", job.id, "--param", "x=1", "--label", "tier=gold"))
    updated = stored(server, job.id)
    assert as_dict(updated.parameters) == {"x": 1.0}
    assert dict(updated.labels) == {"tier": "gold"}


def test_update_with_a_stale_version_is_an_api_error(cli, server, make_job):
    job = make_job()
    result = cli("update", job.id, "--description", "x", "--expected-version", "99")
    assert result.exit_code == ExitCode.API_ERROR
    assert result.stderr.startswith("error: ABORTED: ")
    assert stored(server, job.id) == job


def test_update_without_changes_is_a_usage_error(cli, make_job):
    result = cli("update", make_job().id, "--expected-version", "1")
    assert result.exit_code == ExitCode.USAGE
    assert "nothing to update" in result.stderr


def test_pause_and_resume(cli, server, make_job):
    job = make_job()
    assert "job paused: " in ok(cli("pause", job.id, "--note", "maintenance")).stdout
    paused = stored(server, job.id)
    assert paused.status == "PAUSED" and paused.pause_note == "maintenance"
    resumed = json.loads(ok(cli("--json", "resume", job.id)).stdout)
    assert resumed["status"] == "ACTIVE" and "pause_note" not in resumed


def test_delete_with_yes(cli, server, make_job):
    job = make_job()
    assert ok(cli("delete", job.id, "--yes")).stdout == f"job deleted: {job.id}\n"
    assert invoke(server.port, "get", job.id).exit_code == ExitCode.NOT_FOUND


def test_delete_without_a_terminal_needs_yes(cli, server, make_job):
    job = make_job()
    result = cli("delete", job.id)
    assert result.exit_code == ExitCode.USAGE
    assert "stdin is not a terminal; pass --yes" in result.stderr
    assert stored(server, job.id) == job


@pytest.mark.parametrize(("answer", "deleted"), [("y", True), ("n", False)])
def test_delete_on_a_terminal_asks(cli, server, make_job, monkeypatch, answer, deleted):
    monkeypatch.setattr(jobs_cli, "_stdin_is_interactive", lambda: True)
    job = make_job()
    result = cli("delete", job.id, input=f"{answer}\n")
    assert f"Delete job {job.id} ({job.name})?" in result.stderr
    assert result.exit_code == (ExitCode.OK if deleted else ExitCode.FAILED)
    remaining = json.loads(ok(cli("--json", "list", "--page-size", "500", "--all")).stdout)
    assert (job.id not in {j["id"] for j in remaining["jobs"]}) is deleted


# Runs.
def test_run_enqueues_with_overrides(cli, server, make_job):
    job = make_job()
    result = ok(cli("--json", "run", job.id, "--param", "limit=3", "--request-id", "r-1"))
    answer = json.loads(result.stdout)
    assert answer["success"] is True and answer["job_id"] == job.id
    assert answer["task_id"] == f"task-{answer['execution_id']}"
    execution = answer["execution"]
    assert execution["parameters"] == {"competitor_ids": ["amazon"], "limit": 3.0}
    assert execution["request_id"] == "r-1" and execution["trigger"] == "MANUAL"
    again = json.loads(ok(cli("--json", "run", job.id, "--request-id", "r-1")).stdout)
    assert again["execution_id"] == answer["execution_id"]


def test_run_wait_follows_the_run_until_success(cli, make_job):
    job = make_job()
    result = ok(cli("run", job.id, "--wait"))
    first, *_, last = result.stdout.splitlines()
    assert first.startswith("run enqueued: execution exe-")
    # Intermediate states are shown as they are seen; a fast run may skip STARTED.
    execution_id = first.split()[3]
    assert last == f"{execution_id} SUCCESS"


def test_run_wait_json_is_the_final_execution(cli, make_job):
    answer = json.loads(ok(cli("--json", "run", make_job().id, "--wait")).stdout)
    assert answer["execution"]["status"] == "SUCCESS"
    assert answer["execution"]["id"] == answer["execution_id"]


def test_run_wait_exits_1_when_the_run_failed(cli, make_job):
    result = cli("run", make_job().id, "--param", "outcome=FAILURE", "--wait")
    assert result.exit_code == ExitCode.FAILED
    assert result.stdout.splitlines()[-1].endswith(" FAILURE: RuntimeError: boom")


def test_run_wait_gives_up_after_the_wait_timeout(cli, make_job):
    result = cli(
        "run", make_job().id, "--param", "outcome=STARTED", "--wait", "--wait-timeout", "0.3"
    )
    assert result.exit_code == ExitCode.FAILED
    assert result.stderr.startswith("error: execution exe-") and "after 0.3s" in result.stderr


# Status / history / preview.
def test_status(cli, make_job):
    job = make_job()
    answer = json.loads(ok(cli("--json", "status", job.id, "--next", "3")).stdout)
    assert answer["job_id"] == job.id and len(answer["next_run_times"]) == 3
    table = ok(cli("status", job.id)).stdout
    assert job.id in table and "cron */5 * * * *" in table and "runs 0" in table


def test_history_of_a_job_and_of_all(cli, make_job):
    job = make_job()
    ok(cli("run", job.id, "--wait"))
    failure = json.loads(
        cli("--json", "run", job.id, "--param", "outcome=FAILURE", "--wait").stdout
    )["execution_id"]

    table = ok(cli("history", job.id)).stdout
    assert failure in table and "SUCCESS" in table and "RuntimeError: boom" in table
    page = json.loads(ok(cli("--json", "history", job.id, "--limit", "1")).stdout)
    assert [e["id"] for e in page["executions"]] == [failure] and page["next_page_token"]
    failures = json.loads(
        ok(cli("--json", "history", "--all", "--status", "failure", "--limit", "500")).stdout
    )
    assert failure in {e["id"] for e in failures["executions"]}
    assert {e["status"] for e in failures["executions"]} == {"FAILURE"}


@pytest.mark.parametrize("args", [[], ["job-1", "--all"]])
def test_history_needs_a_job_or_all(cli, args):
    result = cli("history", *args)
    assert result.exit_code == ExitCode.USAGE and "JOB_ID or --all" in result.stderr


def test_preview(cli):
    answer = json.loads(
        ok(
            cli("--json", "preview", "--cron", "0 8 * * 1-5", "--count", "3",
                "--after", "2030-01-04T12:00:00")
        ).stdout
    )  # fmt: skip
    assert answer["fire_times"] == [
        "2030-01-07T08:00:00Z",
        "2030-01-08T08:00:00Z",
        "2030-01-09T08:00:00Z",
    ]
    table = ok(
        cli("preview", "--cron", "0 8 * * *", "--timezone", "Europe/Berlin",
            "--after", "2030-01-04T12:00:00Z", "--count", "1")
    ).stdout  # fmt: skip
    assert "2030-01-05T07:00:00Z" in table and "2030-01-05T08:00:00+01:00" in table


def test_preview_needs_a_schedule(cli):
    assert cli("preview").exit_code == ExitCode.USAGE


# Watch.
def test_watch_json_prints_one_event_per_line(server, make_job):
    job = make_job()
    results: list[Result] = []
    watcher = threading.Thread(
        target=lambda: results.append(
            invoke(server.port, "--json", "watch", job.id, "--max-events", "3")
        )
    )
    watcher.start()
    deadline = time.monotonic() + 20
    while watcher.is_alive() and time.monotonic() < deadline:
        # The watch sees only what happens after it started, which this thread cannot observe.
        server.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=job.id))
        watcher.join(0.5)
    assert not watcher.is_alive()
    (result,) = results
    ok(result)
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(events) == 3
    assert {event["execution"]["job_id"] for event in events} == {job.id}
    assert all(event["at"].endswith("Z") for event in events)
    assert {event["execution"]["status"] for event in events} <= {"PENDING", "STARTED", "SUCCESS"}


def test_watch_prints_readable_lines(server, make_job):
    job = make_job()
    results: list[Result] = []
    watcher = threading.Thread(
        target=lambda: results.append(invoke(server.port, "watch", "--max-events", "1"))
    )
    watcher.start()
    while watcher.is_alive():
        server.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=job.id))
        watcher.join(0.5)
    line = ok(results[0]).stdout.strip()
    assert "exe-" in line and "MANUAL" in line


# Errors and exit codes.
def test_unknown_job_is_not_found(cli):
    result = cli("get", "job-nope")
    assert result.exit_code == ExitCode.NOT_FOUND == 4
    assert result.stderr == "error: NOT_FOUND: job 'job-nope' not found\n"
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["status", "job-nope"],
        ["pause", "job-nope"],
        ["resume", "job-nope"],
        ["delete", "job-nope", "--yes"],
        ["run", "job-nope"],
        ["history", "job-nope"],
        ["watch", "job-nope"],
        ["update", "job-nope", "--description", "x"],
    ],
)
def test_every_command_reports_an_unknown_job(cli, args):
    result = cli(*args)
    assert result.exit_code == ExitCode.NOT_FOUND
    assert result.stderr == "error: NOT_FOUND: job 'job-nope' not found\n"


def test_bad_cron_names_the_field(cli):
    result = cli("create", "--name", unique(), *TARGET, "--cron", "bad")
    assert result.exit_code == ExitCode.INVALID_ARGUMENT == 5
    assert result.stderr.startswith("error: INVALID_ARGUMENT: schedule_config.config.expression: ")
    assert len(result.stderr.splitlines()) == 1


def test_preview_of_a_bad_schedule_names_the_field(cli):
    result = cli("preview", "--cron", "0 8 * *", "--timezone", "Mars/Olympus")
    assert result.exit_code == ExitCode.INVALID_ARGUMENT
    assert "schedule_config." in result.stderr


def test_duplicate_name_is_another_api_error(cli, make_job):
    job = make_job()
    result = cli("create", "--name", job.name, *TARGET, "--cron", "* * * * *")
    assert result.exit_code == ExitCode.API_ERROR == 6
    assert result.stderr.startswith("error: ALREADY_EXISTS: ")


@pytest.mark.parametrize("args", [["list"], ["get", "job-1"], ["watch"], ["run", "job-1"]])
def test_server_down_is_unavailable(args):
    port = free_port()
    result = invoke(port, "--timeout", "5", *args)
    assert result.exit_code == ExitCode.UNAVAILABLE == 3
    assert result.stderr.startswith(f"error: UNAVAILABLE: the server at 127.0.0.1:{port} ")
    assert "did not answer" in result.stderr and len(result.stderr.splitlines()) == 1


def test_server_from_the_environment(server):
    result = CliRunner(env={"OMNISCHED_SERVER": f"127.0.0.1:{server.port}"}).invoke(
        main, ["jobs", "--json", "list", "--page-size", "1"]
    )
    assert ok(result).stdout.startswith("{")


def test_tls_client_certificate_needs_its_key(cli, tmp_path):
    cert = tmp_path / "client.pem"
    cert.write_text("-")
    result = CliRunner().invoke(main, ["jobs", "--tls-cert", str(cert), "list"])
    assert result.exit_code == ExitCode.USAGE and "--tls-key" in result.stderr


def test_help_documents_the_exit_codes():
    result = ok(CliRunner().invoke(main, ["jobs", "--help"]))
    for line in ("3  unavailable", "4  not found", "5  invalid argument"):
        assert line in result.stdout


class RecordingServicer(pb_grpc.SchedulerServiceServicer):
    """Answers GetScheduledJob and remembers the call metadata it saw."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []

    def GetScheduledJob(self, request, context):
        self.metadata.append(dict(context.invocation_metadata()))
        return pb.ScheduledJob(id=request.job_id, name="seen")


def test_token_is_sent_as_bearer_metadata():
    servicer = RecordingServicer()
    recorder = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_SchedulerServiceServicer_to_server(servicer, recorder)
    port = recorder.add_insecure_port("127.0.0.1:0")
    recorder.start()
    try:
        ok(invoke(port, "--token", "s3cret", "--json", "get", "job-1"))
        result = CliRunner(env={"OMNISCHED_TOKEN": "from-env"}).invoke(
            main, ["jobs", "--server", f"127.0.0.1:{port}", "get", "job-1"]
        )
        ok(result)
        ok(invoke(port, "get", "job-1"))
    finally:
        recorder.stop(None)
    tokens = [seen.get("authorization") for seen in servicer.metadata]
    assert tokens == ["Bearer s3cret", "Bearer from-env", None]
