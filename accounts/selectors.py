"""Reads shared by pages, the API and admin. Query counts do not grow with data."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, QuerySet, Subquery

from accounts import tokens
from accounts.models import (
    ApiToken,
    AuditEvent,
    Certificate,
    ClaimLink,
    CloudAccount,
    D1Database,
    DurableObjectNamespace,
    HyperdriveConfig,
    KVNamespace,
    Queue,
    QueueConsumer,
    User,
    WorkerDeployment,
    WorkerScript,
    WorkerSecret,
)


def accounts_owned_by(*, user: User) -> QuerySet[CloudAccount]:
    return CloudAccount.objects.filter(owner=user).order_by("-claimed_at")


def owned_account(*, user: User, account_id: str) -> CloudAccount | None:
    return CloudAccount.objects.filter(owner=user, pk=account_id).first()


def claim_link_for_key(*, key: str) -> ClaimLink | None:
    """The link a raw claim key opens, with its account and whether the link
    holder deleted it (``declined``), in one query."""
    return (
        ClaimLink.objects.select_related("account")
        .annotate(
            declined=Exists(
                AuditEvent.objects.filter(
                    account_id=OuterRef("account_id"), kind=AuditEvent.Kind.DECLINED
                )
            )
        )
        .filter(key_hash=tokens.hash_secret(key))
        .first()
    )


def usable_tokens(*, account_id: str, now: datetime) -> list[ApiToken]:
    return list(ApiToken.objects.active(now).filter(account_id=account_id))


def preview_url(*, script: str, subdomain: str) -> str:
    """Where a Worker is served: a host of its own on the preview domain."""
    host = f"{script}.{subdomain}.{settings.CLAIMPORTAL_PREVIEW_DOMAIN}"
    return settings.CLAIMPORTAL_PREVIEW_BASE_URL.format(host=host)


# --- The inventory: everything a cloud account holds, as the claim page shows it --


@dataclass(frozen=True)
class Binding:
    name: str
    kind: str  # a label for people, e.g. "KV namespace"
    target: str  # what it points at, never a value


@dataclass(frozen=True)
class WorkerItem:
    name: str
    preview_url: str | None
    last_deployed_at: datetime | None
    compatibility_date: str
    compatibility_flags: list[str]
    bindings: list[Binding]
    var_names: list[str]
    secret_names: list[str]
    asset_files: int
    asset_bytes: int
    cron_schedules: list[str]


@dataclass(frozen=True)
class KVItem:
    title: str
    key_count: int


@dataclass(frozen=True)
class D1Item:
    name: str
    table_count: int
    file_size: int


@dataclass(frozen=True)
class DurableObjectItem:
    class_name: str
    script: str


@dataclass(frozen=True)
class QueueItem:
    name: str
    producers: list[str]
    consumers: list[str]


@dataclass(frozen=True)
class HyperdriveItem:
    name: str
    host: str
    port: Any
    database: str
    user: str


@dataclass(frozen=True)
class CertificateItem:
    name: str
    kind: str
    issuer: str
    expires_on: datetime | None


@dataclass
class Inventory:
    workers: list[WorkerItem] = field(default_factory=list)
    kv_namespaces: list[KVItem] = field(default_factory=list)
    d1_databases: list[D1Item] = field(default_factory=list)
    durable_objects: list[DurableObjectItem] = field(default_factory=list)
    queues: list[QueueItem] = field(default_factory=list)
    hyperdrive_configs: list[HyperdriveItem] = field(default_factory=list)
    certificates: list[CertificateItem] = field(default_factory=list)

    @property
    def assets(self) -> list[WorkerItem]:
        return [w for w in self.workers if w.asset_files]

    @property
    def resource_count(self) -> int:
        return sum(
            len(part)
            for part in (
                self.workers,
                self.kv_namespaces,
                self.d1_databases,
                self.durable_objects,
                self.queues,
                self.hyperdrive_configs,
                self.certificates,
            )
        )


# Binding types as Cloudflare's upload metadata names them: a label for people
# and the field that names what the binding points at.
BINDING_KINDS: dict[str, tuple[str, str | None]] = {
    "kv_namespace": ("KV namespace", "namespace_id"),
    "d1": ("D1 database", "id"),
    "durable_object_namespace": ("Durable Object", "class_name"),
    "queue": ("Queue producer", "queue_name"),
    "assets": ("Static assets", None),
    "hyperdrive": ("Hyperdrive", "id"),
    "mtls_certificate": ("mTLS certificate", "certificate_id"),
    "r2_bucket": ("R2 bucket", "bucket_name"),
    "service": ("Service", "service"),
    "analytics_engine": ("Analytics Engine", "dataset"),
    "workflow": ("Workflow", "workflow_name"),
    "plain_text": ("Variable", None),
    "json": ("Variable", None),
    "secret_text": ("Secret", None),
}
VAR_TYPES = {"plain_text", "json"}
SECRET_TYPES = {"secret_text", "secret_key"}


def _binding(raw: dict, names: dict[str, str]) -> Binding:
    kind = str(raw.get("type", ""))
    label, target_field = BINDING_KINDS.get(kind, (kind.replace("_", " "), None))
    target = ""
    if target_field:
        target = str(raw.get(target_field) or raw.get("database_id") or "")
        target = names.get(target, target)
    return Binding(name=str(raw.get("name", "")), kind=label, target=target)


def _asset_totals(assets: dict) -> tuple[int, int]:
    manifest = assets.get("manifest") if isinstance(assets, dict) else None
    if not isinstance(manifest, dict):
        return 0, 0
    size = sum(
        int(entry.get("size") or 0)
        for entry in manifest.values()
        if isinstance(entry, dict)
    )
    return len(manifest), size


def inventories(*, accounts: list[CloudAccount]) -> dict[str, Inventory]:
    """What each account holds, by account id: nine queries however many
    accounts and resources there are."""
    result = {account.pk: Inventory() for account in accounts}
    if not accounts:
        return result
    account_ids = list(result)
    subdomains = {account.pk: account.subdomain for account in accounts}

    kvs = KVNamespace.objects.filter(account_id__in=account_ids).annotate(
        key_count=Count("entries")
    )
    d1s = D1Database.objects.filter(account_id__in=account_ids)
    hyperdrives = HyperdriveConfig.objects.filter(account_id__in=account_ids).only(
        "id", "account_id", "name", "origin"
    )
    certificates = Certificate.objects.filter(account_id__in=account_ids).only(
        "id", "account_id", "name", "kind", "issuer", "expires_on"
    )
    # Bindings name resources by id; people know them by name.
    names: dict[str, str] = {}
    for kv in kvs:
        names[kv.id] = kv.title
        result[kv.account_id].kv_namespaces.append(KVItem(kv.title, kv.key_count))
    for d1 in d1s:
        names[str(d1.uuid)] = d1.name
        result[d1.account_id].d1_databases.append(
            D1Item(d1.name, d1.table_count, d1.file_size)
        )
    for hd in hyperdrives:
        names[hd.id] = hd.name
        origin = hd.origin if isinstance(hd.origin, dict) else {}
        result[hd.account_id].hyperdrive_configs.append(
            HyperdriveItem(
                name=hd.name,
                host=str(origin.get("host", "")),
                port=origin.get("port", ""),
                database=str(origin.get("database", "")),
                user=str(origin.get("user", "")),
            )
        )
    for cert in certificates:
        names[cert.id] = cert.name or cert.id
        result[cert.account_id].certificates.append(
            CertificateItem(
                cert.name or cert.id,
                cert.get_kind_display(),
                cert.issuer,
                cert.expires_on,
            )
        )

    secrets_by_script: dict[int, list[str]] = defaultdict(list)
    for script_id, name in WorkerSecret.objects.filter(
        script__account_id__in=account_ids
    ).values_list("script_id", "name"):
        secrets_by_script[script_id].append(name)

    last_deploy = WorkerDeployment.objects.filter(script=OuterRef("pk")).order_by(
        "-created_at"
    )
    scripts = (
        WorkerScript.objects.filter(account_id__in=account_ids)
        .select_related("current_version")
        .only(
            "id",
            "account_id",
            "name",
            "workers_dev_enabled",
            "cron_schedules",
            "updated_at",
            "current_version__id",
            "current_version__created_at",
            "current_version__compatibility_date",
            "current_version__compatibility_flags",
            "current_version__bindings",
            "current_version__assets",
        )
        .annotate(last_deployed_at=Subquery(last_deploy.values("created_at")[:1]))
    )
    producers: dict[tuple[str, str], list[str]] = defaultdict(list)
    for script in scripts:
        version = script.current_version
        raw_bindings = [
            b for b in (version.bindings if version else []) if isinstance(b, dict)
        ]
        files, size = _asset_totals(version.assets if version else {})
        secret_names = list(secrets_by_script.get(script.pk, []))
        for raw in raw_bindings:
            if raw.get("type") == "queue":
                producers[script.account_id, str(raw.get("queue_name"))].append(
                    script.name
                )
            if raw.get("type") in SECRET_TYPES and raw.get("name") not in secret_names:
                secret_names.append(str(raw.get("name")))
        result[script.account_id].workers.append(
            WorkerItem(
                name=script.name,
                preview_url=(
                    preview_url(
                        script=script.name, subdomain=subdomains[script.account_id]
                    )
                    if script.workers_dev_enabled
                    else None
                ),
                last_deployed_at=script.last_deployed_at
                or (version.created_at if version else None),
                compatibility_date=version.compatibility_date if version else "",
                compatibility_flags=list(version.compatibility_flags or [])
                if version
                else [],
                bindings=[_binding(raw, names) for raw in raw_bindings],
                var_names=[
                    str(raw.get("name"))
                    for raw in raw_bindings
                    if raw.get("type") in VAR_TYPES
                ],
                secret_names=sorted(secret_names),
                asset_files=files,
                asset_bytes=size,
                cron_schedules=[
                    str(c.get("cron", c)) if isinstance(c, dict) else str(c)
                    for c in script.cron_schedules or []
                ],
            )
        )

    for do in DurableObjectNamespace.objects.filter(account_id__in=account_ids).values(
        "account_id", "class_name", "script__name"
    ):
        result[do["account_id"]].durable_objects.append(
            DurableObjectItem(do["class_name"], do["script__name"])
        )

    consumers: dict[str, list[str]] = defaultdict(list)
    for queue_id, script_name, kind in QueueConsumer.objects.filter(
        queue__account_id__in=account_ids
    ).values_list("queue_id", "script_name", "type"):
        consumers[queue_id].append(script_name or f"{kind} consumer")
    for queue in Queue.objects.filter(account_id__in=account_ids).only(
        "id", "account_id", "name"
    ):
        result[queue.account_id].queues.append(
            QueueItem(
                name=queue.name,
                producers=producers.get((queue.account_id, queue.name), []),
                consumers=consumers.get(queue.id, []),
            )
        )
    return result


def inventory(*, account: CloudAccount) -> Inventory:
    return inventories(accounts=[account])[account.pk]
