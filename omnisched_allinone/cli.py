"""The `omnisched` command: run the service's parts, and (later) talk to a running one."""

from __future__ import annotations

import asyncio
import sys

import click

from omnisched_allinone import __version__
from omnisched_allinone.app import (
    DEFAULT_PARTS,
    InsecureLaunch,
    LaunchOptions,
    Part,
    PartNotAvailable,
    parse_parts,
    run_parts,
)
from omnisched_allinone.core.jobs import QUEUES
from omnisched_allinone.logs import configure_logging
from omnisched_allinone.settings import Settings

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INSECURE = 4  # the API would be open beyond loopback: set tokens/mTLS or pass --insecure


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
@click.option(
    "--tasks",
    "task_modules",
    multiple=True,
    metavar="MODULE",
    help="Import a module of your own Celery tasks (repeatable), e.g. --tasks myapp.tasks.",
)
@click.option("--concurrency", type=int, default=None, help="Worker threads/processes (default 4).")
@click.option(
    "--pool",
    type=click.Choice(["threads", "prefork", "solo"]),
    default=None,
    help="Worker pool. The all-in-one always uses threads; a worker run alone defaults to "
    "prefork (threads when the store is in memory, which forked children cannot share).",
)
@click.option(
    "--hostname",
    default=None,
    help="Worker node name (default omnisched@<host>); unique per worker on one machine.",
)
@click.option(
    "--queues",
    default=",".join(QUEUES),
    show_default=True,
    help="Queues a worker consumes (comma-separated).",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Serve the API beyond loopback WITHOUT authentication (no OMNISCHED_API_TOKENS, no "
    "mutual TLS). Without it such a launch is refused (exit code 4).",
)
def run(
    parts: str,
    dev: bool,
    grpc_port: int | None,
    host: str | None,
    task_modules: tuple[str, ...],
    concurrency: int | None,
    pool: str | None,
    hostname: str | None,
    queues: str,
    insecure: bool,
) -> None:
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
    hostname = hostname or settings.worker_hostname or None
    try:
        chosen = parse_parts(parts)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--parts") from None
    queue_list = tuple(q.strip() for q in queues.split(",") if q.strip())
    unknown = [q for q in queue_list if q not in QUEUES]
    if unknown or not queue_list:
        raise click.BadParameter(
            f"unknown queue(s) {unknown}; known: {', '.join(QUEUES)}", param_hint="--queues"
        )
    chosen_pool = (
        pool
        or settings.worker_pool
        or ("prefork" if chosen == (Part.WORKER,) and not settings.uses_memory_store else "threads")
    )
    if chosen == (Part.WORKER,) and chosen_pool != "threads":
        if settings.uses_memory_store or settings.uses_memory_broker:
            raise click.BadParameter(
                "an in-memory store or broker lives in one process: use --pool threads",
                param_hint="--pool",
            )
        _run_worker_alone(settings, task_modules, chosen_pool, concurrency, queue_list, hostname)
        return
    if chosen_pool != "threads":
        raise click.BadParameter(
            "the all-in-one process runs its worker with the threads pool; run "
            "`omnisched run --parts worker --pool prefork` separately for prefork",
            param_hint="--pool",
        )
    options = LaunchOptions(
        parts=chosen,
        dev=dev,
        task_modules=task_modules,
        concurrency=concurrency,
        queues=queue_list,
        worker_hostname=hostname,
        insecure=insecure,
    )
    try:
        code = asyncio.run(run_parts(settings, options))
    except InsecureLaunch as error:
        click.echo(f"omnisched: refusing to start: {error}", err=True)
        sys.exit(EXIT_INSECURE)
    except PartNotAvailable as error:
        click.echo(f"omnisched: {error}", err=True)
        sys.exit(EXIT_USAGE)
    except OSError as error:
        click.echo(f"omnisched: {error}", err=True)
        sys.exit(EXIT_UNAVAILABLE)
    sys.exit(code)


def _run_worker_alone(
    settings: Settings,
    task_modules: tuple[str, ...],
    pool: str,
    concurrency: int | None,
    queues: tuple[str, ...],
    hostname: str | None,
) -> None:
    """A worker in the foreground: Celery owns the main thread, its signals and its children."""
    from omnisched_allinone.celery_app import celery_app, configure_celery_app
    from omnisched_allinone.worker import run_worker_foreground

    configure_celery_app(celery_app, settings, task_modules)
    if settings.metrics_port:
        from omnisched_allinone import metrics

        # Runs in prefork children are not counted here (metrics.py says why).
        metrics.serve(settings.grpc_host, settings.metrics_port)
    run_worker_foreground(
        celery_app,
        pool=pool,
        concurrency=concurrency or settings.worker_concurrency,
        queues=queues,
        loglevel=settings.log_level,
        hostname=hostname,
    )


from omnisched_allinone.jobs_cli import jobs  # noqa: E402
from omnisched_allinone.ops_cli import check, flower, supervise, supervisorctl  # noqa: E402

main.add_command(jobs)
for _command in (check, flower, supervise, supervisorctl):
    main.add_command(_command)
