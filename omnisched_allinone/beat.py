"""Celery Beat on the store: `celery -A omnisched_allinone.celery_app beat -S
omnisched_allinone.beat:StoreScheduler`, or a thread inside `omnisched run`.

`StoreScheduler` is a thin `celery.beat.Scheduler` shell: Celery's `Service` drives its `tick()`,
and each tick runs `RunScheduler.tick()` (scheduling.py) on the process loop through the runtime
bridge. Celery's own in-memory schedule is not used for dispatch (it compares the whole schedule
every tick and sends one entry per tick, DESIGN §10); code-defined `beat_schedule` entries are
synced into the store at start instead, where they become jobs like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from celery import Celery
from celery.beat import EmbeddedService, Scheduler
from celery.schedules import crontab
from celery.schedules import schedule as every_schedule

from omnisched_allinone import runtime
from omnisched_allinone.core.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from omnisched_allinone.core.jobs import DEFAULT_QUEUE, QUEUES, Job, JobType
from omnisched_allinone.core.schedules import ScheduleSpec
from omnisched_allinone.scheduling import LEASE_NAME, RunScheduler
from omnisched_allinone.service import Dispatcher, JobChanges, JobDraft, JobService
from omnisched_allinone.store.base import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

SOURCE_LABEL = "omnisched/source"
SOURCE_BEAT_SCHEDULE = "beat_schedule"
ENTRY_LABEL = "omnisched/beat-entry"
DIGEST_LABEL = "omnisched/beat-digest"
ARGS_PARAMETER = "_args"
CALL_TIMEOUT_S = 60.0  # a tick stuck on a hung store gives up and is retried


class BeatContext(Protocol):
    """What the beat needs from the process context (`context.WorkerContext` has these)."""

    @property
    def settings(self) -> Any: ...
    @property
    def store(self) -> Store: ...
    @property
    def dispatcher(self) -> Dispatcher: ...
    @property
    def service(self) -> JobService: ...


def owner_id() -> str:
    """Who holds the beat lease: readable in the store, unique even for two beats in one pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


# -- code-defined entries -------------------------------------------------------------------------


class EntryNotConvertible(ValueError):
    """A `beat_schedule` entry that has no job equivalent (a solar schedule, say)."""


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def entry_to_draft(name: str, entry: Mapping[str, Any], *, timezone: str = "UTC") -> JobDraft:
    """A `beat_schedule` entry as a built-in TASK job draft (validated later by `JobService`).

    crontab → cron expression in the app's time zone (Celery evaluates crontabs there); a
    `schedule`, timedelta or number → interval seconds; kwargs → parameters; positional args →
    parameters["_args"]. The draft carries a digest of what the code says, so a re-sync can tell
    "the code changed" from "the user changed the job".
    """
    if not isinstance(entry, Mapping):
        raise EntryNotConvertible("entry is not a dict")
    task = entry.get("task")
    if not isinstance(task, str) or not task:
        raise EntryNotConvertible("entry has no task name")
    spec = _schedule_spec(entry.get("schedule"), timezone)
    parameters: dict[str, Any] = dict(entry.get("kwargs") or {})
    args = list(entry.get("args") or ())
    if args:
        parameters[ARGS_PARAMETER] = args
    options = entry.get("options") or {}
    queue = options.get("queue") or DEFAULT_QUEUE[JobType.TASK]
    if queue not in QUEUES:
        log.warning(
            "beat_schedule entry names an unknown queue %r; using %r",
            queue,
            DEFAULT_QUEUE[JobType.TASK],
            extra={"entry": name},
        )
        queue = DEFAULT_QUEUE[JobType.TASK]
    digest = _digest(task, spec, parameters, queue)
    return JobDraft(
        name=name,
        job_type=JobType.TASK.value,
        schedule=spec,
        task_name=task,
        parameters=parameters,
        description=f"code-defined beat_schedule entry {name!r}",
        queue=queue,
        labels={SOURCE_LABEL: SOURCE_BEAT_SCHEDULE, ENTRY_LABEL: name, DIGEST_LABEL: digest},
        built_in=True,
    )


