"""What every benchmark shares: where the services are, the service in a thread, the report.

Traffic goes to 127.0.0.1 only. RabbitMQ traffic goes to a vhost of its own (`omnisched-bench`,
created with `rabbitmqctl` when missing) so that a test run or a service using the default vhost
on this machine neither steals the benchmark's messages nor feeds it its own; Redis results go to
database 14 (the tests use 15).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
from kombu import Connection

from omnisched_allinone.app import LaunchOptions, Part
from omnisched_allinone.embedded import ServiceThread as EmbeddedService
from omnisched_allinone.settings import Settings, mask_secrets

T = TypeVar("T")

HOST = "127.0.0.1"
BENCH_VHOST = "omnisched-bench"
RESULTS_URL = f"redis://{HOST}:6379/14"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
STORE_NOTE = "store: in-memory mongomock (no MongoDB server on this machine)"


# -- services -------------------------------------------------------------------------------------


def answers(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def need_services() -> None:
    missing = [name for name, port in (("RabbitMQ", 5672), ("Redis", 6379)) if not answers(port)]
    if missing:
        raise SystemExit(f"bench: {', '.join(missing)} not answering on {HOST}")


def _broker(vhost: str) -> str:
    return f"amqp://guest:guest@{HOST}:5672/{vhost.replace('/', '%2F')}"


def _connects(url: str) -> bool:
    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


def broker_url() -> tuple[str, str]:
    """The benchmark's vhost URL (created when missing), or the default vhost with a note."""
    url = _broker(BENCH_VHOST)
    if _connects(url):
        return url, f"RabbitMQ vhost {BENCH_VHOST}"
    ctl = shutil.which("rabbitmqctl")
    if ctl is not None:
        for command in (
            [ctl, "add_vhost", BENCH_VHOST],
            [ctl, "set_permissions", "-p", BENCH_VHOST, "guest", ".*", ".*", ".*"],
        ):
            subprocess.run(command, capture_output=True, timeout=60, check=False)
        if _connects(url):
            return url, f"RabbitMQ vhost {BENCH_VHOST} (created)"
    return _broker("/"), "RabbitMQ default vhost (could not create omnisched-bench)"


def purge_queues(url: str, queues: Iterable[str]) -> None:
    """Drop messages a benchmark left behind (e.g. beat's published runs nobody consumes)."""
    with Connection(url) as connection:
        channel = connection.channel()
        for queue in queues:
            try:
                channel.queue_purge(queue)
            except Exception:  # a queue that was never declared
                channel = connection.channel()


def service_settings(broker: str, results: str = RESULTS_URL, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "MONGODB_URL": "memory://",
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": results,
        "LOG_LEVEL": "WARNING",
        "OMNISCHED_SEED_BUILTIN_JOBS": False,
    }
    values.update(extra)
    return Settings(**values)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class ServiceThread(EmbeddedService):
    """The service in a thread of this process, on loopback with a free port."""

    def __init__(
        self,
        settings: Settings,
        parts: tuple[Part, ...] = (Part.GRPC, Part.WORKER),
        **options: Any,
    ) -> None:
        super().__init__(
            settings.model_copy(
                update={"grpc_host": HOST, "grpc_port": 0, "shutdown_grace_s": 5.0}
            ),
            LaunchOptions(
                parts=parts,
                **{"worker_hostname": f"bench-{uuid.uuid4().hex[:8]}@localhost", **options},
            ),
        )

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float = 60.0) -> T:
        return super().call(coro, timeout_s)


# -- numbers --------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def timed(function: Any, *args: Any) -> float:
    began = time.perf_counter()
    function(*args)
    return time.perf_counter() - began


# -- the report -----------------------------------------------------------------------------------


@dataclass
class Target:
    """A goal from the issue: `on` the ratio (ours / baseline) or on our value itself."""

    text: str
    on: str  # "ratio" | "value"
    op: str  # "<=" | ">="
    bound: float

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        subject = ratio if self.on == "ratio" else value
        if subject is None or math.isnan(subject):
            return None
        return subject <= self.bound if self.op == "<=" else subject >= self.bound


@dataclass
class Row:
    benchmark: str
    metric: str
    unit: str
    omnisched: float | None
    baseline: float | None = None
    baseline_name: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Report:
    benchmark: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(
        self,
        metric: str,
        value: float | None,
        unit: str,
        *,
        baseline: float | None = None,
        baseline_name: str = "",
        target: Target | None = None,
        note: str = "",
    ) -> Row:
        ratio = None
        if value is not None and baseline:
            ratio = value / baseline
        row = Row(
            self.benchmark,
            metric,
            unit,
            value,
            baseline,
            baseline_name,
            ratio,
            target.text if target else "",
            target.met(value, ratio) if target else None,
            note,
        )
        self.rows.append(row)
        return row

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "rows": [asdict(r) for r in self.rows],
            "notes": self.notes,
            "extra": self.extra,
        }


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    header = ["benchmark", "metric", "omnisched", "baseline", "ratio", "target", "met"]
    lines = [header]
    for r in rows:
        met = {True: "yes", False: "NO", None: ""}[r["met"]]
        baseline = _num(r["baseline"])
        if r["baseline"] is not None and r["baseline_name"]:
            baseline = f"{baseline} ({r['baseline_name']})"
        lines.append(
            [
                r["benchmark"],
                f"{r['metric']} [{r['unit']}]",
                _num(r["omnisched"]),
                baseline,
                f"{r['ratio']:.2f}x" if r["ratio"] is not None else "",
                r["target"],
                met,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def environment() -> dict[str, Any]:
    import celery
    import kombu

    return {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "celery": celery.__version__,
        "kombu": kombu.__version__,
        "grpcio": grpc.__version__,
        "store": STORE_NOTE,
    }


# -- command line ---------------------------------------------------------------------------------


def parser(name: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m bench.{name}", description=description)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes, a minute or so")
    size.add_argument("--smoke", action="store_true", help="tiny sizes: checks it runs, seconds")
    p.add_argument("--json", type=Path, default=None, help="write this benchmark's report here")
    return p


def sized(args: argparse.Namespace, full: T, quick: T, smoke: T) -> T:
    return smoke if args.smoke else quick if args.quick else full


def finish(report: Report, args: argparse.Namespace) -> None:
    """Print the report; write it as JSON when asked (the runner collects these)."""
    print(format_table([asdict(r) for r in report.rows]))
    for note in report.notes:
        print(f"  note: {mask_secrets(note)}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2, default=str))
    sys.stdout.flush()
