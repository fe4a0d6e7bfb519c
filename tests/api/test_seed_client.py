"""The seed's client example runs unchanged against our server, but for its import line."""

from __future__ import annotations

import socket

import grpc
import pytest

from tests.api.server_thread import ServerThread

SEED_EXAMPLE = """
import grpc
from omnisched_allinone.proto import scheduler_service_pb2_grpc, scheduler_service_pb2

# Connect to service
channel = grpc.insecure_channel('localhost:50054')
stub = scheduler_service_pb2_grpc.SchedulerServiceStub(channel)

# Create a new scheduled job
response = stub.CreateScheduledJob(
    scheduler_service_pb2.CreateScheduledJobRequest(
        name="Custom Scraping Job",
        job_type="SCRAPING",
        target_service="scraper-service",
        target_method="ScrapeCompetitorPrices",
        schedule_config=scheduler_service_pb2.ScheduleConfig(
            type="cron",
            config={"hour": "10", "minute": "0"}
        ),
        parameters={"competitor_ids": ["amazon"]},
        description="Custom job description"
    )
)

# List all jobs
jobs = stub.ListScheduledJobs(
    scheduler_service_pb2.ListScheduledJobsRequest()
)

# Execute job immediately
response = stub.ExecuteJobNow(
    scheduler_service_pb2.ExecuteJobRequest(job_id="job-123")
)

# Get job status
status = stub.GetJobStatus(
    scheduler_service_pb2.GetJobStatusRequest(job_id="job-123")
)
"""


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@pytest.fixture
def seed_server():
    """The server on the seed's own port 50054 when it is free (else a free port)."""
    options = {}
    server = ServerThread(**options)
    if _port_free(50054):
        server.settings = server.settings.model_copy(update={"grpc_port": 50054})
    with server:
        yield server


def test_seed_example_runs_verbatim_and_answers_not_found_for_its_placeholder_id(seed_server):
    # Given the seed's example, with only its import line changed
    code = SEED_EXAMPLE.replace("localhost:50054", f"localhost:{seed_server.port}")
    namespace: dict = {}
    # When it runs against our server
    with pytest.raises(grpc.RpcError) as raised:
        exec(compile(code, "seed_client_example.py", "exec"), namespace)
    # Then create and list worked, and its placeholder id "job-123" is NOT_FOUND
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "job-123" in raised.value.details()
    created = namespace["response"]
    assert created.name == "Custom Scraping Job"
    assert created.id.startswith("job-custom-scraping-job-")
    assert created.schedule_config.config["expression"] == "0 10 * * *"
    assert created.next_run_at.seconds > 0
    assert [job.name for job in namespace["jobs"].jobs] == ["Custom Scraping Job"]
    namespace["channel"].close()


def test_seed_example_with_a_real_job_id_gets_status(seed_server):
    from omnisched_allinone.proto import scheduler_service_pb2 as pb

    stub = seed_server.stub
    job = stub.CreateScheduledJob(
        pb.CreateScheduledJobRequest(
            name="Custom Scraping Job",
            job_type="SCRAPING",
            target_service="scraper-service",
            target_method="ScrapeCompetitorPrices",
            schedule_config=pb.ScheduleConfig(type="cron", config={"hour": "10", "minute": "0"}),
            parameters={"competitor_ids": ["amazon"]},
            description="Custom job description",
        )
    )
    status = stub.GetJobStatus(pb.GetJobStatusRequest(job_id=job.id))
    assert status.status == "ACTIVE"
    assert len(status.next_run_times) == 5
    assert status.next_run_times[0] == job.next_run_at
    assert all(t.ToDatetime().hour == 10 for t in status.next_run_times)