def _schedule_spec(value: Any, timezone: str) -> ScheduleSpec:
    if isinstance(value, crontab):
        fields = (
            value._orig_minute,
            value._orig_hour,
            value._orig_day_of_month,
            value._orig_month_of_year,
            value._orig_day_of_week,
        )
        expression = " ".join(_cron_field(f) for f in fields)
        return ScheduleSpec("cron", {"expression": expression}, timezone)
    if isinstance(value, every_schedule):
        value = value.run_every
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value <= 0 or value != int(value):
            raise EntryNotConvertible(f"interval of {value}s is not a whole number of seconds")
        return ScheduleSpec("interval", {"every": str(int(value)), "period": "seconds"}, "UTC")
    raise EntryNotConvertible(f"schedule of type {type(value).__name__} has no job equivalent")


def _cron_field(value: Any) -> str:
    if isinstance(value, set | frozenset | list | tuple | range):
        return ",".join(str(v) for v in sorted(value))
    return str(value).replace(" ", "")


def _digest(task: str, spec: ScheduleSpec, parameters: Mapping[str, Any], queue: str) -> str:
    text = json.dumps(
        [task, spec.type, dict(spec.config), spec.timezone, parameters, queue],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


async def sync_beat_schedule(
    service: JobService, entries: Mapping[str, Any], *, timezone: str = "UTC"
) -> SyncReport:
    """Make the store's `beat_schedule` jobs match the code's entries.

    Re-sync rule: a job whose code entry is unchanged (same digest) is left exactly as the user
    left it (paused, re-scheduled, re-labelled); when the code entry changed, the code's fields
    (task, schedule, parameters, queue) are written and the user's status, policies and
    description are kept. Only jobs labelled `omnisched/source=beat_schedule` are ever removed.
    """
    report = SyncReport()
    existing = await _synced_jobs(service)
    for name, entry in entries.items():
        try:
            draft = entry_to_draft(name, entry, timezone=timezone)
        except EntryNotConvertible as error:
            log.warning("beat_schedule entry skipped: %s", error, extra={"entry": name})
            report.skipped.append(name)
            continue
        job = existing.pop(name, None)
        try:
            if job is None:
                await service.create_job(draft)
                report.created.append(name)
            elif job.labels.get(DIGEST_LABEL) != draft.labels[DIGEST_LABEL]:
                await service.update_job(job.id, _changes(job, draft))
                report.updated.append(name)
        except (AlreadyExists, InvalidArgument, Conflict, NotFound) as error:
            log.warning("beat_schedule entry skipped: %s", error.message, extra={"entry": name})
            report.skipped.append(name)
    for name, job in existing.items():
        with contextlib.suppress(NotFound):  # another beat removed it first
            await service.delete_job(job.id)
        report.removed.append(name)
    if report.created or report.updated or report.removed:
        log.info(
            "beat_schedule entries synced",
            extra={
                "jobs_created": report.created,
                "jobs_updated": report.updated,
                "jobs_removed": report.removed,
            },
        )
    return report


async def _synced_jobs(service: JobService) -> dict[str, Job]:
    jobs: dict[str, Job] = {}
    token = ""
    while True:
        page, token = await service.list_jobs(
            label=f"{SOURCE_LABEL}={SOURCE_BEAT_SCHEDULE}", page_size=500, page_token=token
        )
        jobs.update((job.labels.get(ENTRY_LABEL, job.name), job) for job in page)
        if not token:
            return jobs


def _changes(job: Job, draft: JobDraft) -> JobChanges:
    return JobChanges(
        task_name=draft.task_name,
        schedule=draft.schedule,
        parameters=draft.parameters,
        queue=draft.queue,
        labels={**job.labels, **draft.labels},
        expected_version=job.version,
    )


# -- the Celery scheduler ---------------------------------------------------------------------------


class StoreScheduler(Scheduler):  # type: ignore[misc]
    """Celery Beat scheduler whose schedule is the store's `next_run_at` index.

    Built lazily from the process context (`context.get_context()`), so `celery beat -S` can
    construct it with Celery's usual arguments; tests pass `context`, `bridge` or `runner`.
    """

    def __init__(
        self,
        app: Celery,
        *args: Any,
        context: BeatContext | None = None,
        bridge: runtime.LoopBridge | None = None,
        runner: RunScheduler | None = None,
        **kwargs: Any,
    ) -> None:
        self.owner = owner_id()
        self._context = context
        self._bridge = bridge
        self._runner = runner
        self._entries_synced = False
        super().__init__(app, *args, **kwargs)  # calls setup_schedule() unless lazy

    def setup_schedule(self) -> None:
        """Sync code-defined entries into the store (instead of Celery's in-memory merge)."""
        try:
            self._call(self._sync_entries())
            self._entries_synced = True
        except Exception:
            log.exception("beat_schedule entries not synced; retrying at the next tick")

    def install_default_entries(self, data: Any) -> None:
        """No `celery.backend_cleanup`: results expire in Redis; our cleanup job prunes records."""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """One store-driven pass; returns the seconds Celery's Service sleeps before the next."""
        if not self._entries_synced:
            self.setup_schedule()
        try:
            return float(self._call(self._tick()))
        except Exception:
            log.exception("beat tick failed; retrying")
            return float(self.max_interval)

    def sync(self) -> None:
        """Nothing to persist: every tick's state is already in the store."""

    def should_sync(self) -> bool:
        return False

    def close(self) -> None:
        """Release the lease, so a standby beat takes over now rather than after `lease_s`."""
        try:
            if self._runner is not None:
                self._call(self._runner.close())
        except Exception:
            log.warning("beat lease not released; it expires on its own", exc_info=True)
        finally:
            super().close()

    @property
    def info(self) -> str:
        return f"    . store-driven scheduler, lease {LEASE_NAME!r}"

    # Helpers.
    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        bridge = self._bridge or runtime.bridge()
        return bridge.run(coro, timeout_s=CALL_TIMEOUT_S)

    async def _context_(self) -> BeatContext:
        if self._context is None:
            from omnisched_allinone.context import get_context  # the lead's module

            self._context = await get_context()
        return self._context

    async def _tick(self) -> float:
        return await (await self._runner_()).tick()

    async def _runner_(self) -> RunScheduler:
        if self._runner is None:
            context = await self._context_()
            self._runner = RunScheduler(
                context.store,
                context.dispatcher,
                owner=self.owner,
                lease_s=context.settings.beat_lease_s,
                max_interval_s=float(self.max_interval),
                batch_size=context.settings.beat_batch_size,
            )
        return self._runner

    async def _sync_entries(self) -> SyncReport:
        context = await self._context_()
        timezone = str(self.app.conf.timezone or "UTC")
        return await sync_beat_schedule(
            context.service, dict(self.app.conf.beat_schedule or {}), timezone=timezone
        )


# -- the all-in-one thread --------------------------------------------------------------------------


class BeatThread:
    """Handle on Celery's beat service running in a thread of this process."""

    def __init__(self, thread: Any) -> None:
        self._thread = thread

    @property
    def alive(self) -> bool:
        return bool(self._thread.is_alive())

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop ticking and wait for the thread, which releases the lease on its way out.

        From async code call `stop_async()`: the beat needs the loop to release its lease, so
        blocking the loop's own thread here would wait for itself (it then only signals).
        """
        self._thread.service.stop(wait=False)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._thread.join(timeout_s)
            return
        log.warning("BeatThread.stop() called from the event loop; not waiting (use stop_async)")

    async def stop_async(self, timeout_s: float = 10.0) -> None:
        await asyncio.to_thread(self.stop, timeout_s)


def start_beat_thread(
    app: Celery,
    *,
    context: BeatContext | None = None,
    bridge: runtime.LoopBridge | None = None,
    runner: RunScheduler | None = None,
) -> BeatThread:
    """Run beat in a thread of this process (the worker's `-B` forks a process; DESIGN §8)."""
    scheduler_cls: Any = StoreScheduler
    if context is not None or bridge is not None or runner is not None:
        scheduler_cls = functools.partial(
            StoreScheduler, context=context, bridge=bridge, runner=runner
        )
    thread = EmbeddedService(app, thread=True, scheduler_cls=scheduler_cls)
    assert isinstance(thread, threading.Thread)
    thread.start()
    log.info("beat started", extra={"thread_name": thread.name})
    return BeatThread(thread)
