"""A user task module (`--tasks tests.faults.poison_tasks`) with a poison task for fault tests."""

from __future__ import annotations

import os
import signal

from omnisched_allinone.celery_app import celery_app

POISON_TASK = "faults.kill_own_worker"
# Only a worker the fault test started (with this variable set) is killed: should this task
# ever reach another worker, it fails instead of killing that worker.
ARMED_ENV = "OMNISCHED_FAULTS_POISON_ARMED"


@celery_app.task(name=POISON_TASK)
def kill_own_worker(**parameters: object) -> None:
    """Kills the process that runs it, every time: a poison job."""
    if os.environ.get(ARMED_ENV) != "1":
        raise RuntimeError(f"poison task not armed ({ARMED_ENV} unset)")
    os.kill(os.getpid(), signal.SIGKILL)
