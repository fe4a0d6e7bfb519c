"""What tasks, Beat and the API of one process share: settings, store, targets, dispatcher.

The all-in-one launcher installs the context it built for the API, so the worker threads and
Beat use the same store client on the same loop. A worker or beat run alone builds its own on
first use, on its own loop (after the fork, in a prefork child).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from omnisched_allinone.dispatch import CeleryDispatcher
from omnisched_allinone.service import JobService
from omnisched_allinone.settings import Settings
from omnisched_allinone.store.mongo import MongoStore
from omnisched_allinone.targets import TargetClient, TargetRegistry


@dataclass
class WorkerContext:
    settings: Settings
    store: MongoStore
    service: JobService
    targets: TargetClient
    dispatcher: CeleryDispatcher
    pid: int

    @classmethod
    def create(
        cls, settings: Settings, service: JobService, dispatcher: CeleryDispatcher
    ) -> WorkerContext:
        return cls(
            settings=settings,
            store=service.store,  # type: ignore[arg-type]
            service=service,
            targets=make_targets(settings),
            dispatcher=dispatcher,
            pid=os.getpid(),
        )

    async def close(self) -> None:
        await self.targets.close()


_context: WorkerContext | None = None
_building: asyncio.Lock | None = None


def install_context(context: WorkerContext | None) -> None:
    global _context
    _context = context


def current_context() -> WorkerContext | None:
    return _context if _context is not None and _context.pid == os.getpid() else None


def make_targets(settings: Settings) -> TargetClient:
    return TargetClient(
        TargetRegistry(settings.target_services),
        descriptor_set_path=settings.target_descriptor_set or None,
    )


async def get_context() -> WorkerContext:
    """The process's context, built from the environment's settings when none was installed."""
    global _building
    context = current_context()
    if context is not None:
        return context
    if _building is None:
        _building = asyncio.Lock()
    async with _building:
        context = current_context()
        if context is None:
            from omnisched_allinone.app import build_services, wait_for_store
            from omnisched_allinone.celery_app import celery_app

            settings = Settings()
            dispatcher = CeleryDispatcher(celery_app, settings)
            services = build_services(settings, dispatcher)
            await wait_for_store(services.store)
            context = WorkerContext.create(settings, services.service, dispatcher)
            install_context(context)
        return context
