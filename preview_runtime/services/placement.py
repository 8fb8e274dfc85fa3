"""Which runtime holds which account: rows, so several runtimes share the
work. A runtime reports in each time it reads the desired state (its row
names its state folder, where Django finds its sockets) and takes the
accounts no runtime holds yet while it is the least loaded live runtime
(ties go to the first name), so new accounts spread out and a runtime that
stopped reporting takes none. An account stays with the runtime that took
it: its files (Durable Object data included) are in that runtime's
``accounts/<account id>/``."""

from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q

from accounts.models import PreviewPlacement, PreviewRuntime
from accounts.selectors import Accounts, Read, read_together


def report_in(*, name: str, state_dir: Path, now: datetime) -> None:
    """Record that runtime ``name`` (sockets in ``state_dir``) is serving."""
    PreviewRuntime.objects.update_or_create(
        name=name, defaults={"state_dir": str(state_dir), "seen_at": now}
    )


def report_out(*, name: str) -> None:
    """Record that runtime ``name`` stopped: until it reports in again it
    takes no new accounts (and counts for none); it keeps those it holds."""
    PreviewRuntime.objects.filter(name=name).update(seen_at=None)


def live_runtimes(*, now: datetime):
    """Runtimes that reported in recently, by name."""
    since = now - timedelta(seconds=settings.CLAIMPORTAL_PREVIEW_RUNTIME_LIVE_SECONDS)
    return PreviewRuntime.objects.filter(seen_at__gte=since).order_by("name")


def take_accounts(*, runtime: str, account_ids: Iterable[str], now: datetime) -> None:
    """Place on ``runtime`` those of ``account_ids`` (in order) that no runtime
    holds, as long as it is the least loaded live runtime. The live runtimes'
    rows are locked meanwhile, so two runtimes never weigh up at once."""
    wanted = list(dict.fromkeys(account_ids))
    placed = set(
        PreviewPlacement.objects.filter(account_id__in=wanted).values_list(
            "account_id", flat=True
        )
    )
    unplaced = [a for a in wanted if a not in placed]
    if not unplaced:
        return
    with transaction.atomic():
        live = list(
            live_runtimes(now=now).select_for_update().values_list("name", flat=True)
        )
        if runtime not in live:
            return
        loads = dict.fromkeys(live, 0)
        loads |= dict(
            PreviewPlacement.objects.filter(
                runtime_id__in=live, account__purged_at__isnull=True
            )
            .values("runtime_id")
            .annotate(held=Count("pk"))
            .values_list("runtime_id", "held")
        )
        taken = set(
            PreviewPlacement.objects.filter(account_id__in=unplaced).values_list(
                "account_id", flat=True
            )
        )
        for account_id in unplaced:
            if account_id in taken:
                continue
            if min(loads, key=lambda name: (loads[name], name)) != runtime:
                return
            try:
                with transaction.atomic():
                    PreviewPlacement.objects.create(
                        account_id=account_id, runtime_id=runtime, placed_at=now
                    )
            except IntegrityError:  # purged meanwhile
                continue
            loads[runtime] += 1


def held_by(*, runtime: str) -> set[str]:
    """The accounts (not purged) placed on ``runtime``."""
    return set(
        PreviewPlacement.objects.filter(
            Q(runtime_id=runtime) & Q(account__purged_at__isnull=True)
        ).values_list("account_id", flat=True)
    )


def state_dirs() -> list[Path]:
    """Every runtime's state folder, this install's own (the setting) first."""
    own = Path(settings.CLAIMPORTAL_PREVIEW_STATE_DIR)
    recorded = [
        Path(d) for d in PreviewRuntime.objects.values_list("state_dir", flat=True)
    ]
    return list(dict.fromkeys([own, *recorded]))


# Written out as the claim page's other reads are (accounts/selectors.py), so
# pages send it in their one round trip.
_STATE_DIR_SQL = """
SELECT r.state_dir FROM accounts_previewplacement p
JOIN accounts_previewruntime r ON r.name = p.runtime_id
WHERE p.account_id IN ({accounts})
"""


def state_dir_read(*, account: Accounts) -> Read[Path]:
    """The state folder of the runtime holding the account (this install's
    own when none does yet), as a read that can go with a page's others."""
    return Read(
        [(_STATE_DIR_SQL.format(accounts=account.sql), account.params)], _state_dir_from
    )


def _state_dir_from(rows: list[tuple]) -> Path:
    return Path(rows[0][0] if rows else settings.CLAIMPORTAL_PREVIEW_STATE_DIR)


def state_dir_of(*, account_id: str) -> Path:
    return read_together(state_dir_read(account=Accounts.by_id([account_id])))[0]
