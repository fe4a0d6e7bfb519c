"""Operations commands: `omnisched supervise`, `supervisorctl`, `flower` and `check`.

supervisord owns the processes (STYLE lesson 6): `supervise` only computes the environment that
`config/supervisord.conf` expands (which programs start, where their output goes, their metrics
ports) and replaces itself with supervisord in the foreground. `check` is the container's
HEALTHCHECK: one line per part, exit 0 when every checked part is healthy, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import math
import os
import shlex
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path

import click

from omnisched_allinone.logs import configure_logging
from omnisched_allinone.settings import Settings, config_dir, mask_secrets


class ExitCode(IntEnum):
    OK = 0
    UNHEALTHY = 1  # `check`: a part is not healthy
    USAGE = 2  # bad options, or a setup that cannot work (memory:// across processes)


class OpsError(click.ClickException):
    exit_code = ExitCode.USAGE

    def show(self, file: object = None) -> None:
        click.echo(f"omnisched: {self.message}", err=True)


# -- supervise -------------------------------------------------------------------------------------

SERVICE_PARTS = ("grpc", "http", "worker", "beat")
ALL_PARTS = (*SERVICE_PARTS, "flower")
DEFAULT_SUPERVISED_PARTS = "grpc,http,worker,beat"
ALLINONE = "allinone"
PROGRAMS = (ALLINONE, *ALL_PARTS)
LOG_FILES = {
    ALLINONE: "scheduler_service.log",
    "grpc": "scheduler_service.log",
    "http": "scheduler_http.log",  # its own file: two programs cannot share one rotating log
    "worker": "celery_worker.log",
    "beat": "celery_beat.log",
    "flower": "flower.log",
}
# Each program's metrics port is OMNISCHED_METRICS_PORT plus this offset (Flower has its own).
METRICS_OFFSETS = {ALLINONE: 0, "grpc": 0, "http": 1, "worker": 2, "beat": 3}
LOG_MAXBYTES = 50 * 1024 * 1024
# Beyond the shutdown grace, time to close connections before supervisord sends SIGKILL.
STOP_MARGIN_S = 20


def supervisord_conf() -> Path:
    return config_dir() / "supervisord.conf"


def parse_supervised_parts(text: str) -> tuple[str, ...]:
    parts: list[str] = []
    for name in filter(None, (p.strip().lower() for p in text.split(","))):
        if name not in ALL_PARTS:
            raise OpsError(f"unknown part {name!r}; choose from {', '.join(ALL_PARTS)}")
        if name not in parts:
            parts.append(name)
    if not parts:
        raise OpsError("name at least one part")
    return tuple(parts)


def plan_programs(parts: Sequence[str], split: bool) -> dict[str, str]:
    """The supervisord programs for `parts`: program name → the parts it runs.

    Several service parts share ONE `allinone` process unless `split` asks for one process per
    part (scaled deployments); a single part runs under its own name (its own log file).
    """
    service = [p for p in parts if p in SERVICE_PARTS]
    programs: dict[str, str] = {}
    if len(service) == 1 or split:
        programs.update((part, part) for part in service)
    elif service:
        programs[ALLINONE] = ",".join(service)
    if "flower" in parts:
        programs["flower"] = ""
    return programs


def default_supervisor_dir() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"omnisched-supervisor-{uid}"


def supervisor_env(
    settings: Settings,
    parts: Sequence[str],
    *,
    split: bool,
    insecure: bool = False,
    base_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Every `%(ENV_…)s` that supervisord.conf expands, on top of `base_env`."""
    programs = plan_programs(parts, split)
    store_programs = [p for p in programs if p != "flower"]
    if len(store_programs) > 1 and (settings.uses_memory_store or settings.uses_memory_broker):
        raise OpsError(
            "memory:// lives inside one process: separate programs cannot share it. Set "
            "MONGODB_URL and CELERY_BROKER_URL to real servers, or drop --split to run the parts "
            "in one all-in-one process"
        )
    if "flower" in programs and settings.uses_memory_broker:
        raise OpsError("Flower needs the workers' broker; CELERY_BROKER_URL=memory:// has none")
    env = dict(os.environ if base_env is None else base_env)
    to_stdout = settings.log_to_stdout
    log_dir = Path(settings.log_dir).resolve()
    run_dir = Path(settings.supervisor_dir) if settings.supervisor_dir else default_supervisor_dir()
    env.update(
        OMNISCHED_BIN=f"{shlex.quote(sys.executable)} -m omnisched_allinone",
        OMNISCHED_LOG_DIR=str(log_dir),
        OMNISCHED_SUPERVISOR_DIR=str(run_dir.resolve()),
        OMNISCHED_SUPERVISORD_LOG="/dev/null" if to_stdout else str(log_dir / "supervisord.log"),
        OMNISCHED_LOG_MAXBYTES="0" if to_stdout else str(LOG_MAXBYTES),
        OMNISCHED_STOP_WAIT_S=str(math.ceil(settings.shutdown_grace_s) + STOP_MARGIN_S),
        OMNISCHED_ALLINONE_PARTS=programs.get(ALLINONE, DEFAULT_SUPERVISED_PARTS),
        OMNISCHED_RUN_FLAGS="--insecure" if insecure else "",
        OMNISCHED_FLOWER_FLAGS="--insecure" if insecure else "",
        PYTHONUNBUFFERED="1",
    )
    for program in PROGRAMS:
        key = program.upper()
        env[f"OMNISCHED_AUTOSTART_{key}"] = "true" if program in programs else "false"
        env[f"OMNISCHED_LOG_FILE_{key}"] = (
            "/dev/stdout" if to_stdout else str(log_dir / LOG_FILES[program])
        )
        offset = METRICS_OFFSETS.get(program)
        port = settings.metrics_port + offset if settings.metrics_port and offset is not None else 0
        env[f"OMNISCHED_METRICS_PORT_{key}"] = str(port)
    return env


