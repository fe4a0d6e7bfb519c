"""Code-defined `beat_schedule` entries become built-in TASK jobs in the store (seed: "Task
Development"), visible and pausable like the rest, and leave when they leave the code."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from celery.schedules import crontab, schedule, solar

from omnisched_allinone.beat import (
    ARGS_PARAMETER,
    DIGEST_LABEL,
    SOURCE_LABEL,
    EntryNotConvertible,
    entry_to_draft,
    sync_beat_schedule,
)
from omnisched_allinone.core.jobs import JobStatus, JobType
from omnisched_allinone.core.schedules import ScheduleSpec
from omnisched_allinone.service import JobService
from tests.beat.conftest import CreateJob

SEED_ENTRY = {
    "task": "app.tasks.my_custom_task",
    "schedule": crontab(hour=14, minute=30),
    "args": ("param_value", 42),
    "options": {"queue": "custom"},
}


async def synced(service: JobService) -> dict:
    jobs, _ = await service.list_jobs(label=f"{SOURCE_LABEL}=beat_schedule", page_size=500)
    return {job.name: job for job in jobs}


async def test_the_seed_entry_becomes_a_built_in_task_job(service: JobService, caplog) -> None:
    caplog.set_level(logging.WARNING, "omnisched_allinone.beat")

    report = await sync_beat_schedule(service, {"my-custom-schedule": SEED_ENTRY})

    job = (await synced(service))["my-custom-schedule"]
    assert report.created == ["my-custom-schedule"]
    assert job.job_type is JobType.TASK and job.built_in
    assert job.task_name == "app.tasks.my_custom_task"
    assert job.schedule == ScheduleSpec("cron", {"expression": "30 14 * * *"}, "UTC")
    assert job.parameters == {ARGS_PARAMETER: ["param_value", 42]}
    assert job.queue == "default_queue"
    assert job.labels[SOURCE_LABEL] == "beat_schedule"
    assert job.next_run_at is not None and job.status is JobStatus.ACTIVE
    assert "unknown queue 'custom'" in caplog.text


@pytest.mark.parametrize(
    ("entry_schedule", "config"),
    [
        (timedelta(minutes=5), {"every": "300", "period": "seconds"}),
        (schedule(timedelta(seconds=30)), {"every": "30", "period": "seconds"}),
        (45, {"every": "45", "period": "seconds"}),
        (90.0, {"every": "90", "period": "seconds"}),
    ],
)
def test_intervals_convert_to_interval_seconds(entry_schedule, config) -> None:
    draft = entry_to_draft("e", {"task": "t.x", "schedule": entry_schedule})
    assert draft.schedule == ScheduleSpec("interval", config, "UTC")


@pytest.mark.parametrize(
    ("cron", "expression"),
    [
        (crontab(), "* * * * *"),
        (crontab(minute="*/15", day_of_week="mon-fri"), "*/15 * * * mon-fri"),
        (crontab(minute=0, hour={3, 15}), "0 3,15 * * *"),
        (crontab(minute=0, hour=4, day_of_month="1", month_of_year="*/3"), "0 4 1 */3 *"),
    ],
)
def test_crontabs_convert_to_cron_expressions(cron, expression) -> None:
    draft = entry_to_draft("e", {"task": "t.x", "schedule": cron}, timezone="Europe/Berlin")
    assert draft.schedule == ScheduleSpec("cron", {"expression": expression}, "Europe/Berlin")


def test_kwargs_become_parameters_and_args_go_under_their_key() -> None:
    draft = entry_to_draft(
        "e", {"task": "t.x", "schedule": 60, "args": [1], "kwargs": {"depth": 2}}
    )
    assert draft.parameters == {"depth": 2, ARGS_PARAMETER: [1]}
    assert draft.queue == "default_queue"


@pytest.mark.parametrize(
    "entry",
    [
        {"task": "t.x", "schedule": object.__new__(solar)},
        {"task": "t.x", "schedule": 0.5},
        {"schedule": 60},
        "not a dict",
    ],
)
def test_entries_without_a_job_equivalent_are_refused(entry) -> None:
    with pytest.raises(EntryNotConvertible):
        entry_to_draft("e", entry)


async def test_unconvertible_or_invalid_entries_are_skipped_with_a_warning(
    service: JobService, caplog
) -> None:
    caplog.set_level(logging.WARNING, "omnisched_allinone.beat")
    entries = {
        "sunrise": {"task": "t.x", "schedule": object.__new__(solar)},
        "bad-task": {"task": "not a task name!", "schedule": 60},  # JobService's validation
        "good": {"task": "t.ok", "schedule": 60},
    }

    report = await sync_beat_schedule(service, entries)

    assert report.created == ["good"]
    assert sorted(report.skipped) == ["bad-task", "sunrise"]
    assert set(await synced(service)) == {"good"}
    assert caplog.text.count("beat_schedule entry skipped") == 2


async def test_an_entry_removed_from_code_is_removed_from_the_store_and_nothing_else(
    service: JobService, create_job: CreateJob
) -> None:
    user_job = await create_job("* * * * *", name="users-own")
    await sync_beat_schedule(service, {"a": SEED_ENTRY, "b": {"task": "t.b", "schedule": 60}})

    report = await sync_beat_schedule(service, {"a": SEED_ENTRY})

    assert report.removed == ["b"]
    assert set(await synced(service)) == {"a"}
    assert (await service.get_job(user_job.id)).name == "users-own"


async def test_a_users_pause_survives_a_resync_of_an_unchanged_entry(service: JobService) -> None:
    await sync_beat_schedule(service, {"a": SEED_ENTRY})
    job = (await synced(service))["a"]
    paused = await service.pause_job(job.id, "maintenance window")

    report = await sync_beat_schedule(service, {"a": SEED_ENTRY})

    after = await service.get_job(job.id)
    assert (report.created, report.updated) == ([], [])
    assert after.status is JobStatus.PAUSED and after.version == paused.version


async def test_a_changed_code_entry_updates_the_job_and_keeps_the_users_pause(
    service: JobService,
) -> None:
    await sync_beat_schedule(service, {"a": SEED_ENTRY})
    job = (await synced(service))["a"]
    await service.pause_job(job.id)

    changed = {**SEED_ENTRY, "schedule": crontab(hour=15, minute=0), "kwargs": {"k": "v"}}
    report = await sync_beat_schedule(service, {"a": changed})

    after = await service.get_job(job.id)
    assert report.updated == ["a"]
    assert after.schedule.config == {"expression": "0 15 * * *"}
    assert after.parameters == {"k": "v", ARGS_PARAMETER: ["param_value", 42]}
    assert after.status is JobStatus.PAUSED
    assert after.labels[DIGEST_LABEL] != job.labels[DIGEST_LABEL]


async def test_an_entry_named_like_a_users_job_does_not_touch_it(
    service: JobService, create_job: CreateJob
) -> None:
    user_job = await create_job("* * * * *", name="nightly")

    report = await sync_beat_schedule(service, {"nightly": SEED_ENTRY})

    assert report.skipped == ["nightly"]
    assert (await service.get_job(user_job.id)).job_type is JobType.MONITORING


async def test_synced_jobs_go_through_the_services_validation(store, clock) -> None:
    from omnisched_allinone.core.policies import JobPolicies
    from omnisched_allinone.service import ServiceLimits

    registered = {"t.known"}
    service = JobService(
        store,
        target_names=[],
        default_policies=JobPolicies(),
        limits=ServiceLimits(),
        task_exists=registered.__contains__,
        clock=clock,
    )

    report = await sync_beat_schedule(
        service,
        {
            "known": {"task": "t.known", "schedule": 60},
            "unknown": {"task": "t.nope", "schedule": 60},
        },
    )

    assert (report.created, report.skipped) == (["known"], ["unknown"])
