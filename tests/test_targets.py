"""The target layer, specified against real gRPC servers on loopback (tests/fakes)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
import pytest_asyncio

from omnisched_allinone.core.errors import InvalidArgument
from omnisched_allinone.targets import (
    TargetCallError,
    TargetClient,
    TargetRegistry,
    TargetService,
    validate_method_name,
    validate_target_name,
)
from tests.fakes import (
    LEGACY,
    PRICING,
    SCRAPER,
    Behaviour,
    FakeTarget,
    fake_protos,
    fake_scraper,
    fake_target,
    fake_target_in_thread,
    unused_port,
)

SCRAPE = "omnisched_fakes.ScraperService/ScrapeCompetitorPrices"
CallFactory = Callable[..., AbstractAsyncContextManager[tuple[TargetClient, FakeTarget]]]


# --- names -----------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation must decide on the text alone: any socket or resolver use fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("validation touched the network")

    for name in ("socket", "create_connection", "getaddrinfo", "gethostbyname"):
        monkeypatch.setattr(socket, name, refuse)


@pytest.mark.parametrize(
    "name", ["scraper-service", "pricing-service", "a", "svc2", "a" + "b" * 62, "x-1-y"]
)
def test_registry_names_are_accepted(name: str, no_network: None) -> None:
    assert validate_target_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "localhost",
        "127.0.0.1",
        "10.0.0.1",
        "[::1]",
        "::1",
        "http://x",
        "x.example.com",
        "x:50053",
        "169.254.169.254",
        "scraper-serv\u0456ce",  # Cyrillic i
        "",
        "a" * 64,
        "Scraper-Service",
        "scraper/service",
        "1scraper",
        "scraper-",
        "metadata",
        " scraper",
        "2130706433",
    ],
)
def test_host_like_names_are_refused_naming_the_field(name: str, no_network: None) -> None:
    with pytest.raises(InvalidArgument) as raised:
        validate_target_name(name, field="job.target_service")
    assert raised.value.field == "job.target_service"


def test_a_non_string_name_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        validate_target_name(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "method", ["ScrapeCompetitorPrices", SCRAPE, "omnisched_fakes.ScraperService.Scrape", "S/M"]
)
def test_method_names_are_accepted(method: str) -> None:
    assert validate_method_name(method) == method


@pytest.mark.parametrize(
    "method", ["", "/pkg.S/M", "pkg.S/", "a b", "pkg..S.M", "pkg.S/M/N", "M()", "x" * 256, "é"]
)
def test_malformed_method_names_are_refused(method: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        validate_method_name(method)
    assert raised.value.field == "target_method"


# --- registry --------------------------------------------------------------------------------


def test_registry_returns_the_configured_service() -> None:
    registry = TargetRegistry({"scraper-service": "127.0.0.1:50053", "pricing-service": "h:1"})

    assert registry.get("scraper-service") == TargetService("scraper-service", "127.0.0.1:50053")
    assert registry.names() == ["pricing-service", "scraper-service"]
    assert "scraper-service" in registry
    assert "nope" not in registry and 3 not in registry


def test_an_unknown_service_names_the_known_ones() -> None:
    registry = TargetRegistry({"b-svc": "h:1", "a-svc": "h:2"})

    with pytest.raises(InvalidArgument) as raised:
        registry.get("x", field="target")

    assert raised.value.field == "target"
    assert raised.value.reason == "unknown target service 'x'; known: a-svc, b-svc"


def test_a_host_given_as_service_is_refused_as_a_host_not_echoed() -> None:
    with pytest.raises(InvalidArgument) as raised:
        TargetRegistry({"a-svc": "h:1"}).get("10.0.0.1:80")
    assert "10.0.0.1" not in raised.value.message


@pytest.mark.parametrize(
    "services", [{"Bad.Name": "h:1"}, {"ok": "no-port"}, {"ok": "h:0"}, {"ok": ":80"}]
)
def test_a_bad_registry_config_is_refused(services: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument):
        TargetRegistry(services)


# --- calls -----------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def calling() -> AsyncIterator[CallFactory]:
    """Given a fake target registered as scraper-service, a client that calls it."""
    clients: list[TargetClient] = []

    def factory(*services: str, descriptor_set: bool = False, **options: object) -> object:
        @asynccontextmanager
        async def run() -> AsyncIterator[tuple[TargetClient, FakeTarget]]:
            async with fake_target(*services, **options) as target:  # type: ignore[arg-type]
                path = fake_protos().descriptor_set_path if descriptor_set else None
                registry = TargetRegistry({"scraper-service": target.address})
                client = TargetClient(registry, descriptor_set_path=path)
                clients.append(client)
                yield client, target

        return run()

    yield factory  # type: ignore[misc]
    for client in clients:
        await client.close()


@pytest.mark.asyncio
async def test_a_call_sends_parameters_and_metadata_and_returns_the_response(
    calling: CallFactory,
) -> None:
    async with calling(SCRAPER) as (client, target):
        result = await client.call(
            "scraper-service",
            SCRAPE,
            {"competitor_ids": ["c1", "c2"], "max_products": 5, "idempotency_key": "run-1"},
            timeout_s=5,
            metadata=[("x-execution-id", "e-1")],
        )

    assert result == {"products_scraped": 3, "competitor_ids": ["c1", "c2"], "request_id": "req-1"}
    [call] = target.calls
    assert call.method == f"/{SCRAPER}/ScrapeCompetitorPrices"
    assert call.request == {
        "competitor_ids": ["c1", "c2"],
        "max_products": 5,
        "idempotency_key": "run-1",
    }
    assert call.metadata["x-execution-id"] == "e-1"


@pytest.mark.asyncio
async def test_a_bare_method_name_resolves_to_the_one_service_that_has_it(
    calling: CallFactory,
) -> None:
    async with calling(SCRAPER, PRICING) as (client, _):
        result = await client.call(
            "scraper-service", "AnalyzePrices", {"competitor_ids": ["a"]}, timeout_s=5
        )
        dotted = await client.call(
            "scraper-service",
            "omnisched_fakes.ScraperService.ScrapeCompetitorPrices",
            {},
            timeout_s=5,
        )

    assert result == {"report_id": "report-1", "competitors": 1}
    assert dotted["products_scraped"] == 3


@pytest.mark.asyncio
async def test_the_reply_includes_zero_valued_fields(calling: CallFactory) -> None:
    async with calling(SCRAPER, behaviour=Behaviour(products_scraped=0)) as (client, _):
        result = await client.call("scraper-service", SCRAPE, {}, timeout_s=5)

    assert result["products_scraped"] == 0 and result["competitor_ids"] == []


@pytest.mark.asyncio
async def test_an_integral_float_fills_an_integer_field(calling: CallFactory) -> None:
    """Struct numbers are doubles (DESIGN §10): 5.0 must reach an int32 field as 5."""
    async with calling(SCRAPER) as (client, target):
        await client.call("scraper-service", SCRAPE, {"max_products": 5.0}, timeout_s=5)

    assert target.calls[0].request["max_products"] == 5


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "parameters",
    [{"max_pages": 3}, {"max_products": 2.5}, {"max_products": "many"}, {"competitor_ids": "c1"}],
)
async def test_parameters_the_method_does_not_take_are_a_permanent_error(
    calling: CallFactory, parameters: dict[str, object]
) -> None:
    async with calling(SCRAPER) as (client, target):
        with pytest.raises(TargetCallError) as raised:
            await client.call("scraper-service", SCRAPE, parameters, timeout_s=5)

    assert (raised.value.code, raised.value.transient) == ("INVALID_ARGUMENT", False)
    assert target.calls == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "code", "words"),
    [
        ("Nope", "NOT_FOUND", "no method 'Nope'"),
        ("omnisched_fakes.Missing/Scrape", "NOT_FOUND", "ScraperService"),
        ("ScrapeCompetitorPrices", "INVALID_ARGUMENT", "ambiguous"),
        (f"{LEGACY}/StreamPrices", "UNIMPLEMENTED", "streaming"),
        ("not a method", "INVALID_ARGUMENT", "Method"),
    ],
)
async def test_a_method_that_cannot_be_called_is_a_permanent_error(
    calling: CallFactory, method: str, code: str, words: str
) -> None:
    async with calling(SCRAPER, LEGACY) as (client, target):
        with pytest.raises(TargetCallError) as raised:
            await client.call("scraper-service", method, {}, timeout_s=5)

    assert (raised.value.code, raised.value.transient) == (code, False)
    assert words in raised.value.message
    assert target.calls == []


@pytest.mark.asyncio
async def test_an_unregistered_target_is_a_permanent_error_without_a_call() -> None:
    client = TargetClient(TargetRegistry({"scraper-service": "127.0.0.1:1"}))

    with pytest.raises(TargetCallError) as raised:
        await client.call("127.0.0.1:50053", SCRAPE, {}, timeout_s=1)

    assert (raised.value.code, raised.value.transient) == ("INVALID_ARGUMENT", False)
    await client.close()


@pytest.mark.asyncio
async def test_a_target_that_is_down_is_transiently_unavailable() -> None:
    client = TargetClient(TargetRegistry({"scraper-service": f"127.0.0.1:{unused_port()}"}))

    with pytest.raises(TargetCallError) as raised:
        await client.call("scraper-service", SCRAPE, {}, timeout_s=5)

    assert (raised.value.code, raised.value.transient) == ("UNAVAILABLE", True)
    await client.close()


@pytest.mark.asyncio
async def test_a_slow_target_exceeds_the_deadline_transiently(calling: CallFactory) -> None:
    async with calling(SCRAPER, behaviour=Behaviour(delay_s=5)) as (client, _):
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TargetCallError) as raised:
            await client.call("scraper-service", SCRAPE, {}, timeout_s=0.3)

    assert (raised.value.code, raised.value.transient) == ("DEADLINE_EXCEEDED", True)
    assert loop.time() - started < 2


@pytest.mark.asyncio
async def test_transient_failures_are_marked_so_a_retry_succeeds(calling: CallFactory) -> None:
    async with calling(SCRAPER, behaviour=Behaviour(transient_failures=2)) as (client, target):
        for _ in range(2):
            with pytest.raises(TargetCallError) as raised:
                await client.call("scraper-service", SCRAPE, {}, timeout_s=5)
            assert (raised.value.code, raised.value.transient) == ("UNAVAILABLE", True)
        result = await client.call("scraper-service", SCRAPE, {}, timeout_s=5)

    assert result["request_id"] == "req-3"
    assert len(target.calls) == 3


@pytest.mark.asyncio
async def test_a_permanent_failure_keeps_the_targets_message(calling: CallFactory) -> None:
    behaviour = Behaviour(permanent_error="competitor c9 is not tracked")
    async with calling(SCRAPER, behaviour=behaviour) as (client, _):
        with pytest.raises(TargetCallError) as raised:
            await client.call("scraper-service", SCRAPE, {}, timeout_s=5)

    assert (raised.value.code, raised.value.transient) == ("INVALID_ARGUMENT", False)
    assert "competitor c9 is not tracked" in raised.value.message


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "metadata",
    [[("X-Upper", "v")], [("k", "line\nbreak")], [("grpc-timeout", "1")], [("k-bin", "x")]],
)
async def test_bad_metadata_is_a_permanent_error_not_a_raw_grpc_one(
    calling: CallFactory, metadata: list[tuple[str, str]]
) -> None:
    async with calling(SCRAPER) as (client, target):
        with pytest.raises(TargetCallError) as raised:
            await client.call("scraper-service", SCRAPE, {}, timeout_s=5, metadata=metadata)

    assert (raised.value.code, raised.value.transient) == ("INVALID_ARGUMENT", False)
    assert target.calls == []


@pytest.mark.asyncio
async def test_reflection_is_asked_once_per_target(calling: CallFactory) -> None:
    async with calling(SCRAPER, PRICING) as (client, target):
        await client.call("scraper-service", SCRAPE, {}, timeout_s=5)
        streams_after_first = target.reflection_calls
        await client.call("scraper-service", SCRAPE, {}, timeout_s=5)
        await client.call("scraper-service", "AnalyzePrices", {}, timeout_s=5)

    assert streams_after_first >= 1
    assert target.reflection_calls == streams_after_first
    assert client.reflection_queries == 1


@pytest.mark.asyncio
async def test_without_reflection_the_descriptor_set_resolves_the_method(
    calling: CallFactory,
) -> None:
    async with calling(SCRAPER, reflection_enabled=False, descriptor_set=True) as (client, target):
        result = await client.call("scraper-service", SCRAPE, {"max_products": 1}, timeout_s=5)

    assert result["request_id"] == "req-1"
    assert target.calls[0].request == {"max_products": 1}


@pytest.mark.asyncio
async def test_without_reflection_or_descriptor_set_the_call_fails_permanently(
    calling: CallFactory,
) -> None:
    async with calling(SCRAPER, reflection_enabled=False) as (client, target):
        with pytest.raises(TargetCallError) as raised:
            await client.call("scraper-service", SCRAPE, {}, timeout_s=5)

    assert (raised.value.code, raised.value.transient) == ("UNIMPLEMENTED", False)
    assert "no reflection" in raised.value.message
    assert target.calls == []


# --- health ----------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("status", ["SERVING", "NOT_SERVING"])
async def test_health_reports_the_targets_status(calling: CallFactory, status: str) -> None:
    async with calling(SCRAPER, behaviour=Behaviour(health=status)) as (client, target):
        report = await client.check_health("scraper-service")

    assert report["status"] == status
    assert report["target"] == "scraper-service" and report["address"] == target.address
    assert report["error"] is None and report["latency_ms"] >= 0


def test_an_unreadable_descriptor_set_stops_the_client_at_start(tmp_path: Path) -> None:
    garbage = tmp_path / "set.binpb"
    garbage.write_bytes(b"\xff not a descriptor set")
    registry = TargetRegistry({"scraper-service": "127.0.0.1:1"})

    for path in (garbage, tmp_path / "missing.binpb"):
        with pytest.raises(ValueError, match="descriptor set"):
            TargetClient(registry, descriptor_set_path=str(path))


@pytest.mark.asyncio
async def test_health_of_a_target_that_is_down_is_unreachable() -> None:
    client = TargetClient(TargetRegistry({"scraper-service": f"127.0.0.1:{unused_port()}"}))

    report = await client.check_health("scraper-service", timeout_s=2)

    assert report["status"] == "UNREACHABLE"
    assert report["error"]
    await client.close()


# --- loops and threads -----------------------------------------------------------------------


def test_a_fake_served_from_its_own_thread_answers_a_client_on_another_loop() -> None:
    """Worker tests block their loop; the threaded fake keeps serving and records the call."""
    with fake_target_in_thread(SCRAPER) as target:
        client = TargetClient(TargetRegistry({"scraper-service": target.address}))

        async def call_and_close() -> dict[str, object]:
            try:
                return await client.call("scraper-service", SCRAPE, {}, timeout_s=5)
            finally:
                await client.close()

        result = asyncio.run(call_and_close())

    assert result["request_id"] == "req-1"
    assert len(target.calls) == 1


@pytest.mark.asyncio
async def test_fake_scraper_is_the_scraper_service_alone() -> None:
    async with fake_scraper() as target:
        client = TargetClient(TargetRegistry({"scraper-service": target.address}))
        result = await client.call("scraper-service", "ScrapeCompetitorPrices", {}, timeout_s=5)
        await client.close()

    assert result["products_scraped"] == 3