def _prepare_dirs(env: Mapping[str, str], to_stdout: bool) -> None:
    run_dir = Path(env["OMNISCHED_SUPERVISOR_DIR"])
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not to_stdout:
        Path(env["OMNISCHED_LOG_DIR"]).mkdir(parents=True, exist_ok=True)


@click.command()
@click.option(
    "--parts",
    default=None,
    help="Parts to run: grpc, http, worker, beat, flower (default OMNISCHED_PARTS, else "
    f"{DEFAULT_SUPERVISED_PARTS}).",
)
@click.option(
    "--split/--no-split",
    default=None,
    help="One process per part instead of one all-in-one process (default OMNISCHED_SPLIT_PARTS). "
    "Needs MongoDB and RabbitMQ: memory:// cannot be shared between processes.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Pass --insecure to the API and Flower programs (no authentication; see their help).",
)
@click.option("--print-env", is_flag=True, help="Print the computed environment and exit.")
def supervise(parts: str | None, split: bool | None, insecure: bool, print_env: bool) -> None:
    """Run the parts under supervisord in the foreground (restarts on crash, SIGTERM drains).

    Programs' output goes to OMNISCHED_LOG_DIR (default ./logs): scheduler_service.log,
    celery_worker.log, celery_beat.log, flower.log; with OMNISCHED_LOG_TO_STDOUT=1 to stdout.
    `omnisched supervisorctl status` talks to it.
    """
    settings = Settings()
    chosen = parse_supervised_parts(parts or settings.parts or DEFAULT_SUPERVISED_PARTS)
    env = supervisor_env(
        settings,
        chosen,
        split=settings.split_parts if split is None else split,
        insecure=insecure,
    )
    if print_env:
        for key in sorted(k for k in env if k.startswith("OMNISCHED_")):
            click.echo(mask_secrets(f"{key}={env[key]}"))
        return
    _prepare_dirs(env, settings.log_to_stdout)
    conf = supervisord_conf()
    argv = [sys.executable, "-m", "supervisor.supervisord", "--nodaemon", "-c", str(conf)]
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def supervisorctl(args: tuple[str, ...]) -> None:
    """supervisorctl for the supervisord that `omnisched supervise` runs (e.g. `status`)."""
    settings = Settings()
    chosen = parse_supervised_parts(settings.parts or DEFAULT_SUPERVISED_PARTS)
    # The programs' layout does not matter to supervisorctl; the socket path does.
    env = supervisor_env(settings, chosen, split=False)
    argv = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(supervisord_conf())]
    os.execve(sys.executable, [*argv, *args], env)


