"""What a script upload's bindings and Durable Object migrations mean.

Bindings arrive as ``NewBinding`` values, each already in the shape its type
declares (the API reads the upload metadata, spec 4.9). They are resolved against
the current version (``inherit``, ``keep_bindings``), checked against the
account's real resources, and stored resolved, so ``/settings`` can hand them
back and a later redeploy can inherit them again. Secret values are split off:
they live on the script (WorkerSecret), never in a version.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from accounts.exceptions import InvalidInput, PayloadTooLarge
from accounts.models import CloudAccount, DurableObjectNamespace, WorkerScript

SECRET_TYPES = {"secret_text", "secret_key"}
NAME_MAX_LENGTH = 255


class BindingInvalid(InvalidInput):
    # wrangler prints the message of a 10021 (source-mapped) and branches on it.
    code = 10021


class MigrationInvalid(InvalidInput):
    code = 10079


R2_REFUSED = (
    "binding {name} of type r2_bucket is not supported: R2 is not available on "
    "claimportal temporary accounts. Remove the r2_buckets entry from your "
    "Wrangler configuration (or keep the files as static assets) and deploy again."
)


@dataclass(frozen=True)
class NewBinding:
    """One binding of an upload: its name, its type and the fields its type
    takes (``namespace_id``, ``text`` ...), as they will be stored and shown
    back. ``inherit`` takes no fields: the current version's binding of that
    name is used."""

    name: str
    type: str
    fields: dict[str, Any] = field(default_factory=dict)

    def stored(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, **self.fields}


@dataclass(frozen=True)
class ClassMove:
    """A Durable Object class renamed (``from_script`` empty) or moved here
    from another Worker of the account."""

    old: str
    new: str
    from_script: str = ""


@dataclass(frozen=True)
class MigrationStep:
    new_classes: list[str] = field(default_factory=list)
    new_sqlite_classes: list[str] = field(default_factory=list)
    renamed_classes: list[ClassMove] = field(default_factory=list)
    deleted_classes: list[str] = field(default_factory=list)
    transferred_classes: list[ClassMove] = field(default_factory=list)


@dataclass(frozen=True)
class Migrations:
    """Durable Object migrations: ``old_tag`` is the tag the Worker must be at
    (None: no condition), ``new_tag`` the one it moves to."""

    old_tag: str | None = None
    new_tag: str | None = None
    steps: list[MigrationStep] = field(default_factory=list)


@dataclass(frozen=True)
class ResolvedBindings:
    bindings: list[dict[str, Any]]  # no secrets, every id resolved
    secrets: dict[str, tuple[str, str]]  # name -> (type, value) sent in this upload
    keep_secrets: bool


def checked_secret(
    *, name: str, kind: str, text: Any, key: dict[str, Any]
) -> tuple[str, str]:
    """(type, value) of a secret as a version stores it: a secret_text's
    ``text``, or a secret_key's ``key`` material and algorithm kept together
    as JSON. Raises BindingInvalid, PayloadTooLarge."""
    if kind == "secret_text":
        if not isinstance(text, str) or "\x00" in text:
            raise BindingInvalid(f"binding {name} needs its secret 'text'.")
        value = text
    else:
        value = json.dumps(key)
    if len(value.encode()) > settings.CLAIMPORTAL_MAX_SECRET_BYTES:
        raise PayloadTooLarge(
            f"Secret {name} is larger than "
            f"{settings.CLAIMPORTAL_MAX_SECRET_BYTES} bytes."
        )
    return kind, value


def resolve(
    *,
    bindings: list[NewBinding],
    keep: list[str],
    previous: list[dict[str, Any]],
    secret_names: set[str],
) -> ResolvedBindings:
    """Turn ``inherit`` into the previous binding of that name and keep the
    previous bindings of the types in ``keep`` (``keep_bindings``); split
    secret values off.

    ``previous`` are the current version's resolved bindings; ``secret_names``
    the script's stored secrets. Raises BindingInvalid, PayloadTooLarge.
    """
    by_name = {b["name"]: b for b in previous}
    resolved: list[dict[str, Any]] = []
    secrets: dict[str, tuple[str, str]] = {}
    seen: set[str] = set()
    for binding in bindings:
        name = binding.name
        if name in seen:
            raise BindingInvalid(f"binding {name} is declared twice.")
        seen.add(name)
        if binding.type in SECRET_TYPES:
            secrets[name] = checked_secret(
                name=name,
                kind=binding.type,
                text=binding.fields.get("text"),
                key={k: v for k, v in binding.fields.items() if k != "text"},
            )
        elif binding.type == "inherit":
            if name in by_name:
                resolved.append(by_name[name])
            elif name not in secret_names:
                raise BindingInvalid(
                    f"binding {name} of type inherit has nothing to inherit: the "
                    "current version of this Worker has no binding of that name."
                )
        else:
            resolved.append(binding.stored())
    kept_types = set(keep) - SECRET_TYPES
    resolved += [
        b for b in previous if b["type"] in kept_types and b["name"] not in seen
    ]
    return ResolvedBindings(
        bindings=resolved,
        secrets=secrets,
        keep_secrets=bool(SECRET_TYPES & set(keep)),
    )


def _exists(queryset, **lookup: Any) -> bool:
    try:
        return queryset.filter(**lookup).exists()
    except (ValueError, TypeError, ValidationError):
        return False  # e.g. not a UUID


def check(
    *,
    account: CloudAccount,
    script: WorkerScript,
    bindings: list[dict[str, Any]],
    module_names: set[str],
    has_assets: bool,
) -> None:
    """Every binding must point at something this account has (its fields are
    in the shape its type declares). Raises BindingInvalid with the message
    wrangler will print."""
    for binding in bindings:
        name, kind = binding["name"], binding["type"]

        if kind == "r2_bucket":
            raise BindingInvalid(R2_REFUSED.format(name=name))
        if kind == "kv_namespace" and not _exists(
            account.kv_namespaces, pk=binding.get("namespace_id")
        ):
            raise BindingInvalid(
                f"binding {name} of type kv_namespace refers to namespace "
                f"{binding['namespace_id']}, which this account does not have."
            )
        if kind == "d1" and not _exists(
            account.d1_databases, pk=str(binding.get("id"))
        ):
            # The exact text wrangler recognises and explains (spec 4.9).
            raise BindingInvalid(
                f"binding {name} of type d1 must have a valid `id` specified"
            )
        if kind == "queue" and not _exists(
            account.queues, name=binding.get("queue_name")
        ):
            queue = binding["queue_name"]
            raise BindingInvalid(
                f'Queue "{queue}" does not exist. To create it, run: '
                f"wrangler queues create {queue}"
            )
        if kind == "hyperdrive" and not _exists(
            account.hyperdrive_configs, pk=binding.get("id")
        ):
            raise BindingInvalid(
                f"binding {name} of type hyperdrive refers to config {binding['id']}, "
                "which this account does not have. Create one with "
                "`wrangler hyperdrive create`."
            )
        if kind == "mtls_certificate" and not _exists(
            account.certificates, pk=binding.get("certificate_id")
        ):
            raise BindingInvalid(
                f"binding {name} of type mtls_certificate refers to a certificate "
                "this account does not have."
            )
        if kind == "durable_object_namespace":
            _check_durable_object(account, script, binding)
        if kind in ("wasm_module", "text_blob", "data_blob") and (
            binding.get("part") not in module_names
        ):
            raise BindingInvalid(
                f"binding {name} names part {binding['part']!r}, which is not uploaded."
            )
        if kind == "assets" and not has_assets:
            raise BindingInvalid(
                f"binding {name} of type assets needs assets in the upload."
            )


def _check_durable_object(
    account: CloudAccount, script: WorkerScript, binding: dict[str, Any]
) -> None:
    class_name = binding.get("class_name")
    owner = binding.get("script_name") or script.name
    found = DurableObjectNamespace.objects.filter(
        account=account, script__name=owner, class_name=class_name
    ).exists()
    if not found:
        raise BindingInvalid(
            f"Cannot create binding for class '{class_name}' because it is not "
            f"currently configured to implement Durable Objects in Worker '{owner}'. "
            "Did you forget to apply a migration?",
            code=10061,
        )


def migrate(
    *,
    account: CloudAccount,
    script: WorkerScript,
    migrations: Migrations | None,
    now: datetime,
) -> None:
    """Apply Durable Object migrations to ``script`` (locked by the caller) and
    move its migration tag. Creating a class that exists is a no-op, because
    wrangler re-sends every step when the tags disagree (spec 2.5).

    Raises MigrationInvalid.
    """
    if migrations is None:
        return
    old_tag = migrations.old_tag
    if old_tag is not None and old_tag != script.migration_tag:
        raise MigrationInvalid(
            f"Migration tag precondition failed: the Worker is at migration tag "
            f"'{script.migration_tag}', but the upload expected '{old_tag}'."
        )
    namespaces = DurableObjectNamespace.objects.filter(script=script)
    for step in migrations.steps:
        for names, sqlite in (
            (step.new_classes, False),
            (step.new_sqlite_classes, True),
        ):
            for class_name in names:
                DurableObjectNamespace.objects.get_or_create(
                    script=script,
                    class_name=class_name,
                    defaults={
                        "account": account,
                        "use_sqlite": sqlite,
                        "created_at": now,
                    },
                )
        for move in step.renamed_classes:
            if namespaces.filter(class_name=move.new).exists():
                raise MigrationInvalid(f"Class '{move.new}' already exists.")
            if not namespaces.filter(class_name=move.old).update(class_name=move.new):
                raise MigrationInvalid(
                    f"Cannot rename class '{move.old}': no such class."
                )
        for class_name in step.deleted_classes:
            if not namespaces.filter(class_name=class_name).delete()[0]:
                raise MigrationInvalid(
                    f"Cannot delete class '{class_name}': no such class."
                )
        for move in step.transferred_classes:
            if namespaces.filter(class_name=move.new).exists():
                raise MigrationInvalid(f"Class '{move.new}' already exists.")
            moved = DurableObjectNamespace.objects.filter(
                account=account,
                script__name=move.from_script,
                class_name=move.old,
            ).update(script=script, class_name=move.new)
            if not moved:
                raise MigrationInvalid(
                    f"Cannot transfer class '{move.old}' from Worker "
                    f"'{move.from_script}': no such class."
                )
    if migrations.new_tag is not None:
        script.migration_tag = migrations.new_tag
