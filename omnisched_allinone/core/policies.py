"""Per-job run policies: retries, time limits, overlap, catch-up and jitter.

Pure values. Defaults come from settings (config/) and are merged with what a client set, so a job
stored today keeps its explicit choices when the server's defaults change tomorrow.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

from omnisched_allinone.core.errors import InvalidArgument


class OverlapPolicy(StrEnum):
    SKIP = "SKIP"
    ALLOW = "ALLOW"


# RabbitMQ closes a consumer whose ack takes longer than consumer_timeout (30 min by default):
# a time limit above it would turn every long run into a redelivery loop.
MAX_TIME_LIMIT_S = 6 * 3600
MAX_RETRIES = 100
MAX_WINDOW_S = 366 * 24 * 3600


@dataclass(frozen=True)
class JobPolicies:
    max_retries: int = 3
    retry_backoff_s: float = 5.0
    retry_backoff_max_s: float = 300.0
    time_limit_s: int = 1800
    soft_time_limit_s: int = 1500
    overlap: OverlapPolicy = OverlapPolicy.SKIP
    catchup_window_s: int = 300
    jitter_s: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], defaults: JobPolicies | None = None) -> JobPolicies:
        base = defaults or cls()
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known and v is not None}
        if "overlap" in values:
            values["overlap"] = OverlapPolicy(values["overlap"])
        return replace(base, **values)


def merge_policies(
    base: JobPolicies, changes: dict[str, Any], field_prefix: str = "policies"
) -> JobPolicies:
    """Apply a client's partial policy changes to `base` and validate the result."""
    values = dict(changes)
    overlap = values.pop("overlap", None)
    if overlap:
        try:
            values["overlap"] = OverlapPolicy(str(overlap).upper())
        except ValueError:
            raise InvalidArgument(
                f"{field_prefix}.overlap", f"must be one of {', '.join(OverlapPolicy)}"
            ) from None
    merged = replace(base, **{k: v for k, v in values.items() if v is not None})
    if "soft_time_limit_s" not in values and merged.soft_time_limit_s > merged.time_limit_s:
        # A client that lowers only the hard limit means "this job is short": follow it.
        merged = replace(merged, soft_time_limit_s=merged.time_limit_s)
    validate_policies(merged, field_prefix)
    return merged


def validate_policies(p: JobPolicies, field_prefix: str = "policies") -> None:
    def bad(name: str, message: str) -> InvalidArgument:
        return InvalidArgument(f"{field_prefix}.{name}", message)

    if not 0 <= p.max_retries <= MAX_RETRIES:
        raise bad("max_retries", f"must be between 0 and {MAX_RETRIES}")
    if not (p.retry_backoff_s == p.retry_backoff_s and 0 <= p.retry_backoff_s <= 3600):
        raise bad("retry_backoff_s", "must be between 0 and 3600 seconds")
    if not (p.retry_backoff_max_s == p.retry_backoff_max_s and 0 <= p.retry_backoff_max_s <= 86400):
        raise bad("retry_backoff_max_s", "must be between 0 and 86400 seconds")
    if not 1 <= p.time_limit_s <= MAX_TIME_LIMIT_S:
        raise bad("time_limit_s", f"must be between 1 and {MAX_TIME_LIMIT_S} seconds")
    if not 1 <= p.soft_time_limit_s <= p.time_limit_s:
        raise bad("soft_time_limit_s", "must be between 1 and time_limit_s")
    if not 0 <= p.catchup_window_s <= MAX_WINDOW_S:
        raise bad("catchup_window_s", f"must be between 0 and {MAX_WINDOW_S} seconds")
    if not 0 <= p.jitter_s <= 3600:
        raise bad("jitter_s", "must be between 0 and 3600 seconds")


def retry_delay_s(policies: JobPolicies, attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter (AWS architecture blog's "full jitter").

    Full jitter keeps many failing runs of one job from retrying in lock-step against a target
    that has just come back.
    """
    cap = min(policies.retry_backoff_max_s, policies.retry_backoff_s * (2 ** max(attempt - 1, 0)))
    return (rng or random).uniform(cap / 2, cap) if cap > 0 else 0.0