# -- flower ----------------------------------------------------------------------------------------


def _basic_auth_items(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    for item in items:
        user, _, password = item.partition(":")
        if not user or not password:
            raise OpsError("FLOWER_BASIC_AUTH / --basic-auth must be user:password[,user:password]")
    return items


@click.command()
@click.option("--port", type=int, default=None, help="Port (default FLOWER_PORT, 5555).")
@click.option("--address", default=None, help="Address (default FLOWER_ADDRESS, 0.0.0.0).")
@click.option(
    "--basic-auth",
    default=None,
    metavar="USER:PASSWORD[,…]",
    help="Credentials (default FLOWER_BASIC_AUTH). Handed to Flower through its environment, "
    "never its command line, so `ps` does not show them.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Run without authentication. Flower's API can run tasks and shut workers down: only "
    "behind another gate.",
)
def flower(port: int | None, address: str | None, basic_auth: str | None, insecure: bool) -> None:
    """Flower (Celery monitoring UI and API) for omnisched's Celery app, in the foreground."""
    settings = Settings()
    auth = basic_auth or settings.flower_basic_auth.get_secret_value()
    items = _basic_auth_items(auth) if auth else []
    if not items and not insecure:
        raise OpsError(
            "Flower without authentication can run and stop tasks: set FLOWER_BASIC_AUTH="
            "user:password (or pass --basic-auth), or --insecure to run it open on purpose"
        )
    if settings.uses_memory_broker:
        raise OpsError("Flower needs the workers' broker; CELERY_BROKER_URL=memory:// has none")
    secrets = [*items, *(item.partition(":")[2] for item in items)]
    configure_logging(settings.log_level, settings.log_format == "json", secrets)
    from omnisched_allinone.celery_app import celery_app, configure_celery_app

    configure_celery_app(celery_app, settings)
    if items:
        os.environ["FLOWER_BASIC_AUTH"] = ",".join(items)  # Flower reads its FLOWER_* variables
    else:
        os.environ.pop("FLOWER_BASIC_AUTH", None)
    argv = [
        "flower",
        f"--port={port if port is not None else settings.flower_port}",
        f"--address={address if address is not None else settings.flower_address}",
    ]
    celery_app.start(argv)


# -- check -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartHealth:
    part: str
    healthy: bool
    detail: str

    def line(self) -> str:
        return mask_secrets(f"{self.part}: {'ok' if self.healthy else 'FAILED'} ({self.detail})")


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host


def check_grpc(settings: Settings, timeout_s: float) -> PartHealth:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    address = f"{_local(settings.grpc_host)}:{settings.grpc_port}"
    with grpc.insecure_channel(address) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
            )
        except grpc.RpcError as error:
            return PartHealth("grpc", False, f"{address}: {error.code().name}")
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    return PartHealth("grpc", status == "SERVING", f"{status} on {address}")


def _http_get(url: str, timeout_s: float) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status), response.read(200).decode(errors="replace")
    except urllib.error.HTTPError as error:
        return int(error.code), error.read(200).decode(errors="replace")


def _check_url(part: str, url: str, timeout_s: float) -> PartHealth:
    """Healthy when `url` answers 200."""
    try:
        code, _ = _http_get(url, timeout_s)
    except OSError as error:
        return PartHealth(part, False, f"{url}: {error}")
    return PartHealth(part, code == 200, f"{url} answered {code}")


def check_http(settings: Settings, timeout_s: float) -> PartHealth:
    url = f"http://{_local(settings.grpc_host)}:{settings.http_port}/readyz"
    return _check_url("http", url, timeout_s)


def check_flower(settings: Settings, timeout_s: float) -> PartHealth:
    url = f"http://{_local(settings.flower_address)}:{settings.flower_port}/healthcheck"
    return _check_url("flower", url, timeout_s)


