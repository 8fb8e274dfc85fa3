"""Rows of claimportal and the predicates that concern one row.

A *cloud account* is what an agent provisions and a person claims; a *user* is the
person's login. Every resource hangs off a cloud account and is deleted with it.
"""

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone

from . import tokens


class User(AbstractUser):
    """A person who signs in to claim and own cloud accounts."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class Event(models.Model):
    """A hackathon or workshop whose code gives temporary accounts its own terms."""

    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    claim_window = models.DurationField(
        help_text="How long accounts made under this event wait for a claim."
    )
    quota = models.PositiveIntegerField(
        help_text="How many accounts the event may make."
    )
    accounts_created = models.PositiveIntegerField(default=0, editable=False)
    disabled = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-starts_at"]

    def __str__(self) -> str:
        return self.code

    @property
    def seats_left(self) -> int:
        return max(self.quota - self.accounts_created, 0)


# The account rules, written once each: these conditions, the QuerySet methods
# that filter by them, and the CloudAccount predicates of the same names.


def _deadline_passed(now: datetime) -> Q:
    return Q(claim_expires_at__lte=now)


def live_condition(now: datetime) -> Q:
    """Accounts that serve and take writes: claimed, or pending in time."""
    state = CloudAccount.State
    return Q(state=state.CLAIMED) | Q(state=state.PENDING) & ~_deadline_passed(now)


def preview_label(*, script_name: str, subdomain: str) -> str:
    """A Worker's host below the preview domain, as workers.dev names it
    (``<worker>.<subdomain>``): what the edge routes and every link points at."""
    return f"{script_name}.{subdomain}".lower()


def preview_url(*, script_name: str, subdomain: str) -> str:
    """Where a Worker is served: its own host on the preview domain."""
    label = preview_label(script_name=script_name, subdomain=subdomain)
    host = f"{label}.{settings.CLAIMPORTAL_PREVIEW_DOMAIN}"
    return settings.CLAIMPORTAL_PREVIEW_BASE_URL.format(host=host)


def ended_condition(now: datetime) -> Q:
    """Expired accounts, and pending ones past their deadline that the purge
    has not reached yet: to everyone outside, expired already."""
    state = CloudAccount.State
    return Q(state=state.EXPIRED) | Q(state=state.PENDING) & _deadline_passed(now)


def due_condition(now: datetime) -> Q:
    """What the purge deletes: unclaimed accounts past their deadline (a
    suspension does not save them: nobody owns them), and accounts already
    expired but not yet purged."""
    state = CloudAccount.State
    unclaimed = Q(state=state.PENDING) | Q(
        state=state.SUSPENDED, state_before_suspension=state.PENDING
    )
    return unclaimed & _deadline_passed(now) | Q(
        state=state.EXPIRED, purged_at__isnull=True
    )


class CloudAccountQuerySet(models.QuerySet):
    def pending(self) -> "CloudAccountQuerySet":
        return self.filter(state=CloudAccount.State.PENDING)

    def past_deadline(self, now: datetime) -> "CloudAccountQuerySet":
        """Pending accounts whose deadline has passed."""
        return self.pending().filter(_deadline_passed(now))

    def live(self, now: datetime) -> "CloudAccountQuerySet":
        return self.filter(live_condition(now))

    def ended(self, now: datetime) -> "CloudAccountQuerySet":
        return self.filter(ended_condition(now))

    def due(self, now: datetime) -> "CloudAccountQuerySet":
        return self.filter(due_condition(now))

    def awaiting_purge(self) -> "CloudAccountQuerySet":
        return self.filter(state=CloudAccount.State.EXPIRED, purged_at__isnull=True)


class CloudAccount(models.Model):
    """A Cloudflare-shaped account: temporary until a person claims it."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting for a claim"
        CLAIMED = "claimed", "Claimed"
        EXPIRED = "expired", "Expired"
        SUSPENDED = "suspended", "Suspended"

    id = models.CharField(
        primary_key=True, max_length=32, default=tokens.new_account_id, editable=False
    )
    name = models.CharField(max_length=100)
    subdomain = models.CharField(max_length=63, unique=True)
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.PENDING, db_index=True
    )
    # Where a suspended account returns to when a moderator lifts the suspension.
    state_before_suspension = models.CharField(
        max_length=16, choices=State.choices, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The one deadline: the last moment to claim, when an unclaimed account ends
    # and is purged. Its claim link, the API and the banner all read it here.
    claim_expires_at = models.DateTimeField(
        help_text="The last moment to claim; an unclaimed account ends then."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="cloud_accounts",
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the holder of its claim link deleted it instead of claiming.",
    )
    purged_at = models.DateTimeField(null=True, blank=True)
    terms_of_service_url = models.URLField(max_length=500, blank=True)
    privacy_policy_url = models.URLField(max_length=500, blank=True)
    terms_accepted_at = models.DateTimeField(null=True, blank=True)
    origin_hash = models.CharField(
        max_length=64,
        blank=True,
        db_index=True,
        help_text="Keyed hash of the client IP.",
    )
    origin_hint = models.CharField(
        max_length=64, blank=True, help_text="Coarse origin shown to the claimant."
    )
    user_agent = models.CharField(max_length=300, blank=True)
    event = models.ForeignKey(
        Event,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="accounts",
    )

    objects = CloudAccountQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "claim_expires_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    def is_past_deadline(self, now: datetime) -> bool:
        return now >= self.claim_expires_at

    def is_claimable(self, now: datetime) -> bool:
        return self.state == self.State.PENDING and not self.is_past_deadline(now)

    def is_live(self, now: datetime) -> bool:
        """Serves and takes writes: claimed, or pending in time."""
        return self.state == self.State.CLAIMED or self.is_claimable(now)

    def is_ended(self, now: datetime) -> bool:
        """Expired, or pending past its deadline (the purge is on its way)."""
        return self.state == self.State.EXPIRED or (
            self.state == self.State.PENDING and self.is_past_deadline(now)
        )

    def is_due(self, now: datetime) -> bool:
        """The purge deletes it (see due_condition)."""
        unclaimed = self.state == self.State.PENDING or (
            self.state == self.State.SUSPENDED
            and self.state_before_suspension == self.State.PENDING
        )
        return (unclaimed and self.is_past_deadline(now)) or (
            self.state == self.State.EXPIRED and self.purged_at is None
        )


class ApiTokenQuerySet(models.QuerySet):
    def active(self, now: datetime) -> "ApiTokenQuerySet":
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A bearer token scoped to one cloud account. Only its hash is stored."""

    class Kind(models.TextChoices):
        TEMPORARY = "temporary", "Temporary (the agent's)"
        AGENT_GRACE = "agent_grace", "Agent, kept after claim"
        OWNER = "owner", "Created by the owner"

    class RevokedBecause(models.TextChoices):
        CLAIMED = "claimed", "The account was claimed"
        EXPIRED = "expired", "The account expired and was deleted"
        SUSPENDED = "suspended", "A moderator suspended the account"
        MODERATOR = "moderator", "A moderator revoked it"
        OWNER = "owner", "The owner revoked it"

    account = models.ForeignKey(
        CloudAccount, on_delete=models.CASCADE, related_name="tokens"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=tokens.VISIBLE_PREFIX_LENGTH, db_index=True)
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_because = models.CharField(
        max_length=16, choices=RevokedBecause.choices, blank=True
    )

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.get_kind_display()})"

    def is_usable(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now


class ClaimLink(models.Model):
    """The one-shot link a person opens to claim a cloud account."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        USED = "used", "Used"
        REVOKED = "revoked", "Revoked"

    account = models.ForeignKey(
        CloudAccount, on_delete=models.CASCADE, related_name="claim_links"
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"claim link for {self.account_id} ({self.state})"

    @property
    def deadline(self) -> datetime:
        """The last moment the link can be used: its account's deadline."""
        return self.account.claim_expires_at


class AuditEvent(models.Model):
    """One row per state change. Kept (detached) when its account row is deleted."""

    class Kind(models.TextChoices):
        PROVISIONED = "provisioned", "Provisioned"
        DEPLOYED = "deployed", "Deployed"
        CLAIMED = "claimed", "Claimed"
        DECLINED = "declined", "Declined and deleted"
        EXPIRED = "expired", "Expired"
        PURGED = "purged", "Purged"
        SUSPENDED = "suspended", "Suspended"
        UNSUSPENDED = "unsuspended", "Unsuspended"
        EXTENDED = "extended", "Claim window extended"
        TOKEN_CREATED = "token_created", "Token created"
        TOKEN_REVOKED = "token_revoked", "Token revoked"
        ORIGIN_BLOCKED = "origin_blocked", "Origin blocked"
        REPORTED = "reported", "Abuse reported"

    account = models.ForeignKey(
        CloudAccount,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    account_ref = models.CharField(max_length=32, db_index=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_label = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    origin_hash = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.account_ref} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class BlockedOrigin(models.Model):
    """A network (CIDR) or origin hash that may not provision accounts."""

    network = models.CharField(
        max_length=64,
        blank=True,
        help_text="An IP address or CIDR, e.g. 203.0.113.0/24",
    )
    origin_hash = models.CharField(max_length=64, blank=True, db_index=True)
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(network="") | ~Q(origin_hash=""),
                name="blocked_origin_has_network_or_hash",
            )
        ]

    def __str__(self) -> str:
        return self.network or f"origin {self.origin_hash[:12]}…"


class AbuseReport(models.Model):
    account = models.ForeignKey(
        CloudAccount, on_delete=models.CASCADE, related_name="abuse_reports"
    )
    reason = models.TextField(max_length=2000)
    contact_email = models.EmailField(blank=True)
    origin_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    handled_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"report on {self.account_id} at {self.created_at:%Y-%m-%d %H:%M}"


class PurgeRun(models.Model):
    """What one purge pass did, for the admin's operations summary."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    accounts = models.PositiveIntegerField(default=0)
    resources = models.PositiveIntegerField(default=0)
    bytes_deleted = models.PositiveBigIntegerField(default=0)
    max_lag_seconds = models.FloatField(default=0)

    class Meta:
        ordering = ["-started_at"]


# --- Resources: everything a deploy creates, all cascading with the account ---------


# Every byte an account holds in default storage lives under this folder, so
# purge can find it all, orphans of failed uploads included.
ACCOUNT_STORAGE_ROOT = "accounts"


def account_storage_prefix(account_id: str) -> str:
    return f"{ACCOUNT_STORAGE_ROOT}/{account_id}"


def hex_id() -> str:
    return uuid.uuid4().hex


class WorkerScript(models.Model):
    account = models.ForeignKey(
        CloudAccount, on_delete=models.CASCADE, related_name="workers"
    )
    name = models.CharField(max_length=63)
    tag = models.CharField(max_length=32, default=hex_id)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    current_version = models.ForeignKey(
        "WorkerVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    migration_tag = models.CharField(max_length=100, blank=True)
    workers_dev_enabled = models.BooleanField(default=False)
    previews_enabled = models.BooleanField(default=False)
    cron_schedules = models.JSONField(default=list, blank=True)
    # observability, tags, logpush, tail consumers: kept as wrangler sent them.
    script_settings = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "name"], name="unique_worker_name_per_account"
            )
        ]

    def __str__(self) -> str:
        return self.name


class WorkerVersion(models.Model):
    """One upload of a Worker: modules, resolved bindings and config, immutable."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    script = models.ForeignKey(
        WorkerScript, on_delete=models.CASCADE, related_name="versions"
    )
    number = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    etag = models.CharField(max_length=64, default=hex_id)
    main_module = models.CharField(max_length=255, blank=True)
    compatibility_date = models.CharField(max_length=10, blank=True)
    compatibility_flags = models.JSONField(default=list, blank=True)
    # Bindings with every id resolved (no "inherit"), in upload-metadata shape.
    bindings = models.JSONField(default=list, blank=True)
    # The whole upload metadata as received, less secrets, for faithful re-rendering.
    metadata = models.JSONField(default=dict, blank=True)
    # Static assets: {"manifest": {path: {"hash", "size"}}, "config": {...}}.
    assets = models.JSONField(default=dict, blank=True)
    annotations = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=32, default="wrangler")
    startup_time_ms = models.PositiveIntegerField(null=True, blank=True)
    # The secrets this version runs with, {name: [type, value]}: write-only, as
    # WorkerSecret (which holds those of the deployed version).
    secrets = models.JSONField(default=dict, blank=True)
    # What the inventory shows of this version, worked out once when it is
    # stored (version_summary) so pages do not parse bindings and manifest.
    shown_bindings = models.JSONField(default=list, blank=True)
    asset_files = models.PositiveIntegerField(default=0)
    asset_bytes = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["script", "number"], name="unique_version_number_per_script"
            )
        ]

    def __str__(self) -> str:
        return f"{self.script_id} v{self.number}"


