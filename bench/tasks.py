"""The no-op task of the benchmarks, loaded into omnisched with `--tasks bench.tasks`.

A TASK job naming `bench_noop` is the leanest true path through `run_job`: the execution is
loaded, claimed, the coroutine is awaited on the process loop (no thread hop, no target call),
and the outcome recorded, exactly as for any job.
"""

from __future__ import annotations

from typing import Any

from omnisched_allinone.celery_app import AsyncTask, celery_app

NOOP_TASK = "bench_noop"


@celery_app.task(bind=True, base=AsyncTask, name=NOOP_TASK)
async def bench_noop(self: Any, **parameters: Any) -> None:
    """Does nothing: what is measured is everything around it."""
    return None
