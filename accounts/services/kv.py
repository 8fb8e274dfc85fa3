"""Workers KV: namespaces of an account, and the keys and values inside them.

The key functions take a namespace row and are shared by the client/v4 API and
the preview runtime's KV binding, so both see the same data and the same rules.
"""

from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from accounts.exceptions import Conflict, DomainError, NotFound
from accounts.models import CloudAccount, KVNamespace
from accounts.services.validation import clean_text

TITLE_MAX_LENGTH = 512
NAMESPACE_ORDERINGS = {"id": "id", "title": "title"}


class NamespaceNotFound(NotFound):
    code = 10013
    message = "namespace not found"


class TooManyNamespaces(DomainError):
    code = 10018
    message = "This account has as many KV namespaces as it may have."


def list_namespaces(
    *, account: CloudAccount, order: str = "title", descending: bool = False
) -> QuerySet[KVNamespace]:
    field = NAMESPACE_ORDERINGS.get(order, "title")
    return account.kv_namespaces.order_by(f"-{field}" if descending else field, "id")


def get_namespace(*, account: CloudAccount, namespace_id: str) -> KVNamespace:
    """The account's namespace with that id; NamespaceNotFound otherwise."""
    namespace = account.kv_namespaces.filter(pk=namespace_id).first()
    if namespace is None:
        raise NamespaceNotFound()
    return namespace


def create_namespace(
    *, account: CloudAccount, title: str, now: datetime
) -> KVNamespace:
    """Create a namespace, or return the account's namespace of that title.

    Idempotent by title: wrangler re-creates auto-provisioned namespaces when a
    redeploy cannot inherit them (spec 3), and a duplicate error would abort it.
    Raises InvalidInput (bad title) and TooManyNamespaces.
    """
    title = clean_text(title, field="title", max_length=TITLE_MAX_LENGTH)
    existing = account.kv_namespaces.filter(title=title).first()
    if existing is not None:
        return existing
    if account.kv_namespaces.count() >= settings.CLAIMPORTAL_KV_MAX_NAMESPACES:
        raise TooManyNamespaces(
            f"An account may have {settings.CLAIMPORTAL_KV_MAX_NAMESPACES} KV "
            "namespaces; delete one first."
        )
    try:
        with transaction.atomic():
            return KVNamespace.objects.create(
                account=account, title=title, created_at=now
            )
    except IntegrityError:
        # Another request created the same title a moment ago: that one is ours too.
        return account.kv_namespaces.get(title=title)


@transaction.atomic
def rename_namespace(
    *, account: CloudAccount, namespace_id: str, title: str
) -> KVNamespace:
    """Give a namespace a new title. Raises NamespaceNotFound, Conflict."""
    title = clean_text(title, field="title", max_length=TITLE_MAX_LENGTH)
    namespace = (
        account.kv_namespaces.select_for_update().filter(pk=namespace_id).first()
    )
    if namespace is None:
        raise NamespaceNotFound()
    namespace.title = title
    try:
        with transaction.atomic():
            namespace.save(update_fields=["title"])
    except IntegrityError as exc:
        raise Conflict(
            "a namespace with this account ID and title already exists"
        ) from exc
    return namespace


@transaction.atomic
def delete_namespace(*, account: CloudAccount, namespace_id: str) -> None:
    """Delete a namespace and every key in it. Raises NamespaceNotFound.

    The row lock makes writers that are still inserting keys finish first, so the
    cascade sees their rows; writers that come later find no namespace.
    """
    namespace = (
        account.kv_namespaces.select_for_update().filter(pk=namespace_id).first()
    )
    if namespace is None:
        raise NamespaceNotFound()
    namespace.delete()