# The field of each binding type that names what it points at: an id the
# inventory turns into the resource's current name, or a name.
BINDING_TARGETS: dict[str, str] = {
    "kv_namespace": "namespace_id",
    "d1": "id",
    "durable_object_namespace": "class_name",
    "queue": "queue_name",
    "hyperdrive": "id",
    "mtls_certificate": "certificate_id",
    "r2_bucket": "bucket_name",
    "service": "service",
    "analytics_engine": "dataset",
    "workflow": "workflow_name",
}


def version_summary(*, bindings: Any, assets: Any) -> dict[str, Any]:
    """WorkerVersion's shown_bindings, asset_files and asset_bytes for these
    bindings and assets: each binding as [type, name, target] (never a
    value), and the manifest's file count and total size."""
    shown = []
    for raw in bindings if isinstance(bindings, list) else []:
        if not isinstance(raw, dict):
            continue
        kind = str(raw.get("type", ""))
        target_field = BINDING_TARGETS.get(kind)
        target = (
            str(raw.get(target_field) or raw.get("database_id") or "")
            if target_field
            else ""
        )
        shown.append([kind, str(raw.get("name", "")), target])
    manifest = assets.get("manifest") if isinstance(assets, dict) else None
    entries = manifest.values() if isinstance(manifest, dict) else []
    return {
        "shown_bindings": shown,
        "asset_files": len(entries),
        "asset_bytes": sum(
            int(entry.get("size") or 0) for entry in entries if isinstance(entry, dict)
        ),
    }


