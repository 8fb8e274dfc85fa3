"""Cron Triggers' schedules: which minutes fire."""

from datetime import UTC, datetime

import pytest

from preview_runtime import cron
from preview_runtime.services.delivery import due_crons

# 2026-11-29 is a Sunday.
SUNDAY_0930 = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "due"),
    [
        ("* * * * *", True),
        ("30 9 * * *", True),
        ("31 9 * * *", False),
        ("*/5 * * * *", True),
        ("*/7 * * * *", False),
        ("0-30/10 9 * * *", True),
        ("15,30,45 8-10 * * *", True),
        ("30 9 29 11 *", True),
        ("30 9 * NOV *", True),
        ("30 9 * DEC *", False),
        ("30 9 * * 1", True),  # 1 is Sunday in Cloudflare's numbering
        ("30 9 * * SUN", True),
        ("30 9 * * 0", True),  # ... and 0 is read as Sunday too
        ("30 9 * * 2", False),
        ("30 9 * * MON-SAT", False),
        ("30 9 * * 2-7", False),
        ("30 9 1 * 1", True),  # both day fields restricted: either matches
        ("30 9 1 * 2", False),
        ("30 9 L * *", False),  # not understood: never fires
        ("not a cron", False),
        ("* * * *", False),
        ("60 * * * *", False),
    ],
)
def test_is_due(expression, due):
    assert cron.is_due(expression, SUNDAY_0930) is due


def test_a_bad_schedule_is_refused_by_parse():
    with pytest.raises(cron.CronInvalid):
        cron.parse("*/0 * * * *")


def test_due_crons_keeps_the_ones_that_fire():
    assert due_crons(
        schedules=["*/15 * * * *", "0 0 * * *", "30 9 * * *"], minute=SUNDAY_0930
    ) == ["*/15 * * * *", "30 9 * * *"]
