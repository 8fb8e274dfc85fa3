"""Which UID an account's Workers run under: one per account, from
CLAIMPORTAL_PREVIEW_UID_RANGE, recorded in PreviewIdentity so every runtime
(and every restart) gives the account the same one and no other account ever
holds it while the first one has files or processes."""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q

from accounts.exceptions import DomainError
from accounts.models import CloudAccount, PreviewIdentity
from preview_runtime.sandbox import Identity


class NoIdentityLeft(DomainError):
    code = 10503
    status = 503
    message = "The preview runtime has no free identity for another account."


def uid_range() -> tuple[int, int]:
    first, _, last = settings.CLAIMPORTAL_PREVIEW_UID_RANGE.partition("-")
    return int(first), int(last or first)


def identity_for(*, account_id: str) -> Identity:
    """The account's identity, allocated on first use. A purged account's UID
    is given again only when the range is used up (its files are gone)."""
    # Many first deploys at once all try the next free UID. One that loses
    # the race looks again: the UID it tried is someone's now (so the next try
    # is higher), or this account has one. A failure that is neither (the
    # account is gone) would repeat, so it is raised.
    while True:
        found = PreviewIdentity.objects.filter(account_id=account_id).first()
        if found is not None:
            return Identity(found.uid, found.uid)
        first, last = uid_range()
        highest = PreviewIdentity.objects.aggregate(top=Max("uid"))["top"]
        uid = first if highest is None or highest < first else highest + 1
        reusing = uid > last
        try:
            with transaction.atomic():
                # The account's row before this table, the order a flush of
                # the tables takes them in too, so neither waits on the other.
                list(
                    CloudAccount.objects.select_for_update(no_key=True)
                    .filter(pk=account_id)
                    .values_list("pk", flat=True)
                )
                if reusing:
                    reused = (
                        PreviewIdentity.objects.select_for_update()
                        .filter(account__purged_at__isnull=False)
                        .order_by("uid")
                        .first()
                    )
                    if reused is None:
                        raise NoIdentityLeft()
                    uid = reused.uid
                    reused.delete()
                PreviewIdentity.objects.create(account_id=account_id, uid=uid)
            return Identity(uid, uid)
        except IntegrityError:
            lost_to = Q(account_id=account_id)
            if not reusing:
                lost_to |= Q(uid=uid)
            if not PreviewIdentity.objects.filter(lost_to).exists():
                raise
