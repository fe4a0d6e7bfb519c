"""Prometheus metrics of one process, served on `OMNISCHED_METRICS_PORT` (off by default).

The recording functions are called from the scheduler, the engine and the API interceptor; they do
nothing until `serve()` has started the endpoint, so the code that calls them stays the same with
metrics on or off. Each process serves its own numbers (one port per process; under supervisord
each program gets its own port): Prometheus sums across targets. A prefork worker's children do
not report to the parent; run metrics come from processes that run tasks in threads (the
all-in-one, or `omnisched run --parts worker --pool threads`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

JOBS_REFRESH_INTERVAL_S = 15.0

API_REQUESTS = Counter(
    "omnisched_api_requests",
    "gRPC API requests handled, by method and status code.",
    ["method", "code"],
)
API_LATENCY = Histogram(
    "omnisched_api_request_duration_seconds",
    "Time to answer a unary gRPC API request, by method.",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RUNS_DISPATCHED = Counter(
    "omnisched_runs_dispatched", "Scheduled runs published to the broker.", ["job_type"]
)
RUNS_SKIPPED = Counter(
    "omnisched_runs_skipped", "Scheduled runs skipped by the overlap policy.", ["job_type"]
)
RUNS_MISSED = Counter(
    "omnisched_runs_missed", "Fire times missed (outside the catch-up window).", ["job_type"]
)
DISPATCH_LAG = Histogram(
    "omnisched_dispatch_lag_seconds",
    "From a run's fire time to its publication on the broker.",
    ["job_type"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
RUNS_FINISHED = Counter(
    "omnisched_runs_finished", "Runs that ended, by job type and outcome.", ["job_type", "status"]
)
RUN_DURATION = Histogram(
    "omnisched_run_duration_seconds",
    "How long a run's work took, by job type and outcome.",
    ["job_type", "status"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800),
)
JOBS = Gauge("omnisched_jobs", "Jobs in the store by status (refreshed periodically).", ["status"])

_enabled = False


def enabled() -> bool:
    return _enabled


def api_request(method: str, code: str, duration_s: float | None) -> None:
    if _enabled:
        API_REQUESTS.labels(method, code).inc()
        if duration_s is not None:
            API_LATENCY.labels(method).observe(duration_s)


def run_dispatched(job_type: str, lag_s: float | None) -> None:
    if _enabled:
        RUNS_DISPATCHED.labels(str(job_type)).inc()
        if lag_s is not None:
            DISPATCH_LAG.labels(str(job_type)).observe(max(lag_s, 0.0))


def run_skipped(job_type: str) -> None:
    if _enabled:
        RUNS_SKIPPED.labels(str(job_type)).inc()


def runs_missed(job_type: str, count: int) -> None:
    if _enabled and count:
        RUNS_MISSED.labels(str(job_type)).inc(count)


def run_finished(job_type: str, status: str, duration_s: float) -> None:
    if _enabled:
        RUNS_FINISHED.labels(str(job_type), str(status)).inc()
        RUN_DURATION.labels(str(job_type), str(status)).observe(max(duration_s, 0.0))


class JobCounter(Protocol):
    async def count_jobs_by_status(self) -> dict[str, int]: ...


async def refresh_jobs_gauge(
    store: JobCounter, statuses: list[str], interval_s: float = JOBS_REFRESH_INTERVAL_S
) -> None:
    """Keep `omnisched_jobs{status}` in step with the store (one count per status each time)."""
    while True:
        try:
            counts = await store.count_jobs_by_status()
            for status in statuses:
                JOBS.labels(status).set(counts.get(status, 0))
        except Exception as error:  # a store blip: keep the last values, try again later
            log.debug("jobs gauge not refreshed: %s", error)
        await asyncio.sleep(interval_s)


@dataclass
class MetricsServer:
    """The `/metrics` HTTP endpoint of this process (prometheus-client's server in a thread)."""

    server: Any
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def stop(self) -> None:
        global _enabled
        _enabled = False
        with contextlib.suppress(Exception):
            self.server.shutdown()
            self.server.server_close()
        self.thread.join(5)


def serve(host: str, port: int) -> MetricsServer:
    """Start `/metrics` on `host:port` (0 picks a free port) and turn recording on."""
    global _enabled
    server, thread = start_http_server(port, addr=host)
    _enabled = True
    metrics = MetricsServer(server, thread)
    log.info("metrics served", extra={"address": f"{host}:{metrics.port}"})
    return metrics
