"""Publishing runs to the broker, answering only once RabbitMQ confirmed the message.

The task id of a run is its execution id: a retry, a redelivery and a re-publish by a recovering
beat all carry the same id, so Celery's result, Flower and our record all name the same run.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from celery import Celery

from omnisched_allinone.core.errors import Unavailable
from omnisched_allinone.core.executions import Execution
from omnisched_allinone.core.jobs import Job
from omnisched_allinone.settings import Settings, mask_secrets

log = logging.getLogger(__name__)

RUN_JOB_TASK = "run_job"
# Beyond the job's own time limit, the grace Celery's hard limit allows our clean TIMED_OUT.
HARD_LIMIT_GRACE_S = 30


class CeleryDispatcher:
    """The `Dispatcher` of the job service and the scheduler, on Celery."""

    def __init__(self, app: Celery, settings: Settings) -> None:
        self._app = app
        self._timeout_s = settings.publish_timeout_s

    def _send(self, execution: Execution, job: Job, countdown_s: float) -> str:
        queue = execution.queue or job.queue
        options: dict[str, Any] = {
            "task_id": execution.id,
            "queue": queue,
            "routing_key": queue,
            "exchange": queue,
            # The run's record lives in MongoDB. Without this, a client process subscribes to
            # every run's result channel in Redis and never lets go (celery redis backend
            # on_task_call), and a Redis outage would reach ExecuteJobNow.
            "ignore_result": True,
            "time_limit": job.policies.time_limit_s + HARD_LIMIT_GRACE_S,
            "soft_time_limit": job.policies.time_limit_s + HARD_LIMIT_GRACE_S // 2,
            "retry": True,
            "retry_policy": {
                "max_retries": 2,
                "interval_start": 0.2,
                "interval_step": 0.5,
                "interval_max": 1.0,
            },
        }
        if countdown_s > 0:
            options["countdown"] = countdown_s
        result = self._app.send_task(RUN_JOB_TASK, args=[execution.id], **options)
        return str(result.id)

    async def publish(self, execution: Execution, job: Job, *, countdown_s: float = 0.0) -> str:
        try:
            task_id = await asyncio.wait_for(
                asyncio.to_thread(self._send, execution, job, countdown_s), self._timeout_s
            )
        except Exception as error:  # kombu/amqp raise many types; all mean "not confirmed"
            reason = mask_secrets(f"{type(error).__name__}: {error}")
            log.warning("publish failed", extra={"execution_id": execution.id, "error": reason})
            raise Unavailable(f"broker unavailable, run not enqueued ({reason})") from error
        log.info(
            "run enqueued",
            extra={"execution_id": execution.id, "job_id": job.id, "queue": execution.queue},
        )
        return task_id
