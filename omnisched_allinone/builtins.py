"""The built-in jobs: read from config/builtin_jobs.toml and seeded into the store once.

Seeding is idempotent and never overwrites: a marker per job records that it was seeded, so a
job the user paused, changed or deleted stays as the user left it across restarts.
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Any

from omnisched_allinone.core.errors import AlreadyExists
from omnisched_allinone.core.schedules import ScheduleSpec
from omnisched_allinone.service import JobDraft, JobService

log = logging.getLogger(__name__)


def load_builtin_drafts(path: Path) -> list[JobDraft]:
    with path.open("rb") as handle:
        data: dict[str, Any] = tomllib.load(handle)
    return [_draft(entry) for entry in data.get("jobs", [])]


def _draft(entry: dict[str, Any]) -> JobDraft:
    schedule = entry["schedule"]
    return JobDraft(
        name=entry["name"],
        job_type=entry["job_type"],
        schedule=ScheduleSpec(
            type=schedule["type"],
            config={k: str(v) for k, v in schedule.get("config", {}).items()},
            timezone=schedule.get("timezone", "UTC"),
        ),
        target_service=entry.get("target_service", ""),
        target_method=entry.get("target_method", ""),
        task_name=entry.get("task_name", ""),
        parameters=entry.get("parameters", {}),
        description=entry.get("description", ""),
        queue=entry.get("queue", ""),
        policies=entry.get("policies", {}),
        labels={"omnisched/built-in": "true", **entry.get("labels", {})},
        built_in=True,
    )


async def seed_builtin_jobs(service: JobService, drafts: list[JobDraft]) -> list[str]:
    """Create each built-in job not seeded before; returns the names created now."""
    created = []
    for draft in drafts:
        marker = f"seeded:{draft.name}"
        if await service.store.has_marker(marker):
            continue
        try:
            await service.create_job(draft)
            created.append(draft.name)
        except AlreadyExists:
            pass  # a job of that name exists (a user's, or a seeding that died before its marker)
        await service.store.set_marker(marker)
    if created:
        log.info("built-in jobs seeded: %s", ", ".join(created))
    return created
