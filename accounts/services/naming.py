"""The name a person gives an account they own, in place of its machine name."""

from django.db import transaction

from accounts.exceptions import NotFound
from accounts.models import CloudAccount, User


@transaction.atomic
def rename_account(*, account_id: str, user: User, name: str) -> CloudAccount:
    """Give an account ``user`` owns a new name (shown on every page and in the
    API). Raises NotFound when the account is not the user's."""
    account = (
        CloudAccount.objects.select_for_update()
        .filter(pk=account_id, owner=user, state=CloudAccount.State.CLAIMED)
        .first()
    )
    if account is None:
        raise NotFound("No such account of yours.")
    account.name = name
    account.save(update_fields=["name"])
    return account
