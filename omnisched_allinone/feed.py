"""The execution feed: every execution state change, in order, for watch streams.

Changes are read from the store's event log, so a watcher sees what workers in other processes (or
machines) recorded. The log's sequence numbers are dense; a gap means a writer took a number but
has not inserted its event yet, so the reader waits for it briefly instead of skipping past it
(and only gives up on it after `gap_timeout_s`, e.g. when that writer died).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from omnisched_allinone.core.executions import Execution
from omnisched_allinone.store.base import Store


class ExecutionFeed:
    def __init__(
        self,
        store: Store,
        *,
        poll_interval_s: float = 0.2,
        gap_timeout_s: float = 2.0,
        batch: int = 200,
    ) -> None:
        self._store = store
        self._poll_interval_s = poll_interval_s
        self._gap_timeout_s = gap_timeout_s
        self._batch = batch
        self._wakeups: set[asyncio.Event] = set()

    def notify(self) -> None:
        """Wake local watchers at once (called after this process recorded a change)."""
        for event in list(self._wakeups):
            event.set()

    async def follow(
        self,
        job_id: str | None = None,
        on_ready: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[Execution]:
        """Changes recorded from now on, for one job or all; runs until the caller stops.

        `on_ready` is awaited once the starting point is fixed: every change recorded after it
        returns will be delivered (a client can wait for it before it triggers a run).
        """
        cursor = await self._store.last_event_seq()
        if on_ready is not None:
            await on_ready()
        wakeup = asyncio.Event()
        self._wakeups.add(wakeup)
        gap_since: float | None = None
        try:
            while True:
                # Cleared before the read, not after: a change recorded while this reads (or
                # while the caller consumes what it yields) must wake the next wait, or the
                # watcher would sit out a whole poll interval (bench/latency.py found 200 ms).
                wakeup.clear()
                records = await self._store.events_after(cursor, None, self._batch)
                for record in records:
                    if record.seq != cursor + 1:
                        gap_since = gap_since or time.monotonic()
                        if time.monotonic() - gap_since < self._gap_timeout_s:
                            break
                    gap_since = None
                    cursor = record.seq
                    if job_id is None or record.execution.job_id == job_id:
                        yield record.execution
                else:
                    if len(records) == self._batch:
                        continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), self._poll_interval_s)
        finally:
            self._wakeups.discard(wakeup)
