"""The Celery face: `StoreScheduler` ticks the store through the process loop's bridge, and
`start_beat_thread` runs Celery's beat service in a thread (DESIGN §8)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from celery import Celery
from kombu.utils.imports import symbol_by_name

from omnisched_allinone.beat import SOURCE_LABEL, StoreScheduler, start_beat_thread
from omnisched_allinone.core.errors import Unavailable
from omnisched_allinone.core.policies import JobPolicies
from omnisched_allinone.core.schedules import ScheduleSpec
from omnisched_allinone.runtime import LoopBridge
from omnisched_allinone.scheduling import LEASE_NAME
from omnisched_allinone.service import JobDraft, JobService, ServiceLimits
from omnisched_allinone.settings import Settings
from omnisched_allinone.store.mongo import MongoStore, open_store
from tests.beat.fakes import FakeDispatcher, HookStore

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@dataclass
class Context:
    settings: Settings
    store: Any
    dispatcher: FakeDispatcher
    service: JobService


async def _context(wrap: Any = None) -> Context:
    store: MongoStore = open_store("memory://", f"test-{uuid.uuid4().hex[:12]}")
    await store.start()
    service = JobService(
        store, target_names=[], default_policies=JobPolicies(), limits=ServiceLimits()
    )
    return Context(
        settings=Settings(beat_lease_s=5.0, beat_batch_size=100),
        store=wrap(store) if wrap else store,
        dispatcher=FakeDispatcher(),
        service=service,
    )


@pytest.fixture
def bridge():
    running = LoopBridge.in_thread()
    yield running
    running.close()


def beat_app(entries: dict[str, Any] | None = None) -> Celery:
    app = Celery(f"beat-test-{uuid.uuid4().hex[:6]}", set_as_current=False)
    app.conf.beat_schedule = entries or {}
    return app


def test_celery_beat_finds_the_scheduler_by_its_dotted_name() -> None:
    assert symbol_by_name("omnisched_allinone.beat:StoreScheduler") is StoreScheduler


def test_a_lazy_scheduler_does_no_io() -> None:
    scheduler = StoreScheduler(beat_app(), lazy=True)  # no context: would fail if it tried
    assert "store-driven" in scheduler.info


def test_store_scheduler_ticks_through_a_real_loop_bridge(bridge: LoopBridge) -> None:
    with time_machine.travel(START, tick=False) as traveller:
        # Given a context on the bridge's loop and a code-defined entry.
        context = bridge.run(_context())
        app = beat_app({"every-minute": {"task": "t.minutely", "schedule": 60}})

        # When Celery would build the scheduler (setup_schedule syncs the entry) and tick it.
        scheduler = StoreScheduler(app, context=context, bridge=bridge, max_interval=1)
        jobs, _ = bridge.run(context.service.list_jobs(label=f"{SOURCE_LABEL}=beat_schedule"))
        traveller.shift(60)
        sleep_s = scheduler.tick()

        # Then the synced job was dispatched once, and the sleep respects the max interval.
        assert [job.name for job in jobs] == ["every-minute"]
        assert [p.job_id for p in context.dispatcher.published] == [jobs[0].id]
        assert 0 <= sleep_s <= 1

        # And close() released the lease for the next beat.
        scheduler.close()
        other = bridge.run(context.store.acquire_lease(LEASE_NAME, "other", datetime.now(UTC), 5.0))
        assert other


def test_a_failing_tick_is_logged_and_retried_not_raised(bridge: LoopBridge, caplog) -> None:
    context = bridge.run(
        _context(lambda s: HookStore(s, raise_on={"acquire_lease": Unavailable("store down")}))
    )
    scheduler = StoreScheduler(beat_app(), context=context, bridge=bridge, max_interval=1)

    assert scheduler.tick() == 1
    assert "beat tick failed" in caplog.text
    assert scheduler.tick() <= 1  # the store is back


def test_start_beat_thread_runs_celerys_beat_service_in_a_thread(bridge: LoopBridge) -> None:
    # Given a job firing every second (real time: this is the threaded service itself).
    context = bridge.run(_context())
    bridge.run(
        context.service.create_job(
            JobDraft(
                name="every-second",
                job_type="MONITORING",
                schedule=ScheduleSpec("interval", {"every": "1", "period": "seconds"}),
                policies={"overlap": "ALLOW"},
            )
        )
    )

    # When beat runs in its thread until it dispatched a few runs, then stops.
    handle = start_beat_thread(beat_app(), context=context, bridge=bridge)
    deadline = time.monotonic() + 15
    while len(context.dispatcher.published) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    handle.stop()

    # Then it dispatched each fire time once, stopped, and released its lease.
    assert len(context.dispatcher.published) >= 2
    assert set(context.dispatcher.run_keys().values()) == {1}
    assert not handle.alive
    assert bridge.run(context.store.acquire_lease(LEASE_NAME, "next", datetime.now(UTC), 5.0))
