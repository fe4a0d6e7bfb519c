"""Schedule math: validate a client's schedule into one canonical form and answer "when next?".

Pure: no I/O and no clock reads (callers pass ``now``/``after``), so every rule here can be pinned
by table tests, including the DST rows DESIGN §3 asks for. All instants in and out are aware UTC.

Semantics decided here (callers and docs rely on them):

* **cron** matching is cronsim's (Debian cron). In a non-UTC zone a schedule with a fixed minute and
  hour follows wall-clock time: a wall time skipped by spring-forward fires once at the first valid
  instant after it (Berlin ``30 2 * * *`` on 2026-03-29 fires at 03:00 local), and a wall time that
  occurs twice on fall-back fires once, at its first occurrence. Schedules with a wildcard minute
  or hour (``*/15 * * * *``) fire at each real instant, so they fire in both copies of a repeated
  hour and not at all in a skipped one, as Debian cron does. Day-of-month and day-of-week are ORed
  when both are restricted (cron), also for the Celery field form, which is only another spelling.
* **interval** fires at ``start_at + k * interval`` for k >= 1: ``start_at`` itself never fires, so
  a job created now (``start_at`` defaults to ``now``) first runs one interval later, like Celery's
  ``schedule``. seconds/minutes/hours are elapsed time; days are calendar days in the spec's zone
  (same wall-clock time each day, with the DST rule above).
* **once** fires at ``run_at`` if that is still ahead, then never again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

from omnisched_allinone.core.errors import InvalidArgument

MAX_TEXT_LEN = 256
MAX_COUNT = 1000
MAX_INTERVAL_S = 3660 * 86400  # ten years: anything longer is a typo, not a schedule

_TYPE_FIELD = "schedule_config.type"
_TZ_FIELD = "schedule_config.timezone"
_CONFIG_FIELD = "schedule_config.config"

# Celery crontab keyword -> position in a 5-field cron expression (the list order).
_CRON_KEYS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
# cronsim names the bad field in its message ("Bad day-of-month"); map back to the Celery key.
_CRONSIM_KEYS = {
    "minute": "minute",
    "hour": "hour",
    "day-of-month": "day_of_month",
    "month": "month_of_year",
    "day-of-week": "day_of_week",
}
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_PERIOD_S = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}

FireRule = Callable[[datetime], datetime | None]


class ScheduleType(StrEnum):
    CRON = "cron"
    INTERVAL = "interval"
    ONCE = "once"


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule as the API carries it: a type, a string map of its fields, an IANA zone."""

    type: str
    config: Mapping[str, str]
    timezone: str = "UTC"


def normalize_schedule(
    spec: ScheduleSpec, now: datetime, *, min_interval_s: float = 1.0
) -> ScheduleSpec:
    """Validate ``spec`` and return its canonical form, which ``next_fire_time`` needs alone.

    Canonical forms are fixed points (normalizing twice with the same ``now`` changes nothing), so
    the store can keep the result and compare schedules by equality. Every rejection is an
    ``InvalidArgument`` naming the request field, because the client must be able to fix it.
    """
    _require_aware(now, "now")
    kind = _parse_type(spec.type)
    tz_name, tz = _parse_timezone(spec.timezone)
    config = _check_config(spec.config)
    if kind is ScheduleType.CRON:
        canonical = _normalize_cron(config, tz, now)
    elif kind is ScheduleType.INTERVAL:
        canonical = _normalize_interval(config, tz, now, min_interval_s)
    else:
        canonical = _normalize_once(config, tz, now)
    return ScheduleSpec(type=kind.value, config=canonical, timezone=tz_name)


def next_fire_time(spec: ScheduleSpec, after: datetime) -> datetime | None:
    """First fire time strictly after ``after``; None when none is left (a passed once-schedule)."""
    _require_aware(after, "after")
    return _compile(spec)(after)


def next_fire_times(spec: ScheduleSpec, after: datetime, count: int) -> list[datetime]:
    """Up to ``count`` successive fire times strictly after ``after`` (for previews)."""
    _require_aware(after, "after")
    _check_count("count", count)
    rule = _compile(spec)
    times: list[datetime] = []
    while len(times) < count and (t := rule(times[-1] if times else after)) is not None:
        times.append(t)
    return times


def fire_times_between(
    spec: ScheduleSpec, start: datetime, end: datetime, limit: int
) -> list[datetime]:
    """The first ``limit`` fire times t with ``start < t <= end``.

    Catch-up after downtime may span more fire times than one call should return; callers page by
    calling again with ``start`` set to the last time returned.
    """
    _require_aware(start, "start")
    _require_aware(end, "end")
    _check_count("limit", limit)
    rule = _compile(spec)
    times: list[datetime] = []
    while len(times) < limit and (t := rule(times[-1] if times else start)) is not None:
        if t > end:
            break
        times.append(t)
    return times


