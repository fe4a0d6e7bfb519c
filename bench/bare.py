"""The baseline: a bare Celery app with one no-op task, on omnisched's own Celery settings.

Same broker (publisher confirms, persistent messages, durable queue), same Redis result backend,
same worker options (prefetch 1, late acks, events, track-started, extended results) as
`omnisched_allinone.celery_app.celery_config`: what differs is only what omnisched adds on top
(the store records, the gRPC API, `run_job`). `celery -A bench.bare worker` finds `app` here,
configured from the environment (CELERY_BROKER_URL, CELERY_RESULT_BACKEND).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from omnisched_allinone.celery_app import celery_config
from omnisched_allinone.settings import Settings

BARE_QUEUE = "bench-bare"
NOOP = "bench.noop"


def make_bare_app(settings: Settings, queue: str = BARE_QUEUE) -> Celery:
    app = Celery("bench-bare", set_as_current=False)
    conf = celery_config(settings)
    conf.update(
        task_queues=[Queue(queue, Exchange(queue, type="direct", durable=True), routing_key=queue)],
        task_default_queue=queue,
        task_default_exchange=queue,
        task_default_routing_key=queue,
        task_routes={},
    )
    app.conf.update(conf)

    @app.task(name=NOOP, shared=False)
    def noop(*args: Any, **kwargs: Any) -> None:
        return None

    return app


app = make_bare_app(Settings())
