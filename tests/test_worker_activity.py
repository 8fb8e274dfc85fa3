"""The claim page's activity panel: each Worker's code and newest events,
read in a fixed number of queries."""

import pytest

from accounts import selectors
from accounts.models import WorkerEvent, WorkerModule
from tests.claim_builders import add_resources

pytestmark = pytest.mark.django_db


def _request_event(script, n: int) -> WorkerEvent:
    return WorkerEvent.objects.create(
        script=script,
        data={
            "outcome": "ok",
            "event": {
                "request": {"method": "GET", "url": f"https://h/{n}"},
                "response": {"status": 200},
            },
            "logs": [{"level": "warn", "message": ["seen", {"n": n}]}],
        },
    )


def test_a_busy_worker_does_not_hide_a_quiet_ones_events(
    provision, settings, django_assert_num_queries
):
    settings.CLAIMPORTAL_MODULE_SOURCE_BYTES = 8
    account = provision().account
    add_resources(account, 7)  # two Workers: worker-0 and worker-6
    quiet, busy = account.workers.order_by("name")
    WorkerModule.objects.create(
        version=quiet.current_version,
        name="index.js",
        content_type="application/javascript+module",
        content="é<b>".encode() * 5,
    )
    WorkerModule.objects.create(
        version=quiet.current_version,
        name="add.wasm",
        content_type="application/wasm",
        content=b"\0asm" * 4,
    )
    for n in range(2):
        _request_event(quiet, n)
    for n in range(100):
        _request_event(busy, n)

    with django_assert_num_queries(1):  # its two statements, sent together
        found = selectors.worker_activity(account=account, events=10)

    assert [w.name for w in found] == ["worker-0", "worker-6"]
    code, binary = found[0].modules
    assert (code.name, code.size, code.truncated) == ("index.js", 25, True)
    assert code.source == "é<b>é<"  # the first 8 bytes, as text
    assert (binary.source, binary.truncated, binary.size) == ("", False, 16)
    assert [e.summary for e in found[0].events] == [
        "GET https://h/1 200",
        "GET https://h/0 200",
    ]
    assert found[0].events[0].lines == [("warn", 'seen {"n": 1}')]
    assert [e.summary for e in found[1].events] == [
        f"GET https://h/{n} 200" for n in range(99, 89, -1)
    ]
    assert found[1].modules == []
