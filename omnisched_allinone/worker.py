"""Starting Celery workers: in a thread of the all-in-one process, or alone in the foreground.

In the all-in-one process the worker uses Celery's `threads` pool (jobs are I/O-bound gRPC calls)
and runs beside the API on the same store client. A worker run alone may use `prefork`; its
children each make their own loop and store client after the fork.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from celery import Celery
from celery.platforms import EX_FAILURE, EX_OK
from celery.worker import WorkController
from celery.worker import state as worker_state

from omnisched_allinone.core.jobs import QUEUES

log = logging.getLogger(__name__)


def worker_hostname(prefix: str = "omnisched") -> str:
    return f"{prefix}@{socket.gethostname()}"


@dataclass
class WorkerThread:
    """A Celery `WorkController` running in a daemon thread."""

    controller: WorkController
    thread: threading.Thread

    def stop(self, timeout_s: float = 30.0) -> None:
        """Warm shutdown: stop consuming, let running tasks finish (up to `timeout_s`).

        The worker's own thread must do it, as Celery's SIGTERM handler has it do: calling
        `controller.stop()` from here races the consumer thread on the one AMQP connection (the
        remote-control channel's basic_cancel waits for a reply the consumer thread reads), and
        with RabbitMQ that hung the shutdown until supervisord's SIGKILL. `should_stop` makes the
        consumer loop raise WorkerShutdown in its thread, and the controller stops itself there.
        """
        worker_state.should_stop = EX_OK
        try:
            self.thread.join(timeout_s)
            if self.thread.is_alive():
                log.warning("worker did not stop within %.0fs; terminating", timeout_s)
                worker_state.should_terminate = EX_FAILURE
                self.thread.join(5)
        finally:
            # Process-wide flags: a later worker in this process (tests) starts afresh.
            worker_state.should_stop = None
            worker_state.should_terminate = None


def start_worker_thread(
    app: Celery,
    *,
    queues: Sequence[str] = QUEUES,
    concurrency: int = 4,
    hostname: str | None = None,
    loglevel: str = "INFO",
) -> WorkerThread:
    # A bare WorkController in a thread finds the app through these (DESIGN §10).
    app.set_current()
    app.set_default()
    app.loader.import_default_modules()
    ready = threading.Event()
    controller = app.WorkController(
        ready_callback=lambda consumer: ready.set(),
        hostname=hostname or worker_hostname(),
        pool_cls="threads",
        concurrency=concurrency,
        queues=list(queues),
        loglevel=loglevel,
        send_events=True,
        without_mingle=True,
        without_gossip=True,
        optimization="fair",
    )
    thread = threading.Thread(target=controller.start, name="omnisched-worker", daemon=True)
    thread.start()
    if not ready.wait(30):
        log.warning("worker not ready after 30s; still starting in the background")
    return WorkerThread(controller, thread)


def run_worker_foreground(
    app: Celery,
    *,
    pool: str,
    concurrency: int,
    queues: Sequence[str] = QUEUES,
    loglevel: str = "INFO",
    hostname: str | None = None,
) -> None:
    """`celery worker` in this process's main thread (signals, prefork children, warm shutdown)."""
    argv = [
        "worker",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        f"--queues={','.join(queues)}",
        f"--loglevel={loglevel}",
        f"--hostname={hostname or worker_hostname()}",
        "--events",
    ]
    app.worker_main(argv)
