"""Real gRPC target servers on loopback for tests: the scraper, pricing and a "legacy" service.

They are real gRPC servers on 127.0.0.1 port 0 with the standard health service and (optionally)
server reflection, so the target client is tested over the wire, not against mocks. They are sync
`grpc.server`s on their own threads (see `fake_target_in_thread` for why), so any code may call
them from any thread or loop, even while the test's loop is blocked in a worker.
The Python modules are generated from `protos/` once per process by `fake_protos()`, which also
writes a descriptor set for the no-reflection fallback.

`async with fake_scraper(Behaviour(...)) as target:` or, in sync tests,
`with fake_target_in_thread(SCRAPER, PRICING) as target:`.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

PROTO_ROOT = Path(__file__).parent / "protos"
PROTO_FILES = (
    "omnisched_fakes/scraper.proto",
    "omnisched_fakes/pricing.proto",
    "omnisched_fakes/extras.proto",
)
SCRAPER = "omnisched_fakes.ScraperService"
PRICING = "omnisched_fakes.PricingService"
LEGACY = "omnisched_fakes.legacy.LegacyScraperService"


@dataclass(frozen=True)
class FakeProtos:
    """The generated modules and the descriptor set (`protoc --include_imports`) of the fakes."""

    descriptor_set_path: str
    scraper_pb2: ModuleType
    scraper_pb2_grpc: ModuleType
    pricing_pb2: ModuleType
    pricing_pb2_grpc: ModuleType
    extras_pb2: ModuleType  # imported for its side effect too: reflection serves the default pool
    extras_pb2_grpc: ModuleType


_protos: FakeProtos | None = None
_protos_lock = threading.Lock()


def fake_protos() -> FakeProtos:
    """Generate the fakes' modules once per process into a temp dir put on sys.path."""
    global _protos
    with _protos_lock:
        if _protos is None:
            _protos = _generate(Path(tempfile.mkdtemp(prefix="omnisched-fakes-")))
        return _protos


def _generate(out_dir: Path) -> FakeProtos:
    from grpc_tools import protoc

    well_known = Path(protoc.__file__).parent / "_proto"
    descriptor_set = out_dir / "fakes.binpb"
    argv = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--descriptor_set_out={descriptor_set}",
        "--include_imports",
        *PROTO_FILES,
    ]
    if protoc.main(argv) != 0:
        raise RuntimeError(f"protoc failed for {PROTO_FILES}")
    atexit.register(shutil.rmtree, out_dir, ignore_errors=True)
    sys.path.insert(0, str(out_dir))
    module = importlib.import_module
    return FakeProtos(
        descriptor_set_path=str(descriptor_set),
        scraper_pb2=module("omnisched_fakes.scraper_pb2"),
        scraper_pb2_grpc=module("omnisched_fakes.scraper_pb2_grpc"),
        pricing_pb2=module("omnisched_fakes.pricing_pb2"),
        pricing_pb2_grpc=module("omnisched_fakes.pricing_pb2_grpc"),
        extras_pb2=module("omnisched_fakes.extras_pb2"),
        extras_pb2_grpc=module("omnisched_fakes.extras_pb2_grpc"),
    )


@dataclass
class Behaviour:
    """What the fake answers. Mutable, so a test may change it while the server runs."""

    transient_failures: int = 0  # the first N calls answer UNAVAILABLE, later ones succeed
    permanent_error: str | None = None  # every call answers INVALID_ARGUMENT with this message
    delay_s: float = 0.0  # sleep before answering (a slow or hanging target)
    health: str = "SERVING"  # what grpc.health.v1 Check answers
    products_scraped: int = 3


@dataclass(frozen=True)
class ReceivedCall:
    """One request the fake received, as the target saw it."""

    method: str  # "/package.Service/Method"
    request: dict[str, Any]
    metadata: dict[str, str]


@dataclass
class FakeTarget:
    """A running fake. Handlers run on the server's pool threads, so counters take a lock."""

    address: str
    behaviour: Behaviour
    calls: list[ReceivedCall] = field(default_factory=list)
    reflection_calls: int = 0  # reflection streams opened, to check the client's cache
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answer(self, method: str, request: Any, context: grpc.ServicerContext) -> int:
        """Record the call, apply the behaviour (delay, then fail), return the call's number."""
        metadata = {key: str(value) for key, value in context.invocation_metadata() or ()}
        as_dict = json_format.MessageToDict(request, preserving_proto_field_name=True)
        with self._lock:
            self.calls.append(ReceivedCall(method=method, request=as_dict, metadata=metadata))
            number = len(self.calls)
            fail_transiently = self.behaviour.transient_failures > 0
            self.behaviour.transient_failures -= int(fail_transiently)
        _sleep_while_active(context, self.behaviour.delay_s)
        if fail_transiently:
            context.abort(grpc.StatusCode.UNAVAILABLE, "fake target is warming up")
        if self.behaviour.permanent_error is not None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, self.behaviour.permanent_error)
        return number

    def count_reflection(self) -> None:
        with self._lock:
            self.reflection_calls += 1


def _sleep_while_active(context: grpc.ServicerContext, delay_s: float) -> None:
    """Sleep, but stop when the caller gave up, so a 'hanging' fake frees its thread."""
    end = time.monotonic() + delay_s
    while context.is_active() and (left_s := end - time.monotonic()) > 0:
        time.sleep(min(left_s, 0.02))


