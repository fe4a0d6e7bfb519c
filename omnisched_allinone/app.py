"""Assembly: one process runs the parts named at launch, on one asyncio loop.

`Services` is what every part of a process shares (settings, store, job service); `run_parts`
starts the chosen parts in order, waits for a stop signal, and stops them in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from omnisched_allinone import runtime
from omnisched_allinone.builtins import load_builtin_drafts, seed_builtin_jobs
from omnisched_allinone.core.errors import Unavailable
from omnisched_allinone.core.jobs import QUEUES
from omnisched_allinone.feed import ExecutionFeed
from omnisched_allinone.service import Dispatcher, JobService, ServiceLimits
from omnisched_allinone.settings import Settings, add_masked_values, mask_secrets
from omnisched_allinone.store.mongo import MongoStore, open_store

log = logging.getLogger(__name__)


class Part(StrEnum):
    GRPC = "grpc"
    HTTP = "http"
    WORKER = "worker"
    BEAT = "beat"


BUILT_PARTS: frozenset[Part] = frozenset(Part)
# Every part this version can run, in start-up order.
DEFAULT_PARTS: tuple[Part, ...] = tuple(p for p in Part if p in BUILT_PARTS)


class PartNotAvailable(Exception):
    """A part named at launch that this version cannot run yet."""


class InsecureLaunch(Exception):
    """The API would listen beyond loopback with no authentication (and no --insecure)."""


def parse_parts(text: str) -> tuple[Part, ...]:
    parts = []
    for name in filter(None, (item.strip().lower() for item in text.split(","))):
        try:
            part = Part(name)
        except ValueError:
            raise ValueError(
                f"unknown part {name!r}; choose from {', '.join(p.value for p in Part)}"
            ) from None
        if part not in parts:
            parts.append(part)
    if not parts:
        raise ValueError("name at least one part")
    return tuple(parts)


@dataclass
class Services:
    settings: Settings
    store: MongoStore
    feed: ExecutionFeed
    service: JobService
    background: list[asyncio.Task[None]] = field(default_factory=list)


def build_services(settings: Settings, dispatcher: Dispatcher | None = None) -> Services:
    store = open_store(
        settings.mongodb_url, settings.mongodb_database, timeout_ms=settings.store_timeout_ms
    )
    feed = ExecutionFeed(store)
    store.change_listeners.append(feed.notify)
    service = JobService(
        store,
        target_names=settings.target_services.keys(),
        default_policies=settings.default_policies,
        limits=ServiceLimits(
            max_parameters_bytes=settings.max_parameters_bytes,
            max_parameters_depth=settings.max_parameters_depth,
            min_interval_s=settings.min_interval_s,
        ),
        dispatcher=dispatcher,
        feed=feed,
    )
    return Services(settings, store, feed, service)


async def wait_for_store(store: MongoStore, *, max_backoff_s: float = 10.0) -> None:
    """Retry with backoff until the store answers, saying what it waits for."""
    delay = 0.5
    while True:
        try:
            await store.start()
            return
        except Unavailable as error:
            log.warning("waiting for MongoDB (%s); retrying in %.1fs", error.message, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff_s)


async def wait_for_broker(app: Any, settings: Settings, *, max_backoff_s: float = 10.0) -> None:
    """Retry with backoff until the broker (RabbitMQ) and the result backend (Redis) answer,
    saying which one it waits for; in-memory ones answer at once."""
    from omnisched_allinone.health import check_broker, check_results

    delay = 0.5
    while True:
        broker, results = await asyncio.gather(check_broker(app, settings), check_results(settings))
        down = [
            (name, check)
            for name, check in (("RabbitMQ", broker), ("Redis", results))
            if check["status"] != "up"
        ]
        if not down:
            return
        for name, check in down:
            log.warning("waiting for %s (%s); retrying in %.1fs", name, check.get("error"), delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_backoff_s)


async def prepare_store(services: Services) -> None:
    """Indexes, then the built-in jobs (once)."""
    await wait_for_store(services.store)
    if services.settings.seed_builtin_jobs:
        drafts = load_builtin_drafts(services.settings.builtin_jobs_path())
        await seed_builtin_jobs(services.service, drafts)


def banner(
    settings: Settings,
    parts: Iterable[Part],
    grpc_port: int | None,
    dev: bool,
    http_port: int | None = None,
) -> str:
    lines = [f"omnisched running parts: {', '.join(p.value for p in parts)}"]
    if grpc_port is not None:
        lines.append(f"  gRPC API      {settings.grpc_host}:{grpc_port} (health, reflection)")
    if http_port is not None:
        lines.append(
            f"  HTTP API      http://{settings.grpc_host}:{http_port} "
            "(OpenAPI /openapi.json, docs /docs)"
        )
    lines += [
        f"  MongoDB       {settings.mongodb_url} (database {settings.mongodb_database})",
        f"  broker        {settings.celery_broker_url}",
        f"  results       {settings.celery_result_backend}",
    ]
    memory = [
        name
        for name, url in (
            ("store", settings.mongodb_url),
            ("broker", settings.celery_broker_url),
            ("results", settings.celery_result_backend),
        )
        if "memory://" in url
    ]
    if dev or memory:
        lines.append(
            f"  in-memory ({', '.join(memory)}): nothing survives a restart"
            + (" [dev mode]" if dev else "")
        )
    return mask_secrets("\n".join(lines))


async def _until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run `work` unless `stop` comes first (start-up may wait long for a server)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task in done:
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


@dataclass(frozen=True)
class LaunchOptions:
    parts: tuple[Part, ...] = DEFAULT_PARTS
    dev: bool = False
    task_modules: tuple[str, ...] = ()
    concurrency: int | None = None
    queues: tuple[str, ...] = QUEUES
    worker_hostname: str | None = None
    insecure: bool = False  # serve the API beyond loopback without tokens or mTLS, on purpose


async def run_parts(
    settings: Settings,
    options: LaunchOptions,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Services, int | None], None] | None = None,
) -> int:
    """Run the parts until `stop` is set (or SIGTERM/SIGINT); returns the exit code.

    Start-up order: API bound but NOT_SERVING, store ready (indexes, built-ins), worker, beat,
    then SERVING. Shutdown runs the other way: no new RPCs, no new dispatches, running tasks
    finish (warm shutdown), connections close.
    """
    parts = options.parts
    missing = [p for p in parts if p not in BUILT_PARTS]
    if missing:
        raise PartNotAvailable(
            f"part(s) {', '.join(missing)} are not available in this version yet; "
            f"available: {', '.join(sorted(BUILT_PARTS))}"
        )
    from omnisched_allinone.api.security import (
        TlsConfig,
        TokenTable,
        http_authorizer,
        unauthenticated_exposure,
    )
    from omnisched_allinone.api.server import create_server
    from omnisched_allinone.celery_app import celery_app, configure_celery_app
    from omnisched_allinone.context import WorkerContext, install_context
    from omnisched_allinone.dispatch import CeleryDispatcher

    tokens = TokenTable.parse(settings.api_tokens.get_secret_value())
    add_masked_values(settings.api_tokens.get_secret_value().split(","))
    tls = TlsConfig.from_paths(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
    if Part.GRPC in parts or Part.HTTP in parts:
        exposure = unauthenticated_exposure(settings.grpc_host, tokens, tls, options.insecure)
        if exposure is not None:
            raise InsecureLaunch(exposure)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    configure_celery_app(celery_app, settings, options.task_modules)
    dispatcher = CeleryDispatcher(celery_app, settings)
    services = build_services(settings, dispatcher)
    services.service.task_exists = lambda name: name in celery_app.tasks
    runtime.install_bridge(runtime.LoopBridge(loop))
    context = WorkerContext.create(settings, services.service, dispatcher)
    install_context(context)

    metrics_server = None
    if settings.metrics_port:
        from omnisched_allinone import metrics

        metrics_server = metrics.serve(settings.grpc_host, settings.metrics_port)
    api = None
    worker = None
    beat = None
    if Part.GRPC in parts:
        api = create_server(
            services.service,
            host=settings.grpc_host,
            port=settings.grpc_port,
            max_message_bytes=settings.max_message_bytes,
            max_concurrent_rpcs=settings.max_concurrent_rpcs,
            max_watch_streams=settings.max_watch_streams,
            reflection_enabled=settings.reflection,
            tokens=tokens,
            tls=tls,
            interceptors=_api_interceptors(metrics_server is not None),
        )
        await api.set_serving(False)
        await api.server.start()
    http = None
    http_port: int | None = None
    if Part.HTTP in parts:
        from omnisched_allinone.http import HttpServer, create_http_app

        http = HttpServer(
            create_http_app(services.service, settings=settings, authorize=http_authorizer(tokens)),
            ssl_options=tls.uvicorn_options() if tls is not None else None,
        )
        http_port = await http.start(settings.grpc_host, settings.http_port)
    try:
        if not await _until_stopped(prepare_store(services), stop):
            return 0
        if (Part.WORKER in parts or Part.BEAT in parts) and not await _until_stopped(
            wait_for_broker(celery_app, settings), stop
        ):
            return 0
        if metrics_server is not None:
            from omnisched_allinone import metrics
            from omnisched_allinone.core.jobs import JobStatus

            services.background.append(
                asyncio.create_task(
                    metrics.refresh_jobs_gauge(services.store, [str(s) for s in JobStatus])
                )
            )
        if Part.WORKER in parts:
            from omnisched_allinone.worker import start_worker_thread

            worker = await asyncio.to_thread(
                start_worker_thread,
                celery_app,
                queues=options.queues,
                concurrency=options.concurrency or settings.worker_concurrency,
                loglevel=settings.log_level,
                hostname=options.worker_hostname,
            )
        if Part.BEAT in parts:
            from omnisched_allinone.beat import start_beat_thread

            beat = start_beat_thread(celery_app)
        if api is not None:
            services.background.append(asyncio.create_task(api.watch_store(services.service)))
        print(
            banner(settings, parts, api.port if api else None, options.dev, http_port), flush=True
        )
        if on_ready is not None:
            on_ready(services, api.port if api else None)
        await stop.wait()
        log.info("shutdown requested; stopping parts")
    finally:
        if api is not None:
            await api.stop(settings.shutdown_grace_s)
        if http is not None:
            await http.stop(settings.shutdown_grace_s)
        if beat is not None:
            await beat.stop_async()
        if worker is not None:
            # In a thread: running tasks still need this loop to finish.
            await asyncio.to_thread(worker.stop, settings.shutdown_grace_s)
        for task in services.background:
            task.cancel()
        await asyncio.gather(*services.background, return_exceptions=True)
        await context.close()
        await services.store.close()
        if metrics_server is not None:
            metrics_server.stop()
        install_context(None)
        runtime.install_bridge(None)
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    log.info("stopped")
    return 0


def _api_interceptors(with_metrics: bool) -> list[Any]:
    if not with_metrics:
        return []
    from omnisched_allinone.api.metrics import ApiMetricsInterceptor

    return [ApiMetricsInterceptor()]