class WorkerModule(models.Model):
    version = models.ForeignKey(
        WorkerVersion, on_delete=models.CASCADE, related_name="modules"
    )
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    content = models.BinaryField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "name"], name="unique_module_name_per_version"
            )
        ]

    def __str__(self) -> str:
        return self.name


class WorkerDeployment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    script = models.ForeignKey(
        WorkerScript, on_delete=models.CASCADE, related_name="deployments"
    )
    created_at = models.DateTimeField(default=timezone.now)
    strategy = models.CharField(max_length=32, default="percentage")
    versions = models.JSONField(default=list)
    annotations = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=32, default="wrangler")

    class Meta:
        ordering = ["-created_at"]


class WorkerSecret(models.Model):
    """Write-only: the value is used by the runtime and never shown back."""

    script = models.ForeignKey(
        WorkerScript, on_delete=models.CASCADE, related_name="secrets"
    )
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=32, default="secret_text")
    value = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["script", "name"], name="unique_secret_name_per_script"
            )
        ]


class WorkerTail(models.Model):
    """A live-log session (``wrangler tail``): the filters it asked for, and the
    hash of the key in its WebSocket URL (shown once, at creation)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    script = models.ForeignKey(
        WorkerScript, on_delete=models.CASCADE, related_name="tails"
    )
    key_hash = models.CharField(max_length=64, unique=True)
    filters = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()


class WorkerEvent(models.Model):
    """One invocation of a Worker as the runtime traced it (request, cron,
    queue batch), in wrangler's tail shape, secrets redacted. Only the most
    recent few per script are kept."""

    script = models.ForeignKey(
        WorkerScript, on_delete=models.CASCADE, related_name="events"
    )
    version_id = models.CharField(max_length=36, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    data = models.JSONField(default=dict)

    class Meta:
        indexes = [models.Index(fields=["script", "id"], name="worker_event_recent")]


class AssetUploadSession(models.Model):
    """The manifest wrangler announced, and which blobs it still has to send."""

    account = models.ForeignKey(
        CloudAccount, on_delete=models.CASCADE, related_name="asset_upload_sessions"
    )
    script_name = models.CharField(max_length=63)
    manifest = models.JSONField(default=dict)
    upload_token_hash = models.CharField(max_length=64, unique=True)
    completion_token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()


class AssetBlob(models.Model):
    """Content-addressed bytes of one static asset, kept in default storage."""

    account = models.ForeignKey(
        CloudAccount, on_delete=models.CASCADE, related_name="asset_blobs"
    )
    hash = models.CharField(max_length=32)
    size = models.PositiveBigIntegerField()
    content_type = models.CharField(max_length=100, blank=True)
    storage_name = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "hash"], name="unique_asset_hash_per_account"
            )
        ]


class KVNamespace(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=hex_id)
    account = models.ForeignKey(
        CloudAccount, on_delete=models.CASCADE, related_name="kv_namespaces"
    )
    title = models.CharField(max_length=512)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "title"], name="unique_kv_title_per_account"
            )
        ]

    def __str__(self) -> str:
        return self.title


class KVEntry(models.Model):
    namespace = models.ForeignKey(
        KVNamespace, on_delete=models.CASCADE, related_name="entries"
    )
    key = models.CharField(max_length=512)
    value = models.BinaryField()
    metadata = models.JSONField(null=True, blank=True)
    expiration = models.BigIntegerField(
        null=True, blank=True, help_text="Unix seconds after which the key is gone."
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(
                fields=["namespace", "key"], name="unique_kv_key_per_namespace"
            )
        ]


class D1Database(models.Model):
    """A real SQLite database, one file in default storage per database."""

    uuid = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(
        CloudAccount, on_delete=models.CASCADE, related_name="d1_databases"
    )
    name = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)
    storage_name = models.CharField(max_length=255, blank=True)
    file_size = models.PositiveBigIntegerField(default=0)
    table_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "name"], name="unique_d1_name_per_account"
            )
        ]

    def __str__(self) -> str:
        return self.name


class D1QueryStats(models.Model):
    """What one SQL text cost a D1 database in one hour: D1's analytics."""

    database = models.ForeignKey(
        D1Database, on_delete=models.CASCADE, related_name="query_stats"
    )
    hour = models.DateTimeField()
    query = models.TextField()
    count = models.PositiveBigIntegerField(default=0)
    read_queries = models.PositiveBigIntegerField(default=0)
    write_queries = models.PositiveBigIntegerField(default=0)
    rows_read = models.PositiveBigIntegerField(default=0)
    rows_written = models.PositiveBigIntegerField(default=0)
    rows_returned = models.PositiveBigIntegerField(default=0)
    duration_ms = models.FloatField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["database", "hour", "query"],
                name="one_stats_row_per_query_hour",
            )
        ]


