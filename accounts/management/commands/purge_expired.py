"""Purge unclaimed accounts past their deadline now, as beat does every interval."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from accounts.services import purge

DRY_RUN_LISTED = 50


class Command(BaseCommand):
    help = (
        "Delete every unclaimed account past its deadline with all its data, "
        "and tombstones past retention. --dry-run lists what would go."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List what would be purged and change nothing.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="Accounts per transaction (default CLAIMPORTAL_PURGE_BATCH_SIZE).",
        )

    def handle(self, *args, dry_run: bool, batch_size: int | None, **options) -> None:
        now = timezone.now()
        if dry_run:
            self._list_due(now)
            return
        result = purge.purge_expired_accounts(
            now=now, batch_size=batch_size or settings.CLAIMPORTAL_PURGE_BATCH_SIZE
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Purged {result.accounts} account(s): {result.resources} row(s), "
                f"{result.files} file(s), {filesizeformat(result.bytes_deleted)}; "
                f"longest lag {result.max_lag_seconds:.1f} s; "
                f"{result.tombstones} tombstone(s) past retention deleted."
            )
        )

    def _list_due(self, now) -> None:
        due = purge.due_for_purge(now).order_by("claim_expires_at")
        total = due.count()
        for account in due[:DRY_RUN_LISTED]:
            overdue = (now - account.claim_expires_at).total_seconds()
            self.stdout.write(
                f"{account.pk}  {account.name:<24} {account.state:<9} "
                f"deadline {account.claim_expires_at:%Y-%m-%d %H:%M:%S} "
                f"({max(overdue, 0):.0f} s ago)"
            )
        if total > DRY_RUN_LISTED:
            self.stdout.write(f"… and {total - DRY_RUN_LISTED} more.")
        tombstones = purge.tombstones_due(now).count()
        self.stdout.write(
            f"Dry run: {total} account(s) would be purged, "
            f"{tombstones} tombstone(s) deleted. Nothing was changed."
        )
