"""What the preview runtime should be doing, read from the database: which
Worker versions run, under which host, with which banner, and which
subdomains answer "suspended", "expired" or "deleted". The runtime's reconcile loop
applies it, so any crash or restart converges on the database."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from accounts.models import CloudAccount, WorkerScript, ended_condition
from accounts.services.claims import account_claim_status, claim_page

# How long the edge keeps saying "expired" for a deleted account's subdomain.
GONE_RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class Target:
    """One Worker the runtime should serve."""

    key: str  # the runtime's name for the script: its primary key
    account_id: str
    script_name: str
    host: str  # "<script>.<subdomain>"
    version_id: str
    banner: str  # HTML injected into pages of unclaimed Workers
    has_durable_objects: bool
    cron: tuple[str, ...]
    limited: str = ""  # why it may not run now (a limit was reached)


@dataclass(frozen=True)
class Desired:
    targets: dict[str, Target]
    gone: dict[str, tuple[str, str]]  # subdomain -> (state, detail)
    # What may keep files on the runtime's disk: accounts not purged, and
    # (account id, script key) of every script they have.
    accounts: frozenset[str] = field(default_factory=frozenset)
    scripts: frozenset[tuple[str, str]] = field(default_factory=frozenset)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def report_url(*, account: CloudAccount) -> str:
    """Where a visitor reports abuse of this account's previews."""
    try:
        path = reverse("accounts:report", args=[account.pk])
    except NoReverseMatch:
        path = reverse("accounts:home")
    return settings.PUBLIC_BASE_URL + path


def banner_html(*, account: CloudAccount) -> str:
    """The strip every HTML page of an unclaimed Worker carries."""
    return format_html(
        '<div role="note" style="position:fixed;left:0;right:0;bottom:0;'
        "z-index:2147483647;padding:6px 12px;background:#fff7d6;color:#222;"
        'font:13px/1.4 system-ui,sans-serif;border-top:1px solid #e0c96b">'
        "Unclaimed preview, expires at {} · "
        '<a href="{}" style="color:#0645ad">report abuse</a></div>',
        _when(account.claim_expires_at),
        report_url(account=account),
    )


_ENDED_AT = {"deleted": "It was deleted at {}.", "expired": "It expired at {}."}


def _gone(now: datetime) -> dict[str, tuple[str, str]]:
    """The edge's page for each suspended or recently ended account's
    subdomain, as the claim status on its row names it."""
    state = CloudAccount.State
    ended = ended_condition(now)
    recent = Q(claim_expires_at__gte=now - GONE_RETENTION)
    accounts = CloudAccount.objects.filter(
        Q(state=state.SUSPENDED) | ended & recent
    ).only("subdomain", "state", "owner", "claim_expires_at", "declined_at")
    gone = {}
    for account in accounts:
        status = account_claim_status(account=account, user=None, now=now)
        page = claim_page(status).edge_page
        if page is not None:
            # An account ends at its deadline: a decline moves it to that moment.
            detail = _ENDED_AT.get(page, "").format(_when(account.claim_expires_at))
            gone[account.subdomain] = (page, detail)
    return gone


class _Slots:
    """Who may run how many Workers: each account up to its own limit; a
    claimed account on its owner's quota; an unclaimed one in the shared pool,
    where no one origin holds more than its share."""

    def __init__(self) -> None:
        self.per_account = settings.CLAIMPORTAL_PREVIEW_MAX_PER_ACCOUNT
        self.per_owner = settings.CLAIMPORTAL_PREVIEW_MAX_PER_OWNER
        self.pool = settings.CLAIMPORTAL_PREVIEW_UNCLAIMED_POOL
        share = settings.CLAIMPORTAL_PREVIEW_ORIGIN_SHARE_PERCENT
        self.per_origin = max(1, self.pool * share // 100)
        self.used: dict[tuple[str, Any], int] = {}

    def _count(self, key: tuple[str, Any]) -> int:
        return self.used.get(key, 0)

    def take(self, account: CloudAccount) -> str:
        """Take one slot for a Worker of ``account``; why not, if it may not run."""
        keys: list[tuple[str, Any]] = [("account", account.pk)]
        if self._count(keys[0]) >= self.per_account:
            return (
                f"This account already has {self.per_account} live previews, "
                "the most it may have."
            )
        if account.state == CloudAccount.State.CLAIMED:
            keys.append(("owner", account.owner_id))
            if self._count(keys[1]) >= self.per_owner:
                return (
                    f"Your claimed accounts already run {self.per_owner} live "
                    "previews, the most one owner may have."
                )
        else:
            keys += [("pool", None), ("origin", account.origin_hash)]
            if self._count(keys[1]) >= self.pool:
                return "The preview runtime runs as many unclaimed Workers as it may."
            if account.origin_hash and self._count(keys[2]) >= self.per_origin:
                return (
                    f"Unclaimed accounts from this origin already run "
                    f"{self.per_origin} live previews, their share of the runtime; "
                    "claim an account to run more."
                )
        for key in keys:
            self.used[key] = self._count(key) + 1
        return ""


def desired_previews(*, now: datetime) -> Desired:
    """The runtime's whole desired state, in a fixed number of queries.

    Workers of claimed and unexpired pending accounts run, oldest first, as
    far as their slots go (``_Slots``); the rest are marked ``limited``."""
    scripts = (
        WorkerScript.objects.filter(current_version__isnull=False)
        .select_related("account")
        .only(
            "pk",
            "name",
            "created_at",
            "cron_schedules",
            "current_version_id",
            "account__id",
            "account__subdomain",
            "account__state",
            "account__owner",
            "account__origin_hash",
            "account__claim_expires_at",
        )
        .order_by("created_at", "pk")
    )
    with_objects = set(
        WorkerScript.objects.filter(durable_object_namespaces__isnull=False)
        .values_list("pk", flat=True)
        .distinct()
    )
    slots = _Slots()
    targets = {}
    for script in scripts:
        account = script.account
        if not account.is_live(now):
            continue
        limited = slots.take(account)
        key = str(script.pk)
        targets[key] = Target(
            key=key,
            account_id=account.pk,
            script_name=script.name,
            host=f"{script.name}.{account.subdomain}".lower(),
            version_id=str(script.current_version_id),
            banner=(
                banner_html(account=account)
                if account.state == CloudAccount.State.PENDING
                else ""
            ),
            has_durable_objects=script.pk in with_objects,
            cron=tuple(
                str(entry.get("cron", entry)) if isinstance(entry, dict) else str(entry)
                for entry in (script.cron_schedules or [])
            ),
            limited=limited,
        )
    alive = CloudAccount.objects.filter(purged_at__isnull=True)
    scripts = WorkerScript.objects.filter(account__purged_at__isnull=True)
    return Desired(
        targets=targets,
        gone=_gone(now),
        accounts=frozenset(alive.values_list("pk", flat=True)),
        scripts=frozenset(
            (account_id, str(pk))
            for pk, account_id in scripts.values_list("pk", "account_id")
        ),
    )