class DurableObjectNamespace(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=hex_id)
    account = models.ForeignKey(
        CloudAccount, on_delete=models.CASCADE, related_name="durable_object_namespaces"
    )
    script = models.ForeignKey(
        WorkerScript, on_delete=models.CASCADE, related_name="durable_object_namespaces"
    )
    class_name = models.CharField(max_length=255)
    use_sqlite = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["class_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["script", "class_name"], name="unique_do_class_per_script"
            )
        ]

    def __str__(self) -> str:
        return self.class_name


class Queue(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=hex_id)
    account = models.ForeignKey(
        CloudAccount, on_delete=models.CASCADE, related_name="queues"
    )
    name = models.CharField(max_length=63)
    settings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    modified_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "name"], name="unique_queue_name_per_account"
            )
        ]

    def __str__(self) -> str:
        return self.name


class EventSubscription(models.Model):
    """Platform events of one source (e.g. KV) delivered to a queue of the
    account; Cloudflare allows one subscription per source per account."""

    id = models.CharField(primary_key=True, max_length=32, default=hex_id)
    account = models.ForeignKey(
        CloudAccount, on_delete=models.CASCADE, related_name="event_subscriptions"
    )
    name = models.CharField(max_length=255)
    source_type = models.CharField(max_length=64)
    source = models.JSONField(default=dict)
    events = models.JSONField(default=list)
    queue = models.ForeignKey(
        Queue, on_delete=models.CASCADE, related_name="event_subscriptions"
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    modified_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "source_type"],
                name="one_event_subscription_per_source",
            )
        ]

    def __str__(self) -> str:
        return self.name


