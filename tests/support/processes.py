"""The environment of an omnisched part started as a separate process by a test."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def process_env(
    mongo_url: str, database: str, broker: str, results: str, **extra: str
) -> dict[str, str]:
    """This environment plus the services the part should use; no built-in jobs."""
    return {
        **os.environ,
        "MONGODB_URL": mongo_url,
        "OMNISCHED_MONGODB_DATABASE": database,
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": results,
        "OMNISCHED_SEED_BUILTIN_JOBS": "false",
        "PYTHONPATH": str(ROOT),
        **extra,
    }
