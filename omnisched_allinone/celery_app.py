"""The Celery application: `celery -A omnisched_allinone.celery_app inspect ping` finds it here.

Configured from `Settings` (the seed's "Performance Tuning" values are the defaults), with the
reliability settings DESIGN §4.2 asks for: publisher confirms, durable queues, persistent messages,
late acks, requeue on worker loss, prefetch 1.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
from collections.abc import Sequence
from typing import Any

from celery import Celery, Task
from kombu import Exchange, Queue

from omnisched_allinone import runtime
from omnisched_allinone.core.jobs import QUEUES
from omnisched_allinone.settings import Settings

DEFAULT_QUEUE = "default_queue"
TASK_MODULES = ["omnisched_allinone.tasks"]

# The Celery request of the task whose coroutine is running, per asyncio task. Celery keeps
# requests in a thread-local stack, but coroutines run on the loop's thread, not the worker's.
_current_request: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "omnisched_celery_request", default=None
)


class AsyncTask(Task):  # type: ignore[misc]
    """Base for `async def` tasks: runs the coroutine on the process's one loop.

    Celery has no asyncio support (an `async def` task fails with "coroutine is not JSON
    serializable"); calling `asyncio.run` per task breaks clients shared across tasks ("Event loop
    is closed"). This base hands the coroutine to the process loop through the runtime bridge and
    keeps `self.request` (and so `self.retry`) meaning this task's request inside the coroutine.
    """

    abstract = True

    @property
    def request(self) -> Any:  # type: ignore[override]
        current = _current_request.get()
        return current if current is not None else self._get_request()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = super().__call__(*args, **kwargs)
        if not inspect.isawaitable(result):
            return result
        return runtime.bridge().run(_with_request(self._get_request(), result))


async def _with_request(request: Any, awaitable: Any) -> Any:
    _current_request.set(request)
    return await awaitable


def celery_config(settings: Settings) -> dict[str, Any]:
    queues = [
        Queue(name, Exchange(name, type="direct", durable=True), routing_key=name, durable=True)
        for name in QUEUES
    ]
    broker = settings.celery_broker_url
    amqp = broker.startswith(("amqp://", "amqps://", "pyamqp://"))
    memory = broker.startswith("memory://")
    if broker == "memory://":
        broker = "memory://localhost//"  # kombu warns about a missing host otherwise
    transport_options: dict[str, Any] = {}
    if amqp:
        transport_options = {"confirm_publish": True}
    elif memory:
        transport_options = {"polling_interval": 0.05}  # the in-process queue is polled
    return {
        "broker_url": broker,
        "result_backend": settings.celery_result_backend,
        "result_expires": settings.result_expires_s,
        "result_extended": True,
        "task_queues": queues,
        "task_default_queue": DEFAULT_QUEUE,
        "task_default_exchange": DEFAULT_QUEUE,
        "task_default_routing_key": DEFAULT_QUEUE,
        "task_create_missing_queues": False,
        "task_routes": {
            "scrape_competitor_prices": {"queue": "scraping"},
            "comprehensive_price_analysis": {"queue": "analysis"},
            "health_check_services": {"queue": "monitoring"},
            "cleanup_old_execution_records": {"queue": "maintenance"},
        },
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_default_delivery_mode": "persistent",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        # No STARTED write to the result backend before the body: with Redis down, Celery
        # fails that write "outside the body", acks the message and never runs the task (a
        # lost run, tests/faults/test_brokers.py). Run state lives in MongoDB (DESIGN §10).
        "task_track_started": False,
        "task_time_limit": settings.task_time_limit_s,
        "task_soft_time_limit": settings.task_soft_time_limit_s,
        "worker_prefetch_multiplier": settings.worker_prefetch_multiplier,
        # After a broker reconnect Celery lowers the prefetch count and restores it on acks; with
        # RabbitMQ's per-consumer QoS the restore never reaches the running consumer and the
        # worker stays throttled (celery#9512). Prefetch is small here anyway (1 x concurrency).
        "worker_enable_prefetch_count_reduction": False,
        "worker_max_tasks_per_child": settings.worker_max_tasks_per_child,
        "worker_concurrency": settings.worker_concurrency,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "worker_hijack_root_logger": False,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": transport_options,
        "broker_pool_limit": 10,
        "timezone": "UTC",
        "enable_utc": True,
        "beat_max_loop_interval": settings.beat_max_interval_s,
    }


def create_celery_app(settings: Settings) -> Celery:
    app = Celery("omnisched", include=TASK_MODULES)
    app.conf.update(celery_config(settings))
    app.conf.beat_schedule = {}
    return app


def configure_celery_app(
    app: Celery, settings: Settings, extra_modules: Sequence[str] = ()
) -> None:
    """Point the app at the services of `settings` (the launcher's --dev, say).

    Must run before the app first connects: Celery builds its connection pools and result
    backend lazily from the configuration it has then.
    """
    app.conf.update(celery_config(settings))
    _forget_connections(app)
    for module in extra_modules:
        if module not in app.conf.include:
            app.conf.include = [*app.conf.include, module]
    app.loader.import_default_modules()


def _forget_connections(app: Celery) -> None:
    """Drop pools and the result backend made from an earlier configuration.

    Celery builds them lazily and keeps them; after a reconfiguration (tests, the launcher's
    --dev) they would still talk to the old broker. Celery's own after-fork reset does the same.
    """
    app._after_fork()  # kombu's pool registry keeps the pools themselves, keyed by URL
    app._backend_cache = None
    app._local = threading.local()


celery_app: Celery = create_celery_app(Settings())
app = celery_app  # `celery -A omnisched_allinone.celery_app` looks for `app` or `celery`
