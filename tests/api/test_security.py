"""Security of the API: bearer tokens (read-only too), TLS and mutual TLS, limits that answer
RESOURCE_EXHAUSTED while health keeps answering, undecodable requests, no outbound calls for
host-like targets, and the launch rule (no unauthenticated API beyond loopback)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from click.testing import CliRunner
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from omnisched_allinone.api.security import (
    READ_ONLY_RPCS,
    TlsConfig,
    TokenTable,
    http_authorizer,
    unauthenticated_exposure,
)
from omnisched_allinone.api.server import SERVER_OPTIONS
from omnisched_allinone.cli import EXIT_INSECURE, main
from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.proto import scheduler_service_pb2_grpc as pb_grpc
from omnisched_allinone.store.base import ExecutionFilter, JobFilter
from tests.api.server_thread import ServerThread
from tests.support.certs import Authority

RW, RO = "rw-token-0123456789", "ro-token-0123456789"
TOKENS = TokenTable.parse(f"{RW},{RO}:ro")
SERVING = health_pb2.HealthCheckResponse.SERVING


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def job_request(name: str = "secure job", **fields) -> pb.CreateScheduledJobRequest:
    values = {
        "name": name,
        "job_type": "SCRAPING",
        "target_service": "scraper-service",
        "target_method": "ScrapeCompetitorPrices",
        "schedule_config": pb.ScheduleConfig(type="cron", config={"expression": "0 8 * * *"}),
    }
    values.update(fields)
    return pb.CreateScheduledJobRequest(**values)


def snapshot(server: ServerThread) -> tuple:
    async def read() -> tuple:
        store = server.services.store
        jobs = await store.list_jobs(JobFilter(), 10_000, None)
        executions = await store.list_executions(ExecutionFilter(), 10_000, None)
        return tuple((j.id, j.version) for j in jobs), len(executions)

    return server.call(read())


def code_of(call, *args, **kwargs) -> grpc.StatusCode:
    try:
        call(*args, timeout=10, **kwargs)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


# -- tokens -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded() -> Iterator[ServerThread]:
    with ServerThread(tokens=TOKENS) as running:
        yield running


def test_tokens_parse_with_read_only_suffix_and_never_show_in_repr():
    table = TokenTable.parse(" a-token ,b-token:ro, c:with:colons ,,")
    assert table.check("a-token").read_only is False
    assert table.check("b-token").read_only is True
    assert table.check("c:with:colons").read_only is False
    assert table.check("b-token:ro") is None and table.check("") is None
    assert "a-token" not in repr(table) and "b-token" not in repr(table)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED),
        (bearer("wrong"), grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", RW),), grpc.StatusCode.UNAUTHENTICATED),  # no scheme
        ((("authorization", f"Basic {RW}"),), grpc.StatusCode.UNAUTHENTICATED),
        (bearer(RO), grpc.StatusCode.PERMISSION_DENIED),
    ],
    ids=["no-token", "wrong-token", "no-scheme", "basic-scheme", "read-only"],
)
def test_a_write_without_a_valid_writer_token_is_refused_and_writes_nothing(
    guarded, metadata, expected
):
    before = snapshot(guarded)
    stub = guarded.stub
    assert code_of(stub.CreateScheduledJob, job_request(), metadata=metadata) == expected
    assert code_of(stub.DeleteJob, pb.DeleteJobRequest(job_id="job-x"), metadata=metadata) == (
        expected
    )
    assert snapshot(guarded) == before


def test_the_writer_token_writes_and_the_reader_token_reads(guarded):
    stub = guarded.stub
    job = stub.CreateScheduledJob(job_request("token writer"), metadata=bearer(RW), timeout=10)
    for token in (RW, RO):
        assert stub.GetScheduledJob(
            pb.GetScheduledJobRequest(job_id=job.id), metadata=bearer(token), timeout=10
        ).id == (job.id)
        stub.ListScheduledJobs(pb.ListScheduledJobsRequest(), metadata=bearer(token), timeout=10)
        stub.GetJobStatus(pb.GetJobStatusRequest(job_id=job.id), metadata=bearer(token), timeout=10)
        stub.ListJobExecutions(
            pb.ListJobExecutionsRequest(job_id=job.id), metadata=bearer(token), timeout=10
        )
        stub.PreviewSchedule(
            pb.PreviewScheduleRequest(schedule_config=job.schedule_config),
            metadata=bearer(token),
            timeout=10,
        )
    for write in (
        lambda md: stub.PauseJob(pb.PauseJobRequest(job_id=job.id), metadata=md, timeout=10),
        lambda md: stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=job.id), metadata=md, timeout=10),
        lambda md: stub.UpdateScheduledJob(
            pb.UpdateScheduledJobRequest(job_id=job.id, description="x"), metadata=md, timeout=10
        ),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            write(bearer(RO))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_read_only_token_may_watch_and_the_stream_is_refused_without_a_token(guarded):
    stub = guarded.stub
    denied = stub.WatchJobExecutions(pb.WatchJobExecutionsRequest(), timeout=5)
    with pytest.raises(grpc.RpcError) as refused:
        next(denied)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    watch = stub.WatchJobExecutions(pb.WatchJobExecutionsRequest(), metadata=bearer(RO), timeout=1)
    with pytest.raises(grpc.RpcError) as ended:
        next(watch)  # no events: the stream runs until the deadline
    assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_read_only_rpcs_are_exactly_the_reading_ones():
    service = pb.DESCRIPTOR.services_by_name["SchedulerService"]
    writes = set(service.methods_by_name) - READ_ONLY_RPCS
    assert writes == {
        "CreateScheduledJob",
        "UpdateScheduledJob",
        "PauseJob",
        "ResumeJob",
        "DeleteJob",
        "ExecuteJobNow",
    }


def test_health_stays_open_and_reflection_needs_a_token(guarded):
    health = health_pb2_grpc.HealthStub(guarded.channel)
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(guarded.channel)
    ask = [reflection_pb2.ServerReflectionRequest(list_services="")]
    with pytest.raises(grpc.RpcError) as refused:
        list(reflect.ServerReflectionInfo(iter(ask), timeout=5))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    (answer,) = reflect.ServerReflectionInfo(iter(ask), metadata=bearer(RO), timeout=5)
    names = {s.name for s in answer.list_services_response.service}
    assert "omnisched.v1.SchedulerService" in names


def test_reflection_can_be_switched_off():
    with ServerThread(reflection_enabled=False) as server:
        reflect = reflection_pb2_grpc.ServerReflectionStub(server.channel)
        ask = [reflection_pb2.ServerReflectionRequest(list_services="")]
        with pytest.raises(grpc.RpcError) as off:
            list(reflect.ServerReflectionInfo(iter(ask), timeout=5))
        assert off.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_http_uses_the_same_token_rules():
    from tests.http.conftest import job_body, start_api, stop_api

    api = await start_api(authorize=http_authorizer(TOKENS))
    try:
        client = api.client
        assert (await client.get("/v1/jobs")).status_code == 401
        wrong = {"authorization": "Bearer nope"}
        assert (await client.get("/v1/jobs", headers=wrong)).status_code == 401
        ro = {"authorization": f"Bearer {RO}"}
        rw = {"authorization": f"Bearer {RW}"}
        refused = await client.post("/v1/jobs", json=job_body(), headers=ro)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "PERMISSION_DENIED"
        unauthenticated = await client.post("/v1/jobs", json=job_body())
        assert unauthenticated.json()["code"] == "UNAUTHENTICATED"
        assert (await client.get("/v1/jobs", headers=ro)).json().get("jobs", []) == []
        assert (await client.post("/v1/jobs", json=job_body(), headers=rw)).status_code == 201
        assert len((await client.get("/v1/jobs", headers=ro)).json()["jobs"]) == 1
        assert (await client.get("/healthz")).status_code == 200
    finally:
        await stop_api(api)


# -- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, object]:
    directory: Path = tmp_path_factory.mktemp("pki")
    ca, other = Authority(directory, "test CA"), Authority(directory, "other CA")
    return {
        "ca": ca,
        "server": ca.issue("server", server=True),
        "client": ca.issue("client", server=False),
        "stranger": other.issue("stranger", server=False),
    }


def tls_channel(port: int, pki: dict, client: str | None = None) -> grpc.Channel:
    ca = pki["ca"].pem.cert.read_bytes()  # type: ignore[attr-defined]
    key = cert = None
    if client is not None:
        key, cert = pki[client].key.read_bytes(), pki[client].cert.read_bytes()  # type: ignore[attr-defined]
    credentials = grpc.ssl_channel_credentials(ca, key, cert)
    return grpc.secure_channel(f"127.0.0.1:{port}", credentials)


def list_code(channel: grpc.Channel) -> grpc.StatusCode:
    stub = pb_grpc.SchedulerServiceStub(channel)
    try:
        return code_of(stub.ListScheduledJobs, pb.ListScheduledJobsRequest())
    finally:
        channel.close()


def test_tls_serves_secure_clients_and_refuses_plaintext(pki):
    server_pem = pki["server"]
    tls = TlsConfig(server_pem.cert, server_pem.key)  # type: ignore[attr-defined]
    with ServerThread(tls=tls) as server:
        before = snapshot(server)
        assert list_code(tls_channel(server.port, pki)) == grpc.StatusCode.OK
        plaintext = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        stub = pb_grpc.SchedulerServiceStub(plaintext)
        assert code_of(stub.CreateScheduledJob, job_request()) == grpc.StatusCode.UNAVAILABLE
        plaintext.close()
        assert snapshot(server) == before


def test_mutual_tls_refuses_clients_without_a_certificate_from_its_ca(pki):
    server_pem = pki["server"]
    ca_pem = pki["ca"].pem  # type: ignore[attr-defined]
    tls = TlsConfig(server_pem.cert, server_pem.key, ca_pem.cert)  # type: ignore[attr-defined]
    with ServerThread(tls=tls) as server:
        before = snapshot(server)
        assert list_code(tls_channel(server.port, pki, "client")) == grpc.StatusCode.OK
        assert list_code(tls_channel(server.port, pki)) == grpc.StatusCode.UNAVAILABLE
        assert list_code(tls_channel(server.port, pki, "stranger")) == grpc.StatusCode.UNAVAILABLE
        assert snapshot(server) == before


async def test_http_serves_tls_with_the_same_files(pki):
    from omnisched_allinone.app import build_services, prepare_store
    from omnisched_allinone.http import HttpServer, create_http_app
    from tests.http.conftest import dev_settings

    server_pem, ca_pem = pki["server"], pki["ca"].pem  # type: ignore[attr-defined]
    tls = TlsConfig(server_pem.cert, server_pem.key, ca_pem.cert)  # type: ignore[attr-defined]
    settings = dev_settings()
    services = build_services(settings)
    await prepare_store(services)
    server = HttpServer(
        create_http_app(services.service, settings=settings), ssl_options=tls.uvicorn_options()
    )
    port = await server.start("127.0.0.1", 0)
    try:
        client_pem = pki["client"]
        import ssl

        context = ssl.create_default_context(cafile=str(ca_pem.cert))
        context.load_cert_chain(str(client_pem.cert), str(client_pem.key))  # type: ignore[attr-defined]
        async with httpx.AsyncClient(verify=context, timeout=10) as client:
            assert (await client.get(f"https://127.0.0.1:{port}/v1/jobs")).status_code == 200
        bare = ssl.create_default_context(cafile=str(ca_pem.cert))
        async with httpx.AsyncClient(verify=bare, timeout=10) as client:
            with pytest.raises(httpx.HTTPError):
                await client.get(f"https://127.0.0.1:{port}/v1/jobs")
        async with httpx.AsyncClient(timeout=10) as client:
            with pytest.raises(httpx.HTTPError):
                await client.get(f"http://127.0.0.1:{port}/v1/jobs")
    finally:
        await server.stop(1.0)
        await services.store.close()


# -- limits -------------------------------------------------------------------------------------


def _wait_exhausted(stub, timeout_s: float = 10.0) -> grpc.RpcError:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            stub.ListScheduledJobs(pb.ListScheduledJobsRequest(), timeout=5)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                return error
            raise
        time.sleep(0.05)
    raise AssertionError("the RPC cap was never reached")


def test_rpcs_beyond_the_cap_are_resource_exhausted_while_health_answers():
    with ServerThread(max_concurrent_rpcs=3, max_watch_streams=10) as server:
        streams = [
            server.stub.WatchJobExecutions(pb.WatchJobExecutionsRequest(), timeout=30)
            for _ in range(3)
        ]
        try:
            error = _wait_exhausted(server.stub)
            assert "at most 3" in (error.details() or "")
            health = health_pb2_grpc.HealthStub(server.channel)
            for _ in range(20):
                answer = health.Check(health_pb2.HealthCheckRequest(), timeout=5)
                assert answer.status == SERVING
        finally:
            for stream in streams:
                stream.cancel()
        deadline = time.monotonic() + 10
        while code_of(server.stub.ListScheduledJobs, pb.ListScheduledJobsRequest()) != (
            grpc.StatusCode.OK
        ):
            assert time.monotonic() < deadline, "slots were not given back"
            time.sleep(0.05)


def test_watch_streams_beyond_their_cap_are_resource_exhausted():
    with ServerThread(max_watch_streams=2) as server:
        open_streams = [
            server.stub.WatchJobExecutions(pb.WatchJobExecutionsRequest(), timeout=30)
            for _ in range(2)
        ]
        for stream in open_streams:
            stream.initial_metadata()  # sent once the server registered the stream
        try:
            deadline = time.monotonic() + 10
            while True:
                extra = server.stub.WatchJobExecutions(pb.WatchJobExecutionsRequest(), timeout=2)
                try:
                    next(extra)
                except grpc.RpcError as error:
                    if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        assert "at most 2 watch streams" in (error.details() or "")
                        break
                    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                assert time.monotonic() < deadline, "the watch cap was never reached"
        finally:
            for stream in open_streams:
                stream.cancel()


def test_keepalive_is_enforced_by_server_options():
    options = dict(SERVER_OPTIONS)
    assert options["grpc.http2.min_recv_ping_interval_without_data_ms"] >= 5_000
    assert options["grpc.http2.max_ping_strikes"] > 0
    assert options["grpc.keepalive_time_ms"] and options["grpc.keepalive_timeout_ms"]


def _nested_struct_bytes(depth: int) -> bytes:
    """`CreateScheduledJobRequest.parameters` nested `depth` Structs deep, encoded by hand (the
    encoder refuses what the decoder would): Struct.fields[""] = Value{struct_value: …}."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            byte, n = n & 0x7F, n >> 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)

    def length_delimited(tag: int, payload: bytes) -> bytes:
        return bytes([tag]) + varint(len(payload)) + payload

    struct = b""
    for _ in range(depth):
        value = length_delimited(0x2A, struct)  # Value.struct_value = 5
        entry = length_delimited(0x12, value)  # map entry: key "" omitted, value = 2
        struct = length_delimited(0x0A, entry)  # Struct.fields = 1
    field = pb.CreateScheduledJobRequest.DESCRIPTOR.fields_by_name["parameters"].number
    return length_delimited((field << 3) | 2, struct) + length_delimited(0x0A, b"deep")