class QueueConsumer(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=hex_id)
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="consumers")
    type = models.CharField(max_length=16, default="worker")
    script_name = models.CharField(max_length=63, blank=True)
    settings = models.JSONField(default=dict, blank=True)
    dead_letter_queue = models.CharField(max_length=63, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]


class QueueMessage(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="messages")
    body = models.BinaryField()
    content_type = models.CharField(max_length=16, default="json")
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    visible_at = models.DateTimeField(default=timezone.now, db_index=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["visible_at", "created_at"]


class HyperdriveConfig(models.Model):
    """A database connection config. The password is write-only."""

    id = models.CharField(primary_key=True, max_length=32, default=hex_id)
    account = models.ForeignKey(
        CloudAccount, on_delete=models.CASCADE, related_name="hyperdrive_configs"
    )
    name = models.CharField(max_length=255)
    origin = models.JSONField(default=dict, help_text="Host, port, database, user.")
    password = models.TextField(blank=True)
    caching = models.JSONField(default=dict, blank=True)
    mtls = models.JSONField(
        default=dict, blank=True, help_text="Certificate ids and sslmode."
    )
    origin_connection_limit = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    modified_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "name"], name="unique_hyperdrive_name_per_account"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Certificate(models.Model):
    """An uploaded mTLS certificate or CA. A private key is never shown back."""

    class Kind(models.TextChoices):
        MTLS = "mtls", "mTLS certificate"
        CA = "ca", "Certificate authority"

    id = models.CharField(primary_key=True, max_length=32, default=hex_id)
    account = models.ForeignKey(
        CloudAccount, on_delete=models.CASCADE, related_name="certificates"
    )
    name = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    certificate = models.TextField()
    private_key = models.TextField(blank=True)
    issuer = models.CharField(max_length=500, blank=True)
    serial_number = models.CharField(max_length=100, blank=True)
    signature = models.CharField(max_length=100, blank=True)
    expires_on = models.DateTimeField(null=True, blank=True)
    uploaded_on = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["uploaded_on"]

    def __str__(self) -> str:
        return self.name or self.id


