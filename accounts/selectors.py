"""Reads shared by pages, the API and admin. Query counts do not grow with data."""

from django.db.models import QuerySet

from accounts.models import CloudAccount, User


def accounts_owned_by(*, user: User) -> QuerySet[CloudAccount]:
    return CloudAccount.objects.filter(owner=user).order_by("-claimed_at")