def test_an_undecodable_request_is_invalid_argument_not_internal():
    with ServerThread() as server:
        before = snapshot(server)
        raw = server.channel.unary_unary(
            "/omnisched.v1.SchedulerService/CreateScheduledJob",
            request_serializer=lambda data: data,
            response_deserializer=pb.ScheduledJob.FromString,
        )
        for payload in (_nested_struct_bytes(150), b"\xff\xff\xff\xff", b"\x0a\x80"):
            with pytest.raises(grpc.RpcError) as refused:
                raw(payload, timeout=10)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, payload[:8]
        assert snapshot(server) == before
        health = health_pb2_grpc.HealthStub(server.channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == SERVING


# -- targets: no outbound calls (DESIGN §4.6) ---------------------------------------------------

HOSTILE_TARGETS = [
    "localhost",
    "127.0.0.1",
    "0.0.0.0",
    "[::1]",
    "::1",
    "169.254.169.254",
    "fe80::1",
    "2130706433",  # 127.0.0.1 as one number
    "0x7f000001",
    "metadata",
    "metadata.google.internal",
    "scraper-service.evil.com",
    "scraper-service:50053",
    "http://scraper-service",
    "grpc://127.0.0.1:50053",
    "//evil.com",
    "unix:/var/run/docker.sock",
    "\u0455craper-service",  # a Cyrillic look-alike of "s"
    "scraper-service\x00",
    "scraper-service ",
    "SCRAPER-SERVICE",
]


@pytest.fixture
def no_outbound(monkeypatch) -> list[str]:
    attempts: list[str] = []

    def refuse(name: str):
        def call(*args, **kwargs):
            attempts.append(f"{name}{args!r}")
            raise AssertionError(f"outbound {name} attempted: {args!r}")

        return call

    monkeypatch.setattr(socket, "create_connection", refuse("socket.create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("socket.getaddrinfo"))
    monkeypatch.setattr(grpc.aio, "insecure_channel", refuse("grpc.aio.insecure_channel"))
    monkeypatch.setattr(grpc.aio, "secure_channel", refuse("grpc.aio.secure_channel"))
    return attempts


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_host_like_targets_are_invalid_argument_with_no_connection_attempted(
    guarded, no_outbound, target
):
    before = snapshot(guarded)
    for job_type in ("SCRAPING", "GRPC", "MANUAL"):
        with pytest.raises(grpc.RpcError) as refused:
            guarded.stub.CreateScheduledJob(
                job_request(f"ssrf {target!r}", job_type=job_type, target_service=target),
                metadata=bearer(RW),
                timeout=10,
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details().startswith("target_service")
    assert snapshot(guarded) == before
    assert no_outbound == []


# -- the launch rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "tokens", "mutual", "insecure", "refused"),
    [
        ("0.0.0.0", "", False, False, True),
        ("10.1.2.3", "", False, False, True),
        ("::", "", False, False, True),
        ("0.0.0.0", "t0ken-value", False, False, False),
        ("0.0.0.0", "", True, False, False),
        ("0.0.0.0", "", False, True, False),
        ("127.0.0.1", "", False, False, False),
        ("::1", "", False, False, False),
        ("localhost", "", False, False, False),
    ],
)
def test_an_api_beyond_loopback_needs_authentication_or_insecure(
    host, tokens, mutual, insecure, refused
):
    tls = TlsConfig(Path("c"), Path("k"), Path("ca")) if mutual else None
    reason = unauthenticated_exposure(host, TokenTable.parse(tokens), tls, insecure)
    assert (reason is not None) == refused
    if refused:
        assert "--insecure" in reason and "OMNISCHED_API_TOKENS" in reason


def test_run_refuses_an_open_api_beyond_loopback_with_a_named_exit_code(monkeypatch):
    monkeypatch.delenv("OMNISCHED_API_TOKENS", raising=False)
    result = CliRunner().invoke(main, ["run", "--dev", "--host", "0.0.0.0", "--parts", "grpc"])
    assert result.exit_code == EXIT_INSECURE, result.output
    assert "--insecure" in result.output and "refusing to start" in result.output


def test_tokens_never_reach_the_logs(caplog):
    from omnisched_allinone.settings import add_masked_values, mask_secrets

    add_masked_values([RW])
    assert RW not in mask_secrets(f"authorization: Bearer {RW}")
    assert RW not in mask_secrets(f"token={RW}")
