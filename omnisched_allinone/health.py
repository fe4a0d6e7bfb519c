"""The health check job: RabbitMQ, Redis, MongoDB and every registered target, with latency."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from celery import Celery

from omnisched_allinone.core.errors import Unavailable
from omnisched_allinone.settings import Settings, mask_secrets
from omnisched_allinone.store.mongo import MongoStore
from omnisched_allinone.targets import TargetClient

CHECK_TIMEOUT_S = 3.0


def _up(began: float, detail: str = "") -> dict[str, Any]:
    return {
        "status": "up",
        "latency_ms": round((time.monotonic() - began) * 1000, 2),
        "detail": detail,
    }


def _down(began: float, error: BaseException | str) -> dict[str, Any]:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return {
        "status": "down",
        "latency_ms": round((time.monotonic() - began) * 1000, 2),
        "error": mask_secrets(text)[:500],
    }


async def check_broker(app: Celery, settings: Settings) -> dict[str, Any]:
    began = time.monotonic()
    if settings.uses_memory_broker:
        return _up(began, "in-memory")

    def connect() -> None:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_S)

    try:
        await asyncio.wait_for(asyncio.to_thread(connect), CHECK_TIMEOUT_S * 2)
        return _up(began)
    except Exception as error:
        return _down(began, error)


async def check_results(settings: Settings) -> dict[str, Any]:
    began = time.monotonic()
    url = settings.celery_result_backend
    if not url.startswith(("redis://", "rediss://")):
        return _up(began, "in-memory" if "memory" in url else url.split(":", 1)[0])
    from redis.asyncio import Redis

    client = Redis.from_url(
        url, socket_timeout=CHECK_TIMEOUT_S, socket_connect_timeout=CHECK_TIMEOUT_S
    )
    try:
        await client.ping()
        return _up(began)
    except Exception as error:
        return _down(began, error)
    finally:
        await client.aclose()


async def check_store(store: MongoStore, settings: Settings) -> dict[str, Any]:
    began = time.monotonic()
    try:
        await store.ping()
        return _up(began, "in-memory" if settings.uses_memory_store else "")
    except Unavailable as error:
        return _down(began, error.message)


async def check_all(
    app: Celery, settings: Settings, store: MongoStore, targets: TargetClient
) -> dict[str, Any]:
    """Every check at once; `healthy` is False when any of them is down."""
    names = sorted(settings.target_services)
    results = await asyncio.gather(
        check_broker(app, settings),
        check_results(settings),
        check_store(store, settings),
        *(targets.check_health(name, timeout_s=CHECK_TIMEOUT_S) for name in names),
    )
    checks: dict[str, Any] = dict(zip(("rabbitmq", "redis", "mongodb"), results[:3], strict=True))
    for name, answer in zip(names, results[3:], strict=True):
        serving = answer.get("status") == "SERVING"
        checks[name] = {
            "status": "up" if serving else "down",
            "latency_ms": answer.get("latency_ms"),
            **({"error": answer.get("error") or answer.get("status")} if not serving else {}),
        }
    down = sorted(name for name, check in checks.items() if check["status"] != "up")
    return {"healthy": not down, "down": down, "checks": checks}