class PreviewIdentity(models.Model):
    """The UID (and GID, the same number) an account's Workers run under in the
    preview runtime: recorded so it survives restarts and is never shared."""

    account = models.OneToOneField(
        CloudAccount, on_delete=models.CASCADE, related_name="preview_identity"
    )
    uid = models.PositiveIntegerField(unique=True)

    def __str__(self) -> str:
        return f"{self.account_id}: {self.uid}"


class PreviewRuntime(models.Model):
    """One preview runtime (``manage.py preview_runtime``): its name
    (CLAIMPORTAL_PREVIEW_RUNTIME_NAME), the state folder its sockets are in,
    and when it last read the desired state (it does every few seconds; None
    once it stopped)."""

    name = models.SlugField(primary_key=True, max_length=40)
    state_dir = models.CharField(max_length=500)
    seen_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return self.name


class PreviewPlacement(models.Model):
    """Which runtime holds an account's Workers (and keeps their files, in
    ``accounts/<account id>/`` of its state folder). Written by the runtime
    when it takes the account; one runtime per account."""

    account = models.OneToOneField(
        CloudAccount,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="preview_placement",
    )
    runtime = models.ForeignKey(
        PreviewRuntime, on_delete=models.PROTECT, related_name="placements"
    )
    placed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.account_id} on {self.runtime_id}"