def describe_schedule(spec: ScheduleSpec) -> str:
    """Short human text for listings and logs, e.g. ``every 4 hours`` (expects a canonical spec)."""
    config = spec.config
    if spec.type == ScheduleType.CRON:
        return f"cron {config.get('expression', '?')} ({spec.timezone})"
    if spec.type == ScheduleType.INTERVAL:
        every, period = config.get("every", "?"), config.get("period", "seconds")
        text = f"every {every} {period[:-1] if every == '1' else period}"
        return f"{text} ({spec.timezone})" if period == "days" and spec.timezone != "UTC" else text
    if spec.type == ScheduleType.ONCE:
        return f"once at {config.get('run_at', '?')}"
    return f"{spec.type} schedule"


# -- validation ----------------------------------------------------------------------------------


def _cfg(key: str) -> str:
    return f"{_CONFIG_FIELD}.{key}"


def _check_text(field: str, value: object) -> str:
    """Reject what no schedule field can hold (non-strings, huge, non-ASCII, control characters)."""
    if not isinstance(value, str):
        raise InvalidArgument(field, "must be a string")
    if len(value) > MAX_TEXT_LEN:
        raise InvalidArgument(field, f"must be at most {MAX_TEXT_LEN} characters")
    if not (value.isascii() and value.isprintable()):
        raise InvalidArgument(field, "must be printable ASCII")
    return value.strip()


