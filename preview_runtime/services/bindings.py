"""Who may call a binding endpoint, and on what.

A Worker's bindings reach Django with its version's credential (bridge props,
which its code cannot see). Every call is checked afresh: the credential is
genuine, the account still serves previews, the version really has a binding
of that kind to that resource, and the resource belongs to the account.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Any

from accounts.exceptions import DomainError
from accounts.models import CloudAccount, D1Database, KVNamespace, Queue, WorkerVersion

from .specs import version_for_token


class BindingRefused(DomainError):
    code = 10403
    status = HTTPStatus.FORBIDDEN
    message = "This binding call is not allowed."


# kind -> (binding type in the upload, the binding's field naming the resource)
KINDS = {
    "kv": ("kv_namespace", "namespace_id"),
    "d1": ("d1", "id"),
    "queue": ("queue", "queue_name"),
}


@dataclass(frozen=True)
class BindingCall:
    version: WorkerVersion
    binding: dict[str, Any]
    resource: KVNamespace | D1Database | Queue


def _resource(
    kind: str, account: CloudAccount, resource_id: str
) -> KVNamespace | D1Database | Queue | None:
    if kind == "kv":
        return KVNamespace.objects.filter(account=account, pk=resource_id).first()
    if kind == "d1":
        try:
            pk = uuid.UUID(resource_id)
        except ValueError:
            return None
        return D1Database.objects.filter(account=account, pk=pk).first()
    return Queue.objects.filter(account=account, name=resource_id).first()


def authorize_binding(
    *, token: str | None, kind: str, resource_id: str, now: datetime
) -> BindingCall:
    """The version, binding and resource a call may use. Raises BindingRefused
    (the same answer whatever failed, so nothing leaks)."""
    if kind not in KINDS or not token:
        raise BindingRefused()
    version = version_for_token(token=token)
    if version is None or not version.script.account.is_live(now):
        raise BindingRefused()
    binding_type, field = KINDS[kind]
    binding = next(
        (
            b
            for b in version.bindings or []
            if b.get("type") == binding_type and str(b.get(field)) == resource_id
        ),
        None,
    )
    if binding is None:
        raise BindingRefused()
    resource = _resource(kind, version.script.account, resource_id)
    if resource is None:
        raise BindingRefused()
    return BindingCall(version=version, binding=binding, resource=resource)


def authorize_tracer(*, token: str | None, now: datetime) -> WorkerVersion:
    """The version whose tail Worker presents ``token``, if its account still
    serves previews. Raises BindingRefused."""
    version = version_for_token(token=token) if token else None
    if version is None or not version.script.account.is_live(now):
        raise BindingRefused()
    return version