class _Scraper:
    def __init__(self, target: FakeTarget, path: str) -> None:
        self._target, self._path = target, path

    def ScrapeCompetitorPrices(self, request: Any, context: Any) -> Any:
        number = self._target.answer(f"{self._path}/ScrapeCompetitorPrices", request, context)
        return fake_protos().scraper_pb2.ScrapeResponse(
            products_scraped=self._target.behaviour.products_scraped,
            competitor_ids=request.competitor_ids,
            request_id=f"req-{number}",
        )

    def StreamPrices(self, request: Any, context: Any) -> Iterator[Any]:
        self._target.answer(f"{self._path}/StreamPrices", request, context)
        yield fake_protos().scraper_pb2.ScrapeResponse(products_scraped=1)


class _Pricing:
    def __init__(self, target: FakeTarget) -> None:
        self._target = target

    def AnalyzePrices(self, request: Any, context: Any) -> Any:
        number = self._target.answer(f"/{PRICING}/AnalyzePrices", request, context)
        return fake_protos().pricing_pb2.AnalyzeResponse(
            report_id=f"report-{number}", competitors=len(request.competitor_ids)
        )


class _Health(health_pb2_grpc.HealthServicer):
    """Reads the behaviour on every Check, so a test flips health by assigning to it."""

    def __init__(self, target: FakeTarget) -> None:
        self._target = target

    def Check(self, request: Any, context: Any) -> Any:
        status = health_pb2.HealthCheckResponse.ServingStatus.Value(self._target.behaviour.health)
        return health_pb2.HealthCheckResponse(status=status)


class _ReflectionCounter(grpc.ServerInterceptor):
    def __init__(self) -> None:
        self.target: FakeTarget | None = None

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        if self.target is not None and details.method.startswith("/grpc.reflection."):
            self.target.count_reflection()
        return continuation(details)


def _add_services(server: grpc.Server, target: FakeTarget, services: tuple[str, ...]) -> None:
    protos = fake_protos()
    adders = {
        SCRAPER: lambda: protos.scraper_pb2_grpc.add_ScraperServiceServicer_to_server(
            _Scraper(target, f"/{SCRAPER}"), server
        ),
        PRICING: lambda: protos.pricing_pb2_grpc.add_PricingServiceServicer_to_server(
            _Pricing(target), server
        ),
        LEGACY: lambda: protos.extras_pb2_grpc.add_LegacyScraperServiceServicer_to_server(
            _Scraper(target, f"/{LEGACY}"), server
        ),
    }
    for service in services:
        adders[service]()
    health_pb2_grpc.add_HealthServicer_to_server(_Health(target), server)


@contextlib.contextmanager
def fake_target_in_thread(
    *services: str, behaviour: Behaviour | None = None, reflection_enabled: bool = True
) -> Iterator[FakeTarget]:
    """Serve `services` (SCRAPER, PRICING, LEGACY) on 127.0.0.1:<free port> until exit.

    A sync `grpc.server` on its own threads, not a `grpc.aio` one: it needs no event loop, so it
    answers while the test's loop is blocked, and it keeps grpc.aio to the one loop that calls.
    Two concurrent grpc.aio loops in one process share one poller and fail at random with
    "Internal error from Core" (grpc/grpc#25364, open), which this avoids.
    """
    counter = _ReflectionCounter()
    pool = futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="fake-target")
    server = grpc.server(pool, interceptors=[counter])
    port = server.add_insecure_port("127.0.0.1:0")
    target = FakeTarget(address=f"127.0.0.1:{port}", behaviour=behaviour or Behaviour())
    counter.target = target
    _add_services(server, target, services or (SCRAPER,))
    if reflection_enabled:
        names = (*services, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
        reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), server)
    server.start()
    try:
        yield target
    finally:
        server.stop(grace=None).wait(timeout=10)
        pool.shutdown(wait=False, cancel_futures=True)


@contextlib.asynccontextmanager
async def fake_target(
    *services: str, behaviour: Behaviour | None = None, reflection_enabled: bool = True
) -> AsyncIterator[FakeTarget]:
    """`fake_target_in_thread` for `async with`; starting and stopping take milliseconds."""
    with fake_target_in_thread(
        *services, behaviour=behaviour, reflection_enabled=reflection_enabled
    ) as target:
        yield target


def fake_scraper(
    behaviour: Behaviour | None = None, *, reflection_enabled: bool = True
) -> contextlib.AbstractAsyncContextManager[FakeTarget]:
    """The scraper-service fake: `async with fake_scraper(Behaviour(...)) as target:`."""
    return fake_target(SCRAPER, behaviour=behaviour, reflection_enabled=reflection_enabled)


def fake_pricing(
    behaviour: Behaviour | None = None, *, reflection_enabled: bool = True
) -> contextlib.AbstractAsyncContextManager[FakeTarget]:
    """The pricing-service fake."""
    return fake_target(PRICING, behaviour=behaviour, reflection_enabled=reflection_enabled)


def unused_port() -> int:
    """A loopback port with nothing listening (free at the time of asking), for 'target down'."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
