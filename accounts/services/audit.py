"""The audit trail: every state change of a cloud account writes one row here."""

from typing import Any

from accounts.models import AuditEvent, CloudAccount, User


def record_event(
    *,
    account: CloudAccount,
    kind: AuditEvent.Kind,
    actor: User | None = None,
    actor_label: str = "",
    origin_hash: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        account=account,
        account_ref=account.pk,
        kind=kind,
        actor=actor,
        actor_label=actor_label or (actor.get_username() if actor else "system"),
        origin_hash=origin_hash,
        details=details or {},
    )
