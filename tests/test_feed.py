"""The execution feed wakes its watchers at once, even for a change recorded mid-delivery."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from omnisched_allinone.core.executions import (
    Execution,
    ExecutionStatus,
    Trigger,
    new_execution_id,
)
from omnisched_allinone.feed import ExecutionFeed
from omnisched_allinone.store.mongo import open_store


def _execution() -> Execution:
    execution_id = new_execution_id()
    return Execution(
        id=execution_id,
        job_id="job-feed",
        job_name="feed",
        trigger=Trigger.MANUAL,
        run_key=f"job-feed/{execution_id}",
        status=ExecutionStatus.PENDING,
        queue="manual",
        queued_at=datetime.now(UTC),
    )


async def test_a_change_recorded_while_the_watcher_handles_the_last_one_wakes_it_at_once():
    # Given a watcher whose feed would otherwise re-read only every 5 s
    store = open_store("memory://", "feed")
    await store.start()
    feed = ExecutionFeed(store, poll_interval_s=5.0)
    store.change_listeners.append(feed.notify)
    follow = feed.follow()
    first = asyncio.ensure_future(anext(follow))
    await asyncio.sleep(0.05)  # the follower has read the log's end and waits
    await store.insert_execution(_execution())
    assert (await asyncio.wait_for(first, 1.0)).job_id == "job-feed"

    # When a change is recorded while the watcher still handles the previous one
    second = _execution()
    await store.insert_execution(second)

    # Then the watcher gets it without sitting out the poll interval (bench/latency.py: the
    # wake-up was lost and every watched run took 200 ms longer than it ran)
    assert (await asyncio.wait_for(anext(follow), 1.0)).id == second.id
    await follow.aclose()
    await store.close()
