"""The `omnisched` command: run the service's parts, and (later) talk to a running one."""

from __future__ import annotations

import asyncio
import sys

import click

from omnisched_allinone import __version__
from omnisched_allinone.app import DEFAULT_PARTS, PartNotAvailable, parse_parts, run_parts
from omnisched_allinone.logs import configure_logging
from omnisched_allinone.settings import Settings

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="omnisched")
def main() -> None:
    """omnisched: an all-in-one job scheduler (gRPC job API, Celery workers, store-driven Beat).

    Start here: `omnisched run --dev` serves the API on port 50054 with everything in memory.
    """


@main.command()
@click.option(
    "--parts",
    default=",".join(p.value for p in DEFAULT_PARTS),
    show_default=True,
    help="Comma-separated parts to run in this process: grpc, http, worker, beat.",
)
@click.option(
    "--dev",
    is_flag=True,
    help="In-memory MongoDB, broker and results (MONGODB_URL=memory://, "
    "CELERY_BROKER_URL=memory://, CELERY_RESULT_BACKEND=cache+memory://): no servers needed, "
    "nothing survives a restart.",
)
@click.option("--grpc-port", type=int, default=None, help="Overrides GRPC_PORT (default 50054).")
@click.option("--host", default=None, help="Address to bind the API to (OMNISCHED_GRPC_HOST).")
def run(parts: str, dev: bool, grpc_port: int | None, host: str | None) -> None:
    """Run the named parts of the service in this process until SIGTERM or Ctrl-C.

    Without --dev the parts use the servers named by MONGODB_URL, CELERY_BROKER_URL and
    CELERY_RESULT_BACKEND; each may be set to its in-memory fallback alone (e.g.
    MONGODB_URL=memory:// with the real RabbitMQ and Redis).
    """
    settings = Settings()
    if dev:
        settings = settings.as_dev()
    updates: dict[str, object] = {}
    if grpc_port is not None:
        updates["grpc_port"] = grpc_port
    if host is not None:
        updates["grpc_host"] = host
    settings = settings.model_copy(update=updates)
    configure_logging(settings.log_level, settings.log_format == "json")
    try:
        chosen = parse_parts(parts)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--parts") from None
    try:
        code = asyncio.run(run_parts(settings, chosen, dev=dev))
    except PartNotAvailable as error:
        click.echo(f"omnisched: {error}", err=True)
        sys.exit(EXIT_USAGE)
    except OSError as error:
        click.echo(f"omnisched: {error}", err=True)
        sys.exit(EXIT_UNAVAILABLE)
    sys.exit(code)
