"""A claim's state lives on the account's row: ``declined_at`` replaces reading
the audit trail for "declined", and ``claim_expires_at`` becomes the one
deadline (the account's ``expires_at`` and the link's ``expires_at`` go)."""

from django.db import migrations, models
from django.db.models import F, Min, OuterRef, Subquery
from django.db.models.functions import Least


def _earliest(rows, field: str) -> Subquery:
    """The earliest ``field`` of ``rows`` that belong to the outer account."""
    return Subquery(
        rows.filter(account=OuterRef("pk"))
        .order_by()
        .values("account")
        .annotate(at=Min(field))
        .values("at")
    )


def move_state_onto_rows(apps, schema_editor):
    CloudAccount = apps.get_model("accounts", "CloudAccount")
    AuditEvent = apps.get_model("accounts", "AuditEvent")
    ClaimLink = apps.get_model("accounts", "ClaimLink")
    declines = AuditEvent.objects.filter(kind="declined")
    CloudAccount.objects.filter(pk__in=declines.values("account")).update(
        declined_at=_earliest(declines, "created_at")
    )
    # The deadline that decided was the earliest of the three; keep that one.
    CloudAccount.objects.update(
        claim_expires_at=Least("claim_expires_at", "expires_at")
    )
    active_links = ClaimLink.objects.filter(state="active")
    CloudAccount.objects.filter(
        state="pending",
        claim_links__state="active",
        claim_links__expires_at__lt=F("claim_expires_at"),
    ).update(claim_expires_at=_earliest(active_links, "expires_at"))


def copy_deadline_back(apps, schema_editor):
    CloudAccount = apps.get_model("accounts", "CloudAccount")
    ClaimLink = apps.get_model("accounts", "ClaimLink")
    CloudAccount.objects.update(expires_at=F("claim_expires_at"))
    ClaimLink.objects.update(
        expires_at=Subquery(
            CloudAccount.objects.filter(pk=OuterRef("account")).values(
                "claim_expires_at"
            )
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_d1_query_stats"),
    ]

    operations = [
        migrations.AddField(
            model_name="cloudaccount",
            name="declined_at",
            field=models.DateTimeField(
                blank=True,
                help_text=(
                    "When the holder of its claim link deleted it instead of "
                    "claiming."
                ),
                null=True,
            ),
        ),
        # Nullable first, so that going back can re-add them before filling them.
        migrations.AlterField(
            model_name="cloudaccount",
            name="expires_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.AlterField(
            model_name="claimlink",
            name="expires_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(move_state_onto_rows, copy_deadline_back),
        migrations.RemoveField(model_name="cloudaccount", name="expires_at"),
        migrations.RemoveField(model_name="claimlink", name="expires_at"),
        migrations.AlterField(
            model_name="cloudaccount",
            name="claim_expires_at",
            field=models.DateTimeField(
                help_text="The last moment to claim; an unclaimed account ends then."
            ),
        ),
    ]
