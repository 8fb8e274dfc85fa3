"""What a script upload's bindings and Durable Object migrations mean.

Bindings arrive in upload-metadata shape (spec 4.9). They are resolved against
the current version (``inherit``, ``keep_bindings``), checked against the
account's real resources, and stored resolved, so ``/settings`` can hand them
back and a later redeploy can inherit them again. Secret values are split off:
they live on the script (WorkerSecret), never in a version.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from accounts.exceptions import InvalidInput, PayloadTooLarge
from accounts.models import CloudAccount, DurableObjectNamespace, WorkerScript

SECRET_TYPES = {"secret_text", "secret_key"}
# Types the runtime can give a Worker, or refuse at call time with a clear error.
KNOWN_TYPES = SECRET_TYPES | {
    "plain_text",
    "json",
    "kv_namespace",
    "d1",
    "queue",
    "durable_object_namespace",
    "service",
    "hyperdrive",
    "assets",
    "ai",
    "browser",
    "images",
    "vectorize",
    "analytics_engine",
    "version_metadata",
    "workflow",
    "send_email",
    "dispatch_namespace",
    "ratelimit",
    "secrets_store_secret",
    "mtls_certificate",
    "worker_loader",
    "wasm_module",
    "text_blob",
    "data_blob",
    "inherit",
    "r2_bucket",  # known, so that it gets its own refusal below
}
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
class ResolvedBindings:
    bindings: list[dict[str, Any]]  # no secrets, every id resolved
    secrets: dict[str, tuple[str, str]]  # name -> (type, value) sent in this upload
    keep_secrets: bool


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise BindingInvalid(f"{what} must be a non-empty string.")
    if len(value) > NAME_MAX_LENGTH:
        raise BindingInvalid(f"{what} is longer than {NAME_MAX_LENGTH} characters.")
    return value


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


def _secret_of_binding(binding: dict[str, Any]) -> tuple[str, str]:
    return checked_secret(
        name=binding["name"],
        kind=binding["type"],
        text=binding.get("text"),
        key={k: v for k, v in binding.items() if k not in ("name", "type")},
    )


def resolve(
    *, metadata: dict[str, Any], previous: list[dict[str, Any]], secret_names: set[str]
) -> ResolvedBindings:
    """Turn ``inherit`` into the previous binding of that name and apply
    ``keep_bindings``; split secret values off.

    ``previous`` are the current version's resolved bindings; ``secret_names``
    the script's stored secrets. Raises BindingInvalid.
    """
    raw = metadata.get("bindings", [])
    keep = metadata.get("keep_bindings", [])
    if not isinstance(raw, list) or not (
        isinstance(keep, list) and all(isinstance(k, str) for k in keep)
    ):
        raise BindingInvalid("'bindings' and 'keep_bindings' must be lists.")
    by_name = {b["name"]: b for b in previous}
    bindings: list[dict[str, Any]] = []
    secrets: dict[str, tuple[str, str]] = {}
    seen: set[str] = set()
    for binding in raw:
        if not isinstance(binding, dict):
            raise BindingInvalid("Every binding must be an object.")
        name = _text(binding.get("name"), "A binding's 'name'")
        kind = _text(binding.get("type"), f"binding {name}'s 'type'")
        if name in seen:
            raise BindingInvalid(f"binding {name} is declared twice.")
        seen.add(name)
        if kind not in KNOWN_TYPES:
            raise BindingInvalid(f"binding {name} has an unknown type '{kind}'.")
        if kind in SECRET_TYPES:
            secrets[name] = _secret_of_binding(binding)
        elif kind == "inherit":
            if name in by_name:
                bindings.append(by_name[name])
            elif name not in secret_names:
                raise BindingInvalid(
                    f"binding {name} of type inherit has nothing to inherit: the "
                    "current version of this Worker has no binding of that name."
                )
        else:
            bindings.append(binding)
    kept_types = set(keep) - SECRET_TYPES
    bindings += [
        b for b in previous if b["type"] in kept_types and b["name"] not in seen
    ]
    return ResolvedBindings(
        bindings=bindings,
        secrets=secrets,
        keep_secrets=bool(SECRET_TYPES & set(keep)),
    )


def _need(binding: dict[str, Any], key: str) -> Any:
    value = binding.get(key)
    if not isinstance(value, str) or not value or len(value) > NAME_MAX_LENGTH:
        raise BindingInvalid(
            f"binding {binding['name']} of type {binding['type']} needs '{key}'."
        )
    return value


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
    """Every binding must point at something this account has. Raises
    BindingInvalid with the message wrangler will print."""
    for binding in bindings:
        name, kind = binding["name"], binding["type"]

        if kind == "r2_bucket":
            raise BindingInvalid(R2_REFUSED.format(name=name))
        if kind == "plain_text" and not isinstance(binding.get("text"), str):
            raise BindingInvalid(f"binding {name} of type plain_text needs 'text'.")
        if kind == "json" and "json" not in binding:
            raise BindingInvalid(f"binding {name} of type json needs 'json'.")
        if kind == "kv_namespace" and not _exists(
            account.kv_namespaces, pk=_need(binding, "namespace_id")
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
            account.queues, name=_need(binding, "queue_name")
        ):
            queue = binding["queue_name"]
            raise BindingInvalid(
                f'Queue "{queue}" does not exist. To create it, run: '
                f"wrangler queues create {queue}"
            )
        if kind == "hyperdrive" and not _exists(
            account.hyperdrive_configs, pk=_need(binding, "id")
        ):
            raise BindingInvalid(
                f"binding {name} of type hyperdrive refers to config {binding['id']}, "
                "which this account does not have. Create one with "
                "`wrangler hyperdrive create`."
            )
        if kind == "mtls_certificate" and not _exists(
            account.certificates, pk=_need(binding, "certificate_id")
        ):
            raise BindingInvalid(
                f"binding {name} of type mtls_certificate refers to a certificate "
                "this account does not have."
            )
        if kind == "durable_object_namespace":
            _check_durable_object(
                account, script, binding, _need(binding, "class_name")
            )
        if kind in ("wasm_module", "text_blob", "data_blob") and (
            _need(binding, "part") not in module_names
        ):
            raise BindingInvalid(
                f"binding {name} names part {binding['part']!r}, which is not uploaded."
            )
        if kind == "assets" and not has_assets:
            raise BindingInvalid(
                f"binding {name} of type assets needs assets in the upload."
            )


def _check_durable_object(
    account: CloudAccount, script: WorkerScript, binding: dict, class_name: Any
) -> None:
    owner = binding.get("script_name") or script.name
    if not isinstance(owner, str):
        raise BindingInvalid(f"binding {binding['name']} has a bad 'script_name'.")
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


def _class_list(step: dict, key: str) -> list[str]:
    value = step.get(key, [])
    if not isinstance(value, list) or not all(
        isinstance(v, str) and v and len(v) <= NAME_MAX_LENGTH for v in value
    ):
        raise MigrationInvalid(f"Migration step '{key}' must be a list of class names.")
    return value


def _pairs(step: dict, key: str, fields: tuple[str, ...]) -> list[dict[str, str]]:
    value = step.get(key, [])
    if not isinstance(value, list) or not all(
        isinstance(v, dict) and all(isinstance(v.get(f), str) and v[f] for f in fields)
        for v in value
    ):
        raise MigrationInvalid(
            f"Migration step '{key}' must list objects with {', '.join(fields)}."
        )
    return value


def migrate(
    *,
    account: CloudAccount,
    script: WorkerScript,
    migrations: Any,
    now: datetime,
) -> None:
    """Apply Durable Object migrations to ``script`` (locked by the caller) and
    move its migration tag. Creating a class that exists is a no-op, because
    wrangler re-sends every step when the tags disagree (spec 2.5).

    Raises MigrationInvalid.
    """
    if migrations is None:
        return
    if not isinstance(migrations, dict):
        raise MigrationInvalid("'migrations' must be an object.")
    old_tag, new_tag = migrations.get("old_tag"), migrations.get("new_tag")
    for tag in (old_tag, new_tag):
        if tag is not None and (not isinstance(tag, str) or len(tag) > 100):
            raise MigrationInvalid("Migration tags must be short strings.")
    if (old_tag or "") != script.migration_tag and old_tag is not None:
        raise MigrationInvalid(
            f"Migration tag precondition failed: the Worker is at migration tag "
            f"'{script.migration_tag}', but the upload expected '{old_tag}'."
        )
    steps = migrations.get("steps", [migrations])
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise MigrationInvalid("'migrations.steps' must be a list of objects.")
    namespaces = DurableObjectNamespace.objects.filter(script=script)
    for step in steps:
        for key, sqlite in (("new_classes", False), ("new_sqlite_classes", True)):
            for class_name in _class_list(step, key):
                DurableObjectNamespace.objects.get_or_create(
                    script=script,
                    class_name=class_name,
                    defaults={
                        "account": account,
                        "use_sqlite": sqlite,
                        "created_at": now,
                    },
                )
        for pair in _pairs(step, "renamed_classes", ("from", "to")):
            if namespaces.filter(class_name=pair["to"]).exists():
                raise MigrationInvalid(f"Class '{pair['to']}' already exists.")
            if not namespaces.filter(class_name=pair["from"]).update(
                class_name=pair["to"]
            ):
                raise MigrationInvalid(
                    f"Cannot rename class '{pair['from']}': no such class."
                )
        for class_name in _class_list(step, "deleted_classes"):
            if not namespaces.filter(class_name=class_name).delete()[0]:
                raise MigrationInvalid(
                    f"Cannot delete class '{class_name}': no such class."
                )
        for pair in _pairs(step, "transferred_classes", ("from", "from_script", "to")):
            if namespaces.filter(class_name=pair["to"]).exists():
                raise MigrationInvalid(f"Class '{pair['to']}' already exists.")
            moved = DurableObjectNamespace.objects.filter(
                account=account,
                script__name=pair["from_script"],
                class_name=pair["from"],
            ).update(script=script, class_name=pair["to"])
            if not moved:
                raise MigrationInvalid(
                    f"Cannot transfer class '{pair['from']}' from Worker "
                    f"'{pair['from_script']}': no such class."
                )
    if new_tag is not None:
        script.migration_tag = new_tag