def _check_count(field: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
        raise InvalidArgument(field, f"must be an integer from 0 to {MAX_COUNT}")


def _require_aware(value: datetime, name: str) -> None:
    # A naive instant here is a programming error in the caller, not a client mistake.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _parse_type(raw: object) -> ScheduleType:
    text = _check_text(_TYPE_FIELD, raw).lower()
    try:
        return ScheduleType(text)
    except ValueError:
        raise InvalidArgument(_TYPE_FIELD, "must be one of cron, interval, once") from None


def _parse_timezone(raw: object) -> tuple[str, tzinfo]:
    name = _check_text(_TZ_FIELD, raw) or "UTC"
    if name == "UTC":
        return name, UTC  # datetime.UTC lets cronsim skip its DST handling entirely
    try:
        return name, ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # KeyError covers ZoneInfoNotFoundError
        raise InvalidArgument(_TZ_FIELD, "must be an IANA time zone name") from None


def _check_config(raw: object) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise InvalidArgument(_CONFIG_FIELD, "must be a map of strings")
    config: dict[str, str] = {}
    for raw_key, raw_value in raw.items():
        key = _check_text(_CONFIG_FIELD, raw_key)
        config[key] = _check_text(_cfg(key), raw_value)
    return config


def _reject_unknown(config: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    for key in sorted(config):
        if key not in allowed:
            raise InvalidArgument(_cfg(key), f"unknown key; expected one of {', '.join(allowed)}")


def _normalize_cron(config: dict[str, str], tz: tzinfo, now: datetime) -> dict[str, str]:
    _reject_unknown(config, ("expression", *_CRON_KEYS))
    if "expression" in config:
        if len(config) > 1:
            other = min(key for key in config if key != "expression")
            raise InvalidArgument(_cfg(other), "give either expression or cron fields, not both")
        raw = config["expression"].lower()
        parts = _MACROS.get(raw, raw).split()
        if len(parts) != 5:
            raise InvalidArgument(
                _cfg("expression"), "must have 5 fields: minute hour day month day_of_week"
            )
        expression = " ".join(parts)
        _validate_cron(expression, tz, now, lambda _cronsim_name: _cfg("expression"))
        return {"expression": expression}
    parts = []
    for key in _CRON_KEYS:
        value = config.get(key, "*").lower()
        if not value or any(ch.isspace() for ch in value):
            raise InvalidArgument(_cfg(key), "must be a single non-empty cron field")
        parts.append(value)
    expression = " ".join(parts)
    _validate_cron(expression, tz, now, lambda name: _cfg(_CRONSIM_KEYS.get(name, "day_of_month")))
    return {"expression": expression}


def _validate_cron(
    expression: str, tz: tzinfo, now: datetime, field_for: Callable[[str], str]
) -> None:
    """Let cronsim judge the expression, translating its error to the client's field."""
    try:
        next(CronSim(expression, now.astimezone(tz)))
    except CronSimError as exc:
        name = str(exc).removeprefix("Bad ")
        raise InvalidArgument(field_for(name), f"invalid cron {name} field") from None
    except (StopIteration, OverflowError):
        # cronsim gives up after 50 years without a match (e.g. "0 0 31 2,4 *" ORed nowhere).
        raise InvalidArgument(field_for("day-of-month"), "cron schedule never fires") from None


def _normalize_interval(
    config: dict[str, str], tz: tzinfo, now: datetime, min_interval_s: float
) -> dict[str, str]:
    _reject_unknown(config, ("every", "period", "start_at"))
    every_raw = config.get("every", "")
    if not (every_raw.isdigit() and len(every_raw) <= 12 and int(every_raw) > 0):
        raise InvalidArgument(_cfg("every"), "must be a positive whole number")
    every = int(every_raw)
    raw_period = config.get("period", "seconds").lower()
    period = raw_period if raw_period in _PERIOD_S else raw_period + "s"
    if period not in _PERIOD_S:
        raise InvalidArgument(_cfg("period"), "must be seconds, minutes, hours or days")
    interval_s = every * _PERIOD_S[period]
    if interval_s < min_interval_s:
        raise InvalidArgument(_cfg("every"), f"interval must be at least {min_interval_s:g}s")
    if interval_s > MAX_INTERVAL_S:
        raise InvalidArgument(_cfg("every"), f"interval must be at most {MAX_INTERVAL_S}s")
    start_at = _parse_instant(config, "start_at", tz) if "start_at" in config else now
    # Whole seconds: the store keeps milliseconds, and a fire time that does not survive the
    # round trip would be found again after it (and dispatched twice).
    start_at = start_at.replace(microsecond=0)
    return {"every": str(every), "period": period, "start_at": start_at.astimezone(UTC).isoformat()}


def _normalize_once(config: dict[str, str], tz: tzinfo, now: datetime) -> dict[str, str]:
    _reject_unknown(config, ("run_at",))
    run_at = _parse_instant(config, "run_at", tz).replace(microsecond=0)  # see start_at
    if run_at <= now:
        raise InvalidArgument(_cfg("run_at"), "must be in the future")
    return {"run_at": run_at.isoformat()}


def _parse_instant(config: Mapping[str, str], key: str, tz: tzinfo) -> datetime:
    """ISO-8601 to aware UTC; a naive value is wall-clock time in the spec's zone."""
    try:
        value = datetime.fromisoformat(config[key])
        return value.astimezone(UTC) if value.tzinfo else _wall_to_utc(value, tz)
    except KeyError:
        raise InvalidArgument(_cfg(key), "is required") from None
    except (ValueError, OverflowError):
        raise InvalidArgument(_cfg(key), "must be an ISO-8601 date-time in range") from None


def _wall_to_utc(wall: datetime, tz: tzinfo) -> datetime:
    """Map a naive wall-clock time in ``tz`` to UTC with the DESIGN §3 DST rule.

    A repeated wall time takes its first occurrence (fold=0); a skipped one takes the first valid
    instant after it, i.e. the transition itself, found by bisection between the two readings of
    the skipped time (PEP 495 gives the pre-transition offset for fold=0, post for fold=1).
    """
    late = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if late.astimezone(tz).replace(tzinfo=None) == wall:
        return late
    early = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    after_offset = late.astimezone(tz).utcoffset()
    while late - early > timedelta(microseconds=1):
        mid = early + (late - early) // 2
        if mid.astimezone(tz).utcoffset() == after_offset:
            late = mid
        else:
            early = mid
    return late


# -- fire times ----------------------------------------------------------------------------------


def _compile(spec: ScheduleSpec) -> FireRule:
    """Turn a canonical spec into "next fire time after t", parsing it once per call site."""
    kind = _parse_type(spec.type)
    _, tz = _parse_timezone(spec.timezone)
    config = _check_config(spec.config)
    if kind is ScheduleType.CRON:
        if "expression" not in config:
            raise InvalidArgument(_cfg("expression"), "is required (normalize the schedule first)")
        expression = config["expression"]
        return lambda after: _next_cron(expression, tz, after)
    if kind is ScheduleType.INTERVAL:
        if not config.get("every", "").isdigit() or config.get("period") not in _PERIOD_S:
            raise InvalidArgument(_cfg("every"), "is malformed (normalize the schedule first)")
        start = _parse_instant(config, "start_at", tz)
        every, period = int(config["every"]), config["period"]
        if period == "days":
            return lambda after: _next_calendar_days(start, every, tz, after)
        step = timedelta(seconds=every * _PERIOD_S[period])
        return lambda after: _next_elapsed(start, step, after)
    run_at = _parse_instant(config, "run_at", tz)
    return lambda after: run_at if after < run_at else None


def _next_cron(expression: str, tz: tzinfo, after: datetime) -> datetime | None:
    try:
        times = CronSim(expression, after.astimezone(tz))
        while True:
            # For fixed-time schedules cronsim works on naive wall time, so an `after` in the
            # second copy of a repeated hour yields the first copy (already past): skip it.
            candidate = next(times).astimezone(UTC)
            if candidate > after:
                return candidate
    except (StopIteration, OverflowError):
        return None
    except CronSimError:
        raise InvalidArgument(_cfg("expression"), "is invalid (normalize first)") from None


def _next_elapsed(start: datetime, step: timedelta, after: datetime) -> datetime | None:
    """start + k*step for the least k >= 1 beyond ``after``, by arithmetic (O(1) far ahead)."""
    k = max(1, (after - start) // step + 1)
    try:
        return start + k * step
    except OverflowError:
        return None


def _next_calendar_days(
    start: datetime, every: int, tz: tzinfo, after: datetime
) -> datetime | None:
    """Same wall-clock time every ``every`` local days; O(1) via an elapsed-time estimate of k.

    UTC offsets differ by at most ~26 hours, so the estimate is within two steps of the answer.
    """
    wall = start.astimezone(tz).replace(tzinfo=None)
    k = max(1, (after - start) // timedelta(days=every) - 2)
    try:
        while (candidate := _wall_to_utc(wall + timedelta(days=k * every), tz)) <= after:
            k += 1
    except OverflowError:
        return None
    return candidate
