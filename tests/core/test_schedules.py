"""Specification of schedule math: canonical forms, fire times, DST rows (DESIGN §3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnisched_allinone.core.errors import InvalidArgument
from omnisched_allinone.core.schedules import (
    ScheduleSpec,
    ScheduleType,
    describe_schedule,
    fire_times_between,
    next_fire_time,
    next_fire_times,
    normalize_schedule,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[arg-type,misc]


def wall(tz: str, *args: int, fold: int = 0) -> datetime:
    """The UTC instant of a wall-clock time, as zoneinfo computes it (the oracle for DST rows)."""
    return datetime(*args, tzinfo=ZoneInfo(tz), fold=fold).astimezone(UTC)  # type: ignore[arg-type,misc]


def norm(type_: str, config: dict[str, str], tz: str = "UTC") -> ScheduleSpec:
    return normalize_schedule(ScheduleSpec(type_, config, tz), NOW)


# -- cron ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expression"),
    [
        ({}, "* * * * *"),
        ({"minute": "0", "hour": "8"}, "0 8 * * *"),
        ({"minute": "*/15", "day_of_week": "MON-FRI"}, "*/15 * * * mon-fri"),
        ({"minute": "30", "hour": "2", "day_of_week": "sun-tue"}, "30 2 * * sun-tue"),
        ({"minute": "0", "hour": "0", "day_of_week": "7"}, "0 0 * * 7"),
        ({"minute": "5", "day_of_month": "1,15", "month_of_year": "jan-jun"}, "5 * 1,15 jan-jun *"),
    ],
)
def test_celery_fields_equal_the_expression_form(fields: dict[str, str], expression: str) -> None:
    from_fields = norm("cron", fields, "Europe/Berlin")
    from_expression = norm("cron", {"expression": expression}, "Europe/Berlin")
    assert from_fields == from_expression
    assert from_fields.config == {"expression": expression}
    assert next_fire_times(from_fields, NOW, 5) == next_fire_times(from_expression, NOW, 5)


@pytest.mark.parametrize(
    ("given_expression", "expression"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("  0   8 * *   MON ", "0 8 * * mon"),
    ],
)
def test_macros_and_spacing_become_five_plain_fields(
    given_expression: str, expression: str
) -> None:
    assert norm("cron", {"expression": given_expression}).config == {"expression": expression}


@pytest.mark.parametrize(
    ("day", "expected"),
    [(0, utc(2026, 3, 1, 0, 0)), (7, utc(2026, 3, 1, 0, 0)), (1, utc(2026, 3, 2, 0, 0))],
)
def test_day_of_week_zero_and_seven_are_sunday(day: int, expected: datetime) -> None:
    spec = norm("cron", {"minute": "0", "hour": "0", "day_of_week": str(day)})
    assert next_fire_time(spec, utc(2026, 2, 28, 12, 0)) == expected  # 2026-03-01 is a Sunday


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"minute": "60"}, "minute"),
        ({"hour": "24"}, "hour"),
        ({"hour": "8 9"}, "hour"),
        ({"hour": ""}, "hour"),
        ({"day_of_month": "0"}, "day_of_month"),
        ({"month_of_year": "13"}, "month_of_year"),
        ({"month_of_year": "foo"}, "month_of_year"),
        ({"day_of_week": "8"}, "day_of_week"),
        ({"day_of_week": "sat-sun"}, "day_of_week"),
        ({"minute": "*/0"}, "minute"),
        ({"hours": "8"}, "hours"),
        ({"expression": "0 8 * * *", "hour": "8"}, "hour"),
        ({"expression": "0 8 * *"}, "expression"),
        ({"expression": "0 0 8 * * *"}, "expression"),
        ({"expression": "@reboot"}, "expression"),
        ({"expression": "0 25 * * *"}, "expression"),
        ({"expression": "0 0 30 2 *"}, "expression"),
        ({"expression": "0 0 31 4,6,9,11 *"}, "expression"),
    ],
)
def test_bad_cron_input_names_the_field(config: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        norm("cron", config)
    assert raised.value.field == f"schedule_config.config.{field}"


def test_cron_fires_strictly_after_and_ignores_sub_second_offsets() -> None:
    spec = norm("cron", {"expression": "0 8 * * *"})
    assert next_fire_time(spec, utc(2026, 3, 2, 8, 0)) == utc(2026, 3, 3, 8, 0)
    assert next_fire_time(spec, utc(2026, 3, 2, 7, 59, 59, 999999)) == utc(2026, 3, 2, 8, 0)
    assert next_fire_time(spec, utc(2026, 3, 2, 8, 0, 0, 1)) == utc(2026, 3, 3, 8, 0)


# -- DST (DESIGN §3) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "day", "expression", "expected_wall"),
    [
        # Spring forward: 02:30 does not exist, so the job fires once at 03:00 (the transition).
        ("Europe/Berlin", (2026, 3, 29), "30 2 * * *", (3, 0)),
        ("America/New_York", (2026, 3, 8), "30 2 * * *", (3, 0)),
        # Fall back: the wall time occurs twice and fires once, at its first occurrence (fold=0).
        ("Europe/Berlin", (2026, 10, 25), "30 2 * * *", (2, 30)),
        ("America/New_York", (2026, 11, 1), "30 1 * * *", (1, 30)),
    ],
)
def test_fixed_time_cron_fires_once_on_dst_change_days(
    tz: str, day: tuple[int, int, int], expression: str, expected_wall: tuple[int, int]
) -> None:
    hour, minute = (int(part) for part in expression.split()[1::-1])
    earlier, later = wall(tz, *day, hour, minute, fold=0), wall(tz, *day, hour, minute, fold=1)
    skipped = earlier.astimezone(ZoneInfo(tz)).replace(tzinfo=None) != datetime(*day, hour, minute)
    if expected_wall == (hour, minute):
        assert not skipped and earlier < later  # the row really is a repeated wall time
    else:
        assert skipped  # the row really is a skipped wall time
    spec = norm("cron", {"expression": expression}, tz)
    local_day = wall(tz, *day, 0, 0), wall(tz, *day, 0, 0) + timedelta(days=1)
    assert fire_times_between(spec, *local_day, limit=10) == [wall(tz, *day, *expected_wall)]
    # The days around the change fire at the plain wall time.
    eve = datetime(*day) - timedelta(days=1)
    assert next_fire_time(spec, wall(tz, eve.year, eve.month, eve.day, 0, 0)) == wall(
        tz, eve.year, eve.month, eve.day, hour, minute
    )


def test_fixed_time_cron_asked_from_the_second_copy_waits_for_the_next_day() -> None:
    tz, spec = "America/New_York", norm("cron", {"expression": "30 1 * * *"}, "America/New_York")
    inside_second_copy = wall(tz, 2026, 11, 1, 1, 10, fold=1)
    assert next_fire_time(spec, inside_second_copy) == wall(tz, 2026, 11, 2, 1, 30)


@pytest.mark.parametrize(
    ("tz", "day", "repeated_hour"),
    [("Europe/Berlin", (2026, 10, 25), 2), ("America/New_York", (2026, 11, 1), 1)],
)
def test_wildcard_hour_cron_fires_in_both_copies_of_a_repeated_hour(
    tz: str, day: tuple[int, int, int], repeated_hour: int
) -> None:
    spec = norm("cron", {"expression": "*/30 * * * *"}, tz)
    start = wall(tz, *day, repeated_hour, 0, fold=0) - timedelta(microseconds=1)
    expected = [
        wall(tz, *day, repeated_hour, m, fold=f) for f in (0, 1) for m in (0, 30)
    ]  # four real instants, two hours apart in UTC terms
    assert fire_times_between(spec, start, expected[-1], limit=10) == expected


def test_wildcard_hour_cron_has_nothing_in_a_skipped_hour() -> None:
    tz, spec = "Europe/Berlin", norm("cron", {"expression": "*/30 * * * *"}, "Europe/Berlin")
    times = fire_times_between(spec, wall(tz, 2026, 3, 29, 1, 0), wall(tz, 2026, 3, 29, 3, 30), 10)
    assert times == [wall(tz, 2026, 3, 29, h, m) for h, m in ((1, 30), (3, 0), (3, 30))]
    assert times[1] - times[0] == timedelta(minutes=30)


# -- interval ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("every", "period", "step"),
    [
        ("1", "seconds", timedelta(seconds=1)),
        ("90", "second", timedelta(seconds=90)),
        ("15", "minutes", timedelta(minutes=15)),
        ("4", "hours", timedelta(hours=4)),
        ("04", "HOUR", timedelta(hours=4)),
        ("2", "days", timedelta(days=2)),
    ],
)
def test_interval_first_fires_one_step_after_a_defaulted_start(
    every: str, period: str, step: timedelta
) -> None:
    spec = norm("interval", {"every": every, "period": period})
    assert spec.config["start_at"] == NOW.isoformat()
    assert spec.config["every"] == str(int(every))
    assert next_fire_times(spec, NOW, 3) == [NOW + step, NOW + 2 * step, NOW + 3 * step]


def test_interval_period_defaults_to_seconds_and_describes_itself() -> None:
    assert norm("interval", {"every": "30"}).config["period"] == "seconds"
    assert describe_schedule(norm("interval", {"every": "4", "period": "hours"})) == "every 4 hours"
    assert describe_schedule(norm("interval", {"every": "1", "period": "hour"})) == "every 1 hour"


@pytest.mark.parametrize(
    ("start_at", "tz", "expected_start"),
    [
        ("2026-01-01T00:00:00+00:00", "UTC", utc(2026, 1, 1)),
        ("2026-01-01T00:00:00Z", "Europe/Berlin", utc(2026, 1, 1)),
        ("2026-01-01T09:00:00", "Europe/Berlin", utc(2026, 1, 1, 8)),
        ("2025-06-01T09:00:00", "America/New_York", utc(2025, 6, 1, 13)),
    ],
)
def test_interval_start_at_is_an_instant_and_naive_means_the_spec_timezone(
    start_at: str, tz: str, expected_start: datetime
) -> None:
    spec = norm("interval", {"every": "1", "period": "hours", "start_at": start_at}, tz)
    assert spec.config["start_at"] == expected_start.isoformat()
    # A start in the past lines the grid up with it; start_at itself never fires.
    assert next_fire_time(spec, NOW) == NOW + timedelta(hours=1)
    assert next_fire_time(spec, expected_start - timedelta(days=1)) == expected_start + timedelta(
        hours=1
    )


@pytest.mark.parametrize(
    ("config", "min_interval_s", "field"),
    [
        ({"every": "0"}, 1.0, "every"),
        ({"every": "-5"}, 1.0, "every"),
        ({"every": "1.5"}, 1.0, "every"),
        ({"every": ""}, 1.0, "every"),
        ({}, 1.0, "every"),
        ({"every": "9" * 40}, 1.0, "every"),
        ({"every": "99999", "period": "days"}, 1.0, "every"),
        ({"every": "30"}, 60.0, "every"),
        ({"every": "5", "period": "fortnights"}, 1.0, "period"),
        ({"every": "5", "start_at": "yesterday"}, 1.0, "start_at"),
        ({"every": "5", "start_at": "0001-01-01T00:00:00+05:00"}, 1.0, "start_at"),
        ({"every": "5", "run_at": "2027-01-01"}, 1.0, "run_at"),
    ],
)
def test_bad_interval_input_names_the_field(
    config: dict[str, str], min_interval_s: float, field: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        normalize_schedule(ScheduleSpec("interval", config), NOW, min_interval_s=min_interval_s)
    assert raised.value.field == f"schedule_config.config.{field}"


def test_interval_exactly_at_the_floor_is_allowed() -> None:
    spec = normalize_schedule(ScheduleSpec("interval", {"every": "1", "period": "minutes"}), NOW,
                              min_interval_s=60.0)  # fmt: skip
    assert spec.config["period"] == "minutes"


@pytest.mark.parametrize(
    ("period", "after"),
    [("seconds", utc(9000, 6, 15, 12, 34, 56, 789)), ("days", utc(9000, 6, 15, 12, 34, 56))],
)
def test_interval_finds_far_future_times_by_arithmetic(period: str, after: datetime) -> None:
    spec = norm("interval", {"every": "7", "period": period}, "Europe/Berlin")
    fire = next_fire_time(spec, after)
    assert fire is not None and after < fire <= after + timedelta(days=7)
    if period == "days":
        local, start_local = (
            fire.astimezone(ZoneInfo("Europe/Berlin")),
            NOW.astimezone(ZoneInfo("Europe/Berlin")),
        )
        assert (local.hour, local.minute) == (start_local.hour, start_local.minute)
    else:
        assert (fire - NOW) % timedelta(seconds=7) == timedelta(0)


def test_interval_has_no_fire_time_beyond_the_calendar() -> None:
    spec = norm("interval", {"every": "3660", "period": "days"})
    assert next_fire_time(spec, datetime.max.replace(tzinfo=UTC) - timedelta(days=1)) is None


@pytest.mark.parametrize(
    ("tz", "start_at", "every_unit", "expected_walls"),
    [
        # Calendar days keep the wall-clock time across the change ...
        (
            "Europe/Berlin",
            "2026-03-27T09:00",
            "days",
            [(3, 28, 9, 0), (3, 29, 9, 0), (3, 30, 9, 0)],
        ),
        ("America/New_York", "2026-10-31T09:00", "days", [(11, 1, 9, 0), (11, 2, 9, 0)]),
        # ... a skipped wall time fires at the transition, like cron ...
        ("Europe/Berlin", "2026-03-28T02:30", "days", [(3, 29, 3, 0), (3, 30, 2, 30)]),
        # ... while 24 hours is elapsed time, so the wall clock moves.
        ("Europe/Berlin", "2026-03-27T09:00", "hours", [(3, 28, 9, 0), (3, 29, 10, 0)]),
    ],
)
def test_interval_across_dst(
    tz: str, start_at: str, every_unit: str, expected_walls: list[tuple[int, int, int, int]]
) -> None:
    every = "1" if every_unit == "days" else "24"
    spec = norm("interval", {"every": every, "period": every_unit, "start_at": start_at}, tz)
    start = datetime.fromisoformat(spec.config["start_at"])
    expected = [wall(tz, 2026, *w) for w in expected_walls]
    assert next_fire_times(spec, start, len(expected)) == expected


# -- once ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("run_at", "tz", "expected"),
    [
        ("2026-12-01T10:00:00+00:00", "UTC", utc(2026, 12, 1, 10)),
        ("2026-12-01T10:00:00Z", "Asia/Tokyo", utc(2026, 12, 1, 10)),
        ("2026-12-01T10:00:00", "America/New_York", utc(2026, 12, 1, 15)),
        ("2026-03-29T02:30:00", "Europe/Berlin", wall("Europe/Berlin", 2026, 3, 29, 3, 0)),
    ],
)
def test_once_in_the_future_fires_once(run_at: str, tz: str, expected: datetime) -> None:
    spec = norm("once", {"run_at": run_at}, tz)
    assert spec.config == {"run_at": expected.isoformat()}
    assert describe_schedule(spec) == f"once at {expected.isoformat()}"
    assert next_fire_times(spec, NOW, 5) == [expected]
    assert next_fire_time(spec, expected) is None


@pytest.mark.parametrize(
    "run_at", ["2026-03-01T12:00:00+00:00", "2020-01-01T00:00:00", "2026-03-01T12:30:00+01:00"]
)
def test_once_not_in_the_future_is_rejected(run_at: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        norm("once", {"run_at": run_at})
    assert raised.value.field == "schedule_config.config.run_at"


# -- common validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (ScheduleSpec("weekly", {}), "schedule_config.type"),
        (ScheduleSpec("", {}), "schedule_config.type"),
        (ScheduleSpec("cron", {}, "Mars/Olympus"), "schedule_config.timezone"),
        (ScheduleSpec("cron", {}, "Europe"), "schedule_config.timezone"),
        (ScheduleSpec("cron", {}, "../../etc/passwd"), "schedule_config.timezone"),
        (ScheduleSpec("cron", {}, "Europe/Berlin\x00"), "schedule_config.timezone"),
        (ScheduleSpec("cron", {"expression": "0 8 * * *" + " " * 300}), "schedule_config.config.expression"),
        (ScheduleSpec("cron", {"expression": "0 8 * * ménage"}), "schedule_config.config.expression"),
        (ScheduleSpec("once", {"run_at": "2027-01-01\x00"}), "schedule_config.config.run_at"),
        (ScheduleSpec("once", {"r\x00": "x"}), "schedule_config.config"),
    ],
)  # fmt: skip
def test_absurd_input_is_an_invalid_argument(spec: ScheduleSpec, field: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        normalize_schedule(spec, NOW)
    assert raised.value.field == field


@pytest.mark.parametrize(("type_", "tz"), [("CRON", ""), ("Cron", "UTC")])
def test_type_is_case_insensitive_and_empty_timezone_is_utc(type_: str, tz: str) -> None:
    spec = norm(type_, {"expression": "0 8 * * *"}, tz)
    assert (spec.type, spec.timezone) == (ScheduleType.CRON, "UTC")
    assert describe_schedule(spec) == "cron 0 8 * * * (UTC)"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda spec: next_fire_times(spec, NOW, 1001), "count"),
        (lambda spec: next_fire_times(spec, NOW, -1), "count"),
        (lambda spec: fire_times_between(spec, NOW, NOW, 5000), "limit"),
    ],
)
def test_counts_and_limits_are_capped(call: object, field: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        call(norm("cron", {}))  # type: ignore[operator]
    assert raised.value.field == field


def test_fire_times_between_returns_the_first_limit_for_paging() -> None:
    spec = norm("cron", {"expression": "0 * * * *"})
    first = fire_times_between(spec, NOW, NOW + timedelta(days=1), limit=3)
    assert first == [NOW + timedelta(hours=h) for h in (1, 2, 3)]
    rest = fire_times_between(spec, first[-1], NOW + timedelta(days=1), limit=1000)
    assert len(first) + len(rest) == 24 and rest[-1] == NOW + timedelta(days=1)


# -- properties ----------------------------------------------------------------------------------

TIMEZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/Havana",  # changes at midnight
]


def _cron_field(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    return st.one_of(
        st.just("*"),
        number.map(str),
        st.integers(1, high).map(lambda step: f"*/{step}"),
        st.tuples(number, number).map(lambda ab: f"{min(ab)}-{max(ab)}"),
        st.lists(number, min_size=1, max_size=3, unique=True).map(
            lambda ns: ",".join(map(str, ns))
        ),
    )


CRON_EXPRESSIONS = st.tuples(
    _cron_field(0, 59),
    _cron_field(0, 23),
    _cron_field(1, 28),
    _cron_field(1, 12),
    _cron_field(0, 7),
).map(" ".join)
INSTANTS = st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1), timezones=st.just(UTC))


@settings(max_examples=150, deadline=None)
@given(CRON_EXPRESSIONS, st.sampled_from(TIMEZONES), INSTANTS)
def test_cron_fire_times_are_strictly_increasing_and_each_is_found_again(
    expression: str, tz: str, after: datetime
) -> None:
    spec = normalize_schedule(ScheduleSpec("cron", {"expression": expression}, tz), after)
    times = next_fire_times(spec, after, 6)
    assert times and times[0] > after
    assert all(earlier < later for earlier, later in pairwise(times))
    for earlier, later in pairwise(times):
        assert next_fire_time(spec, earlier) == later
    for t in times:  # asking from just before a fire time finds that fire time
        assert next_fire_time(spec, t - timedelta(microseconds=1)) == t


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["cron", "interval", "once", "CRON", "daily"]),
    st.dictionaries(
        st.sampled_from(["expression", "minute", "hour", "day_of_week", "every", "period",
                         "start_at", "run_at", "bogus"]) | st.text(max_size=5),
        st.sampled_from(["*", "0", "5", "*/3", "mon-fri", "@daily", "0 8 * * *", "hours", "day",
                         "2027-01-01T00:00", "2000-01-01", "9" * 30]) | st.text(max_size=12),
        max_size=4,
    ),
    st.sampled_from([*TIMEZONES, "", "Nowhere/City"]) | st.text(max_size=8),
)  # fmt: skip
def test_random_input_either_normalizes_idempotently_or_is_invalid_argument(
    type_: str, config: dict[str, str], tz: str
) -> None:
    try:
        spec = normalize_schedule(ScheduleSpec(type_, config, tz), NOW)
    except InvalidArgument:
        return
    assert normalize_schedule(spec, NOW) == spec
    fire = next_fire_time(spec, NOW)
    assert fire is None or fire > NOW
    assert describe_schedule(spec)
