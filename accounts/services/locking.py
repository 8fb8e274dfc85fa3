"""The one gate for every write to an account's resources."""

from datetime import datetime

from django.utils import timezone

from accounts.exceptions import AccountNotFound
from accounts.models import CloudAccount


def lock_live_account(*, account_id: str, now: datetime | None = None) -> CloudAccount:
    """Lock the account's row until the transaction ends and return it as it
    is now: a claim or a purge may have finished while this waited, so the
    state is checked after the lock, on the locked row.

    Every writer of any resource of an account (KV, D1, queues, Hyperdrive,
    certificates, Workers, assets) calls it first, inside its transaction, and
    checks quotas under it: the purge skips a locked account and a claim waits
    for it, so nothing is written to an account that is being purged or was
    purged a moment ago, and two creates cannot both pass a count.

    Raises AccountNotFound if the account is gone, expired or suspended.
    """
    locked = CloudAccount.objects.select_for_update().filter(pk=account_id).first()
    if locked is None or not locked.is_live(now or timezone.now()):
        raise AccountNotFound()
    return locked
