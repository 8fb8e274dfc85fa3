"""Cron Triggers' schedule syntax, enough to know whether one minute is due.

Five fields: minute, hour, day of month, month, day of week. Each takes ``*``,
numbers, ranges ``a-b``, lists ``a,b`` and steps ``*/n`` or ``a-b/n``; months
and days also take names (JAN, MON). Days of the week count 1-7 from Sunday,
as Cloudflare's do (0 is read as Sunday too). As in classic cron, when both day
fields are restricted a day matches if either does. Anything else (``L``,
``W``, ``#``) is not understood and never matches.
"""

from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()  # noqa: SIM905
DAYS = "SUN MON TUE WED THU FRI SAT".split()  # noqa: SIM905
# (lowest, highest, names numbered from 1)
FIELDS: tuple[tuple[int, int, list[str]], ...] = (
    (0, 59, []),
    (0, 23, []),
    (1, 31, []),
    (1, 12, MONTHS),
    (0, 7, DAYS),
)


class CronInvalid(ValueError):
    pass


def _number(text: str, names: list[str]) -> int:
    upper = text.upper()
    if upper in names:
        return names.index(upper) + 1
    if not text.isdigit():
        raise CronInvalid(f"{text!r} is not a number or a name")
    return int(text)


def _field(text: str, low: int, high: int, names: list[str]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise CronInvalid(f"{part!r} has a bad step")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _number(first, names), _number(last, names)
        else:
            start = _number(base, names)
            end = high if step else start
        if not (low <= start <= high and low <= end <= high and start <= end):
            raise CronInvalid(f"{part!r} is out of range {low}-{high}")
        values.update(range(start, end + 1, step or 1))
    return frozenset(values)


class Schedule(NamedTuple):
    minutes: frozenset[int]
    hours: frozenset[int]
    month_days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # Python's weekday(): Monday is 0
    both_days_restricted: bool


@lru_cache(maxsize=1024)
def parse(expression: str) -> Schedule:
    """The values each field matches. Raises CronInvalid."""
    fields = expression.split()
    if len(fields) != 5:
        raise CronInvalid("a schedule has five fields")
    minutes, hours, month_days, months, days = (
        _field(text, *spec) for text, spec in zip(fields, FIELDS, strict=True)
    )
    # 1 (or 0) is Sunday, 7 Saturday; Python counts from Monday.
    weekdays = frozenset((day - 2) % 7 if day else 6 for day in days)
    return Schedule(
        minutes,
        hours,
        month_days,
        months,
        weekdays,
        both_days_restricted=fields[2] != "*" and fields[4] != "*",
    )


def is_due(expression: str, moment: datetime) -> bool:
    """Whether the schedule fires in the minute of ``moment`` (UTC)."""
    try:
        schedule = parse(expression)
    except CronInvalid:
        return False
    if moment.minute not in schedule.minutes or moment.hour not in schedule.hours:
        return False
    if moment.month not in schedule.months:
        return False
    day = moment.day in schedule.month_days
    weekday = moment.weekday() in schedule.weekdays
    return (day or weekday) if schedule.both_days_restricted else (day and weekday)
