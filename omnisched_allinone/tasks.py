"""The Celery tasks, under the seed's names, and `run_job`, the runner of every job.

`run_job(execution_id)` is what the API and Beat publish. The seed's tasks can also be sent
directly (from code-defined beat entries, or `celery call`): they do the same work as the job
types that name them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Task

from omnisched_allinone.celery_app import AsyncTask, celery_app
from omnisched_allinone.context import WorkerContext, get_context
from omnisched_allinone.core.executions import Execution
from omnisched_allinone.core.jobs import Job, JobType
from omnisched_allinone.engine import Delivery, JobFailed, JobRunner, call_target, run_callable
from omnisched_allinone.health import check_all

log = logging.getLogger(__name__)

SCRAPER = ("scraper-service", "ScrapeCompetitorPrices")
PRICING = ("pricing-service", "AnalyzePrices")


# The work of each job type.
def _metadata(job: Job, execution: Execution) -> list[tuple[str, str]]:
    return [("omnisched-job-id", job.id), ("omnisched-execution-id", execution.id)]


def work_for_types(context: WorkerContext) -> dict[JobType, Any]:
    async def target(job: Job, execution: Execution, deadline_s: float) -> Any:
        return await call_target(
            context.targets,
            job.target_service,
            job.target_method,
            execution.parameters,
            deadline_s,
            _metadata(job, execution),
        )

    async def monitoring(job: Job, execution: Execution, deadline_s: float) -> Any:
        return await health_report(context)

    async def maintenance(job: Job, execution: Execution, deadline_s: float) -> Any:
        return await cleanup(context, execution.parameters.get("retention_days"))

    async def task(job: Job, execution: Execution, deadline_s: float) -> Any:
        registered = celery_app.tasks.get(job.task_name)
        if registered is None:
            raise JobFailed(
                f"no registered task named {job.task_name!r} (load its module with --tasks)",
                transient=False,
                error_type="TaskNotRegistered",
            )
        return await run_callable(registered.run, execution.parameters)

    return {
        JobType.SCRAPING: target,
        JobType.ANALYSIS: target,
        JobType.MANUAL: target,
        JobType.GRPC: target,
        JobType.MONITORING: monitoring,
        JobType.MAINTENANCE: maintenance,
        JobType.TASK: task,
    }


async def health_report(context: WorkerContext) -> dict[str, Any]:
    report = await check_all(celery_app, context.settings, context.store, context.targets)
    if not report["healthy"]:
        raise JobFailed(
            f"unhealthy: {', '.join(report['down'])}",
            transient=False,
            error_type="Unhealthy",
            result=report,
        )
    return report


async def cleanup(context: WorkerContext, retention_days: Any = None) -> dict[str, Any]:
    days = int(retention_days or context.settings.execution_retention_days)
    cutoff = datetime.now(UTC) - timedelta(days=days)
    deleted = await context.store.delete_executions_before(cutoff)
    log.info("old executions deleted", extra={"deleted": deleted, "retention_days": days})
    return {"deleted": deleted, "retention_days": days, "cutoff": cutoff.isoformat()}


def make_runner(context: WorkerContext) -> JobRunner:
    return JobRunner(
        context.store,
        context.targets,
        max_redeliveries=context.settings.max_redeliveries,
        work_for_type=work_for_types(context),
    )


# The tasks.
@celery_app.task(bind=True, base=AsyncTask, name="run_job", acks_late=True, max_retries=None)
async def run_job(self: Task, execution_id: str) -> dict[str, Any]:
    """Run one recorded execution of a job (DESIGN §5)."""
    context = await get_context()
    request = self.request
    delivery = Delivery(
        task_id=str(request.id or execution_id),
        worker=str(request.hostname or ""),
        redelivered=bool((request.delivery_info or {}).get("redelivered")),
    )
    outcome = await make_runner(context).run(execution_id, delivery)
    if outcome.retry_in_s is not None:
        raise self.retry(countdown=outcome.retry_in_s, max_retries=None)
    return outcome.summary()


async def _direct_target_call(
    self: Task, target: tuple[str, str], parameters: Mapping[str, Any]
) -> dict[str, Any]:
    context = await get_context()
    limit = float(context.settings.task_soft_time_limit_s)
    metadata = [("omnisched-task-id", str(self.request.id or ""))]
    return await call_target(context.targets, *target, parameters, limit, metadata)


@celery_app.task(bind=True, base=AsyncTask, name="scrape_competitor_prices")
async def scrape_competitor_prices(self: Task, **parameters: Any) -> dict[str, Any]:
    """Scrape competitor prices through scraper-service (ScrapeCompetitorPrices)."""
    return await _direct_target_call(self, SCRAPER, parameters)


@celery_app.task(bind=True, base=AsyncTask, name="comprehensive_price_analysis")
async def comprehensive_price_analysis(self: Task, **parameters: Any) -> dict[str, Any]:
    """Analyse prices of the given competitors through pricing-service (AnalyzePrices)."""
    return await _direct_target_call(self, PRICING, parameters)


@celery_app.task(bind=True, base=AsyncTask, name="health_check_services")
async def health_check_services(self: Task) -> dict[str, Any]:
    """Check RabbitMQ, Redis, MongoDB and every registered target."""
    return await check_all(celery_app, *(await _health_parts()))


async def _health_parts() -> tuple[Any, ...]:
    context = await get_context()
    return context.settings, context.store, context.targets


@celery_app.task(bind=True, base=AsyncTask, name="cleanup_old_execution_records")
async def cleanup_old_execution_records(
    self: Task, retention_days: int | None = None
) -> dict[str, Any]:
    """Delete execution records older than the retention (default from settings: 30 days)."""
    return await cleanup(await get_context(), retention_days)


@celery_app.task(bind=True, base=AsyncTask, name="call_target_service")
async def call_target_service(
    self: Task, target_service: str, target_method: str, **parameters: Any
) -> dict[str, Any]:
    """Call any method of a registered target service (the generic GRPC/MANUAL job task)."""
    return await _direct_target_call(self, (target_service, target_method), parameters)
