"""Each account's preview identity (its UID) under real concurrent
transactions: first deploys of many accounts at once each get a UID of their
own, none is refused while the range has room, and a full range gives a purged
account's UID again."""

import threading

import pytest
from django.utils import timezone

from accounts.models import CloudAccount, PreviewIdentity
from preview_runtime.services.identity import NoIdentityLeft, identity_for
from tests.conftest import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNTS = 16  # as many first deploys at once as the API pool has threads


def test_first_deploys_of_many_accounts_at_once_each_get_their_own_uid(provision):
    accounts = [provision().account.pk for _ in range(ACCOUNTS)]
    waiting = list(accounts)
    lock = threading.Lock()

    def first_deploy():
        with lock:
            account_id = waiting.pop()
        return account_id, identity_for(account_id=account_id).uid

    given = dict(run_concurrently(first_deploy, ACCOUNTS))
    assert sorted(given) == sorted(accounts)
    assert len(set(given.values())) == ACCOUNTS
    stored = dict(PreviewIdentity.objects.values_list("account_id", "uid"))
    assert stored == given


def test_one_accounts_concurrent_first_deploys_agree_on_its_uid(provision):
    account_id = provision().account.pk
    given = run_concurrently(lambda: identity_for(account_id=account_id).uid, 8)
    assert len(set(given)) == 1
    assert PreviewIdentity.objects.get(account_id=account_id).uid == given[0]


def test_a_full_range_gives_a_purged_accounts_uid_again_or_refuses(provision, settings):
    settings.CLAIMPORTAL_PREVIEW_UID_RANGE = "300000-300001"
    gone, kept = (provision().account for _ in range(2))
    given = {a.pk: identity_for(account_id=a.pk).uid for a in (gone, kept)}
    assert sorted(given.values()) == [300000, 300001]
    CloudAccount.objects.filter(pk=gone.pk).update(purged_at=timezone.now())

    newcomer = provision().account
    assert identity_for(account_id=newcomer.pk).uid == given[gone.pk]
    with pytest.raises(NoIdentityLeft):
        identity_for(account_id=provision().account.pk)