def check_worker(settings: Settings, timeout_s: float, node: str) -> PartHealth:
    if settings.uses_memory_broker:
        return PartHealth("worker", False, "memory:// broker: not reachable from another process")
    from omnisched_allinone.celery_app import celery_app, configure_celery_app

    configure_celery_app(celery_app, settings)
    try:
        answers = celery_app.control.ping(destination=[node], timeout=timeout_s)
    except Exception as error:  # kombu raises many types for a broker that does not answer
        return PartHealth("worker", False, f"broker: {type(error).__name__}: {error}")
    finally:
        celery_app.close()
    if any(node in answer for answer in answers):
        return PartHealth("worker", True, f"{node} answered ping")
    return PartHealth("worker", False, f"{node} did not answer ping within {timeout_s:g}s")


async def _beat_lease(settings: Settings) -> tuple[str, datetime] | None:
    from omnisched_allinone.scheduling import LEASE_NAME
    from omnisched_allinone.store.mongo import open_store

    store = open_store(
        settings.mongodb_url, settings.mongodb_database, timeout_ms=settings.store_timeout_ms
    )
    try:
        return await store.lease_holder(LEASE_NAME)
    finally:
        await store.close()


def check_beat(settings: Settings, timeout_s: float) -> PartHealth:
    """Healthy when some beat holds the scheduler lease and renewed it within `lease_s`.

    The lease is what makes a beat useful: the one that holds it dispatches, and it renews it
    every tick. A standby beat (another holds the lease) is healthy too, since it would take over;
    supervisord restarts a beat process that died.
    """
    if settings.uses_memory_store:
        return PartHealth("beat", False, "memory:// store: not readable from another process")
    try:
        holder = asyncio.run(asyncio.wait_for(_beat_lease(settings), timeout_s))
    except Exception as error:
        return PartHealth("beat", False, f"MongoDB: {type(error).__name__}: {error}")
    if holder is None:
        return PartHealth("beat", False, "no beat holds the scheduler lease")
    owner, expires_at = holder
    left_s = (expires_at - datetime.now(UTC)).total_seconds()
    if left_s <= 0:
        return PartHealth("beat", False, f"lease of {owner} expired {-left_s:.0f}s ago")
    return PartHealth("beat", True, f"lease held by {owner}, renewed (expires in {left_s:.0f}s)")


@click.command()
@click.option(
    "--parts",
    default=None,
    help="Parts to check: grpc, http, worker, beat, flower (default OMNISCHED_PARTS, else "
    f"{DEFAULT_SUPERVISED_PARTS}).",
)
@click.option(
    "--hostname",
    default=None,
    help="Worker node to ping (default OMNISCHED_WORKER_HOSTNAME, else omnisched@<host>).",
)
@click.option("--timeout", "timeout_s", type=float, default=5.0, show_default=True)
def check(parts: str | None, hostname: str | None, timeout_s: float) -> None:
    """Exit 0 when the parts of this process/container are healthy, 1 when one is not.

    \b
    grpc    gRPC health `Check` answers SERVING on GRPC_PORT
    http    GET /readyz answers 200 on OMNISCHED_HTTP_PORT
    worker  the local worker node answers `celery inspect ping`
    beat    some beat holds the scheduler lease and renewed it within its lease time
    flower  GET /healthcheck answers 200 on FLOWER_PORT
    """
    settings = Settings()
    chosen = parse_supervised_parts(parts or settings.parts or DEFAULT_SUPERVISED_PARTS)
    node = hostname or settings.worker_hostname or f"omnisched@{socket.gethostname()}"
    checks = {
        "grpc": lambda: check_grpc(settings, timeout_s),
        "http": lambda: check_http(settings, timeout_s),
        "worker": lambda: check_worker(settings, timeout_s, node),
        "beat": lambda: check_beat(settings, timeout_s),
        "flower": lambda: check_flower(settings, timeout_s),
    }
    healthy = True
    for part in chosen:
        began = time.monotonic()
        result = checks[part]()
        healthy = healthy and result.healthy
        click.echo(f"{result.line()} [{(time.monotonic() - began) * 1000:.0f} ms]")
    sys.exit(ExitCode.OK if healthy else ExitCode.UNHEALTHY)
