"""The whole service in a thread of the test process, on its own loop, for end-to-end tests.

A real gRPC API on loopback (a free port), a real Celery worker (threads pool) on the real
RabbitMQ and Redis (or the in-memory fallbacks), the in-memory store unless the settings say
otherwise; no built-in jobs.
"""

from __future__ import annotations

import uuid
from typing import Any

from omnisched_allinone.app import LaunchOptions, Part
from omnisched_allinone.embedded import ServiceThread
from omnisched_allinone.settings import Settings


class AppThread(ServiceThread):
    def __init__(
        self, settings: Settings, parts: tuple[Part, ...] = (Part.GRPC, Part.WORKER), **options: Any
    ) -> None:
        super().__init__(
            settings.model_copy(
                update={
                    "grpc_host": "127.0.0.1",
                    "grpc_port": 0,
                    "seed_builtin_jobs": False,
                    "shutdown_grace_s": 5.0,
                }
            ),
            # A node name of its own: another worker on this machine (a parallel run, a
            # leftover) holds the default name's exclusive pidbox queue.
            LaunchOptions(
                parts=parts,
                **{"worker_hostname": f"test-{uuid.uuid4().hex[:8]}@localhost", **options},
            ),
        )
