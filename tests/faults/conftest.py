"""Fixtures of the fault suite, and the table it prints at the end of the session.

Each fault test records one row per fault it injected (`fault_table.record(...)`); the
`pytest_terminal_summary` hook prints them: fault, runs, lost, duplicates, missed, recovery time.
RabbitMQ and Redis are restored by each test's own `finally`, and checked again at session end.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import need_service
from tests.faults import harness
from tests.faults.ledger import LedgerReport


@dataclass(frozen=True)
class FaultRow:
    fault: str
    runs: int
    lost: int
    duplicates: int
    missed: int
    recovery_s: float | None
    note: str = ""


ROWS: list[FaultRow] = []


class FaultTable:
    def record(
        self, fault: str, report: LedgerReport, recovery_s: float | None = None, note: str = ""
    ) -> None:
        if report.recorded_missed:
            note = f"{note}; {report.recorded_missed} recorded MISSED".lstrip("; ")
        ROWS.append(
            FaultRow(
                fault,
                report.runs,
                len(report.lost),
                len(report.duplicates),
                len(report.missed),
                recovery_s,
                note,
            )
        )


@pytest.fixture
def fault_table() -> FaultTable:
    return FaultTable()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not ROWS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault table")
    header = (
        f"{'fault':<50} {'runs':>5} {'lost':>5} {'dups':>5} {'missed':>6} {'recovery':>9}  note"
    )
    write(header)
    write("-" * len(header))
    for row in ROWS:
        recovery = f"{row.recovery_s:.1f}s" if row.recovery_s is not None else "-"
        write(
            f"{row.fault:<50} {row.runs:>5} {row.lost:>5} {row.duplicates:>5} "
            f"{row.missed:>6} {recovery:>9}  {row.note}"
        )


@pytest.fixture(scope="session")
def fault_services() -> Iterator[None]:
    """RabbitMQ (with the faults vhost) and Redis answer now, and still answer at the end."""
    need_service("RabbitMQ", "127.0.0.1", harness.RABBITMQ_PORT)
    need_service("Redis", "127.0.0.1", harness.REDIS_PORT)
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed")
    harness.ensure_vhost()
    yield
    if not harness.rabbitmq_app_running():
        harness.rabbitmq_start_app()
    if not harness.answers(harness.REDIS_PORT):
        harness.redis_start()
    assert harness.rabbitmq_app_running() and harness.answers(harness.REDIS_PORT)


@pytest.fixture
def client_app(fault_services):
    """The test process's Celery app, on the faults vhost (control pings, result reads)."""
    from omnisched_allinone.celery_app import celery_app, configure_celery_app
    from omnisched_allinone.settings import Settings

    configure_celery_app(
        celery_app,
        Settings(CELERY_BROKER_URL=harness.BROKER, CELERY_RESULT_BACKEND=harness.RESULTS),
    )
    return celery_app


def pytest_collection_modifyitems(config, items) -> None:
    """`@pytest.mark.faults` tests run with `make faults` (`-m faults`) or OMNISCHED_FAULTS=1;
    the default `python -m pytest -q` leaves them out to stay within its time budget."""
    if (
        "faults" in (config.getoption("markexpr") or "")
        or os.environ.get("OMNISCHED_FAULTS") == "1"
    ):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("faults") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
