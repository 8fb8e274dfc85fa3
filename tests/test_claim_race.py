"""Twenty people confirm the same link at the same moment, on real PostgreSQL
transactions in threads: exactly one owns it, the others are told it is taken."""

import threading
from collections import Counter
from collections.abc import Callable
from http import HTTPStatus

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.exceptions import AlreadyClaimed
from accounts.models import AuditEvent, ClaimLink, CloudAccount
from accounts.services.claims import confirm_claim

pytestmark = pytest.mark.django_db(transaction=True)

PEOPLE = 20


def at_once(work: Callable[[int], object]) -> list[object]:
    """Run work(0..PEOPLE-1) in threads released together; each thread has its
    own database connection, closed when it is done."""
    barrier = threading.Barrier(PEOPLE)
    results: list[object] = [None] * PEOPLE

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as exc:  # collected and asserted on by the test
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(PEOPLE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.fixture
def people(django_user_model):
    return [
        django_user_model.objects.create_user(f"person{i}", f"p{i}@example.com")
        for i in range(PEOPLE)
    ]


def assert_one_owner(made, winners: list) -> None:
    account = CloudAccount.objects.get(pk=made.account.pk)
    assert account.state == CloudAccount.State.CLAIMED
    assert [account.owner] == winners
    assert ClaimLink.objects.get(account=account).used_by == account.owner
    claimed = AuditEvent.objects.filter(account=account, kind=AuditEvent.Kind.CLAIMED)
    assert [event.actor for event in claimed] == winners


def test_the_service_lets_exactly_one_of_twenty_claim(provision, people):
    made = provision()

    results = at_once(
        lambda i: confirm_claim(
            key=made.claim_key,
            account_id=made.account.pk,
            user=people[i],
            now=timezone.now(),
        )
    )

    refused = [r for r in results if isinstance(r, AlreadyClaimed)]
    won = [people[i] for i, r in enumerate(results) if not isinstance(r, Exception)]
    assert (len(won), len(refused)) == (1, PEOPLE - 1), results
    assert all("already been claimed" in str(r) for r in refused)
    assert_one_owner(made, won)


def test_twenty_browsers_confirm_at_once_and_one_owns_it(provision, people):
    made = provision()
    review = reverse("accounts:claim_review")
    browsers = []
    for person in people:
        browser = Client()
        browser.force_login(person)
        browser.get(reverse("accounts:claim", args=[made.claim_key]))
        browsers.append(browser)

    responses = at_once(
        lambda i: browsers[i].post(review, {"account": made.account.pk})
    )

    statuses = Counter(getattr(r, "status_code", repr(r)) for r in responses)
    assert statuses == {HTTPStatus.FOUND: 1, HTTPStatus.CONFLICT: PEOPLE - 1}
    for response in responses:
        if response.status_code == HTTPStatus.CONFLICT:
            assert b"already been claimed" in response.content
    won = [people[i] for i, r in enumerate(responses) if r.status_code == 302]
    assert_one_owner(made, won)
