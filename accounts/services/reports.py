"""Abuse reports: anyone may file one against a cloud account (a preview or a
claim page links to the form); moderators see them in admin and mark them
handled."""

from datetime import datetime

from django.conf import settings
from django.db import transaction

from accounts.exceptions import NotFound
from accounts.models import AbuseReport, AuditEvent, CloudAccount, User
from accounts.services.audit import record_event
from accounts.services.provisioning import ClientOrigin
from accounts.services.ratelimit import enforce_rate_limit

REPORT_WINDOW = 3600  # seconds: the rate limit counts reports per hour


def reportable_account(*, account_id: str) -> CloudAccount | None:
    """The account a report may be filed against: any not yet purged."""
    return CloudAccount.objects.filter(pk=account_id, purged_at__isnull=True).first()


@transaction.atomic
def file_abuse_report(
    *,
    account_id: str,
    reason: str,
    contact_email: str,
    origin: ClientOrigin,
    now: datetime,
) -> AbuseReport:
    """Record a report and flag the account for moderators.

    Raises RateLimited past CLAIMPORTAL_REPORTS_PER_HOUR from one client, and
    NotFound for an unknown or purged account.
    """
    enforce_rate_limit(
        bucket=f"report:client:{origin.subject}",
        limit=settings.CLAIMPORTAL_REPORTS_PER_HOUR,
        window=REPORT_WINDOW,
        now=now,
        message="You have sent several reports just now. Try again in a while.",
    )
    account = reportable_account(account_id=account_id)
    if account is None:
        raise NotFound("There is no such deployment (it may have been deleted).")
    report = AbuseReport.objects.create(
        account=account,
        reason=reason,
        contact_email=contact_email,
        origin_hash=origin.origin_hash,
        created_at=now,
    )
    record_event(
        account=account,
        kind=AuditEvent.Kind.REPORTED,
        actor_label="reporter",
        origin_hash=origin.origin_hash,
        details={"report": report.pk},
    )
    return report


def mark_reports_handled(*, report_ids: list[int], actor: User, now: datetime) -> int:
    """Close open reports; returns how many were open. Handled ones stay as
    they were (who handled them, and when)."""
    still_open = AbuseReport.objects.filter(pk__in=report_ids, handled_at__isnull=True)
    return still_open.update(handled_at=now, handled_by=actor)
