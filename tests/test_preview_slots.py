"""Slots for the many: claimed accounts run on their owner's quota, not the
unclaimed pool, and no one origin holds more than its share of the pool."""

import pytest
from django.utils import timezone

from accounts.models import CloudAccount
from preview_runtime.services.state import desired_previews
from tests.preview_runtime import make_worker

pytestmark = pytest.mark.django_db

MAIN = "export default { fetch() { return new Response('ok'); } };"


@pytest.fixture
def slots(settings):
    settings.CLAIMPORTAL_PREVIEW_MAX_PER_ACCOUNT = 10
    settings.CLAIMPORTAL_PREVIEW_UNCLAIMED_POOL = 4
    settings.CLAIMPORTAL_PREVIEW_ORIGIN_SHARE_PERCENT = 50  # two of the four
    settings.CLAIMPORTAL_PREVIEW_MAX_PER_OWNER = 3
    return settings


def unclaimed(provision, origin: str, workers: int = 1) -> CloudAccount:
    account = provision(origin_hash=origin * 64).account
    for number in range(workers):
        make_worker(account, f"w{number}", MAIN)
    return account


def claimed(provision, owner, workers: int) -> CloudAccount:
    account = unclaimed(provision, "c", workers)
    CloudAccount.objects.filter(pk=account.pk).update(
        state=CloudAccount.State.CLAIMED, owner=owner, claimed_at=timezone.now()
    )
    return account


def limits(account: CloudAccount) -> list[str]:
    """Why each of the account's Workers may not run ("" where it runs)."""
    targets = desired_previews(now=timezone.now()).targets.values()
    return sorted(t.limited for t in targets if t.account_id == account.pk)


def test_claimed_accounts_take_nothing_from_the_unclaimed_pool(slots, provision, user):
    mine = claimed(provision, user, workers=3)  # first: oldest first
    strangers = [unclaimed(provision, origin) for origin in "abcd"]
    assert limits(mine) == ["", "", ""]
    assert all(limits(account) == [""] for account in strangers)  # pool of four
    late = unclaimed(provision, "e")
    assert limits(late) == [
        "The preview runtime runs as many unclaimed Workers as it may."
    ]


def test_an_owner_runs_up_to_their_quota_across_accounts(slots, provision, user):
    first = claimed(provision, user, workers=2)
    second = claimed(provision, user, workers=2)
    assert limits(first) == ["", ""]
    assert limits(second) == [
        "",
        "Your claimed accounts already run 3 live previews, the most one owner "
        "may have.",
    ]


def test_no_origin_holds_more_than_its_share_of_the_pool(slots, provision):
    greedy = [unclaimed(provision, "a", workers=2) for _ in range(2)]
    other = unclaimed(provision, "b")
    assert limits(greedy[0]) == ["", ""]  # its share: two of the four
    assert set(limits(greedy[1])) == {
        "Unclaimed accounts from this origin already run 2 live previews, their "
        "share of the runtime; claim an account to run more."
    }
    assert limits(other) == [""]  # the pool still has room for others


def test_idle_workers_stop_by_default():
    from claimportal.settings import base

    assert base.CLAIMPORTAL_PREVIEW_IDLE_SECONDS > 0
