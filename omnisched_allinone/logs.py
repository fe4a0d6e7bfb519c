"""One log format for our code, Celery and gRPC; secrets masked on the way out."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from typing import Any

from omnisched_allinone.settings import add_masked_values, mask_secrets

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of the message with terminal colour codes
}


class MaskingFormatter(logging.Formatter):
    """Plain text with `key=value` extras, or one JSON object a line; URL passwords masked."""

    def __init__(self, json_lines: bool = False) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        extras = {k: v for k, v in vars(record).items() if k not in _RESERVED}
        if self.json_lines:
            payload: dict[str, Any] = {
                "time": self.formatTime(record),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
                **extras,
            }
            if record.exc_info:
                payload["exc"] = self.formatException(record.exc_info)
            text = json.dumps(payload, default=str)
        else:
            text = super().format(record)
            if extras:
                text += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return mask_secrets(text)


def configure_logging(
    level: str = "INFO", json_lines: bool = False, secrets: Iterable[str] = ()
) -> None:
    """Our handler on the root logger, for our code, Celery and gRPC alike.

    `secrets` are literal values (tokens, a Flower password) masked wherever they would appear.
    """
    add_masked_values(secrets)
    _keep_ours_under_celery()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(MaskingFormatter(json_lines))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("pymongo", "asyncio", "amqp", "kombu"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _keep_ours_under_celery() -> None:
    """Celery sets logging up itself (its own format, stdout redirected) unless a receiver answers
    its `setup_logging` signal; answering it leaves our root handler in place, so the worker's and
    beat's own records and the task loggers (which propagate to root) share our format and mask."""
    from celery import signals

    signals.setup_logging.connect(
        _celery_setup_logging, weak=False, dispatch_uid="omnisched-configure-logging"
    )


def _celery_setup_logging(**_: Any) -> None:
    """Nothing to do: `configure_logging` already configured the root logger."""
