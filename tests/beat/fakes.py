"""Test doubles for the beat specs: a recording dispatcher, a settable clock, store wrappers."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from omnisched_allinone.core.errors import Unavailable
from omnisched_allinone.core.executions import Execution, ExecutionStatus
from omnisched_allinone.core.jobs import Job
from omnisched_allinone.store.base import Store


class Clock:
    """A clock the test moves by hand; every scheduler and the JobService read it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def set(self, now: datetime) -> datetime:
        self.now = now
        return now


@dataclass(frozen=True)
class Published:
    execution_id: str
    job_id: str
    run_key: str
    fire_time: datetime | None
    countdown_s: float
    at: datetime


class FakeDispatcher:
    """Records every publish; can be told to fail (`Unavailable`, or any error: a dying beat).

    With `finish_in`, a published run is marked SUCCESS at once (an instant worker), so the
    default overlap policy SKIP does not see it as still running.
    """

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.published: list[Published] = []
        self.failures: list[BaseException] = []
        self.fail_always: BaseException | None = None
        self.finish_in: Store | None = None
        self.before_publish: Callable[[Execution, Job], Awaitable[None]] | None = None
        self.clock = clock or (lambda: datetime.now(UTC))

    def fail_next(self, error: BaseException | None = None, times: int = 1) -> None:
        self.failures += [error or Unavailable("broker did not confirm")] * times

    async def publish(self, execution: Execution, job: Job, *, countdown_s: float = 0.0) -> str:
        await asyncio.sleep(0)
        if self.before_publish is not None:
            await self.before_publish(execution, job)
        if self.fail_always is not None:
            raise self.fail_always
        if self.failures:
            raise self.failures.pop(0)
        self.published.append(
            Published(
                execution.id,
                job.id,
                execution.run_key,
                execution.scheduled_for,
                countdown_s,
                self.clock(),
            )
        )
        if self.finish_in is not None:
            await self.finish_in.update_execution(
                execution.id, {"status": ExecutionStatus.SUCCESS, "finished_at": self.clock()}
            )
        return f"task-{execution.id}"

    def run_keys(self) -> Counter[str]:
        return Counter(p.run_key for p in self.published)

    def fire_times(self, job_id: str) -> list[datetime]:
        return sorted(p.fire_time for p in self.published if p.job_id == job_id and p.fire_time)


class StoreProxy:
    """Delegates to a real store; subclasses watch or perturb individual calls."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            await self.before(name, args, kwargs)
            return await attr(*args, **kwargs)

        return call

    async def before(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        return None


class CountingStore(StoreProxy):
    """Counts the store calls a scheduler makes."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.calls: Counter[str] = Counter()

    async def before(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.calls[name] += 1


class ShufflingStore(StoreProxy):
    """Yields to the loop a random number of times before each call: concurrent schedulers on
    one loop then interleave at every store operation, in a seeded, reproducible order."""

    def __init__(self, inner: Store, rng: random.Random) -> None:
        super().__init__(inner)
        self.rng = rng

    async def before(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        for _ in range(self.rng.randrange(4)):
            await asyncio.sleep(0)


@dataclass
class HookStore(StoreProxy):
    """Runs `hooks[name]` (once each, popped) right before that store call."""

    inner: Store
    hooks: dict[str, Callable[[], Awaitable[None]]] = field(default_factory=dict)
    raise_on: dict[str, BaseException] = field(default_factory=dict)

    async def before(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        hook = self.hooks.pop(name, None)
        if hook is not None:
            await hook()
        error = self.raise_on.pop(name, None)
        if error is not None:
            raise error
