"""Workers: scripts, their immutable versions, deployments, secrets and triggers.

A version keeps everything needed to run it again without asking wrangler:
modules with their content types, resolved bindings, what of the upload
metadata is shown back, and the static-asset manifest with its config. Secrets
belong to the script (WorkerSecret) and are joined in when a version is run.

Every write locks the row it decides on (the account when scripts are created or
deleted, else the script), so deploys serialise with each other and with a
claim or purge of the same account.
"""

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet

from accounts.exceptions import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
)
from accounts.models import (
    AuditEvent,
    CloudAccount,
    DurableObjectNamespace,
    QueueConsumer,
    WorkerDeployment,
    WorkerModule,
    WorkerScript,
    WorkerSecret,
    WorkerVersion,
    version_summary,
)
from accounts.services import assets, bindings
from accounts.services.audit import record_event
from accounts.services.bindings import Migrations, NewBinding
from accounts.services.locking import lock_live_account
from accounts.services.multipart import Part
from preview_runtime.render import DurableObjectClass, Module, WorkerSpec
from preview_runtime.services import lifecycle

SCRIPT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$")
SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
CRON_FIELD = re.compile(r"^[0-9A-Za-z*,/?#LW-]+$")
MODULE_TYPES = {
    "application/javascript+module",
    "application/javascript",
    "text/javascript",
    "text/plain",
    "application/octet-stream",
    "application/wasm",
    "application/json",
    "text/x-python",
    "text/x-python-requirement",
    "application/source-map",
}
# What a part without a Content-Type is taken to be, by its extension.
TYPE_BY_EXTENSION = {
    "js": "application/javascript+module",
    "mjs": "application/javascript+module",
    "cjs": "application/javascript",
    "wasm": "application/wasm",
    "json": "application/json",
    "map": "application/source-map",
    "py": "text/x-python",
    "txt": "text/plain",
}


class WorkerNotFound(NotFound):
    code = 10007
    message = "This Worker does not exist on your account."


class ServiceNotFound(WorkerNotFound):
    code = 10090


class ScriptInvalid(InvalidInput):
    code = 10021


class ScriptTooLarge(PayloadTooLarge):
    code = 10027


@dataclass(frozen=True)
class Uploaded:
    script: WorkerScript
    version: WorkerVersion
    deployment: WorkerDeployment | None


@dataclass(frozen=True)
class UploadAssets:
    """An upload's static assets: the completion token of an asset upload,
    or none with ``keep`` to serve the current version's, and their config."""

    completion_token: str | None = None
    config: dict[str, Any] | None = None
    keep: bool = False


@dataclass(frozen=True)
class WorkerUpload:
    """One upload of a Worker (PUT script, POST versions), as read from the
    request: each module by its name, the main module (``main_module``, or a
    service-worker script's ``body_part``), what runs it (compatibility,
    bindings, the binding types kept from the current version, migrations,
    assets), and ``shown``: placement, limits and the like, kept to be shown
    back by ``GET settings`` and never read to run the Worker."""

    modules: list[Part]
    main_module: str | None = None
    body_part: str | None = None
    compatibility_date: str = ""
    compatibility_flags: list[str] = field(default_factory=list)
    annotations: dict[str, Any] = field(default_factory=dict)
    bindings: list[NewBinding] = field(default_factory=list)
    keep_bindings: list[str] = field(default_factory=list)
    migrations: Migrations | None = None
    assets: UploadAssets | None = None
    shown: dict[str, Any] = field(default_factory=dict)

    def stored_metadata(self) -> dict[str, Any]:
        """What a version keeps of its upload besides its columns: which
        format it is (``body_part``) and what is shown back."""
        entry = {"main_module": self.main_module, "body_part": self.body_part}
        return {
            **{key: value for key, value in entry.items() if value},
            **self.shown,
        }


# --- reads --------------------------------------------------------------------


def get_script(*, account: CloudAccount, name: str, code: int = 10007) -> WorkerScript:
    """The account's script of that name. Raises WorkerNotFound (10007, or
    10090 for the services look-up, which wrangler reads the same way)."""
    script = account.workers.select_related("current_version").filter(name=name).first()
    if script is None:
        raise ServiceNotFound() if code == 10090 else WorkerNotFound()
    return script


def list_scripts(*, account: CloudAccount) -> QuerySet[WorkerScript]:
    return account.workers.select_related("current_version").order_by("name")


def _next_version_number(script: WorkerScript) -> int:
    """The number a new version of ``script`` takes (the caller holds its lock)."""
    return (script.versions.aggregate(n=Max("number"))["n"] or 0) + 1


def settings_bindings(*, script: WorkerScript) -> list[dict[str, Any]]:
    """The current bindings as /settings shows them: resolved, secrets by name."""
    version = script.current_version
    return all_bindings(version=version) if version else []


def list_versions(*, script: WorkerScript) -> QuerySet[WorkerVersion]:
    return script.versions.order_by("-number")


def get_version(*, script: WorkerScript, version_id: str) -> WorkerVersion:
    version = None
    if _is_uuid(version_id):
        version = script.versions.filter(pk=version_id).first()
    if version is None:
        raise NotFound(f"Version {version_id[:64]} not found.", code=10007)
    return version


def script_modules(*, script: WorkerScript) -> QuerySet[WorkerModule]:
    """The modules of the deployed version, the main one first. Raises
    WorkerNotFound for a script with nothing deployed."""
    version = script.current_version
    if version is None:
        raise WorkerNotFound("This Worker has no deployed version.")
    return version.modules.order_by("id")


def list_deployments(*, script: WorkerScript) -> QuerySet[WorkerDeployment]:
    return script.deployments.order_by("-created_at", "-pk")


def references(*, script: WorkerScript) -> dict[str, Any]:
    """Which other Workers of the account depend on this one: service bindings
    to it, and bindings to its Durable Objects (wrangler delete asks first)."""
    incoming, durable_objects = [], []
    others = script.account.workers.exclude(pk=script.pk).select_related(
        "current_version"
    )
    for other in others:
        for b in other.current_version.bindings if other.current_version else []:
            if b.get("type") == "service" and b.get("service") == script.name:
                incoming.append({"service": other.name})
            if (
                b.get("type") == "durable_object_namespace"
                and b.get("script_name") == script.name
            ):
                durable_objects.append(
                    {
                        "service": other.name,
                        "durable_object_namespace_name": (
                            f"{script.name}_{b.get('class_name')}"
                        ),
                    }
                )
    return {
        "services": {"incoming": incoming},
        "durable_objects": durable_objects,
        "dispatch_outbounds": [],
    }


def tail_producers(*, account: CloudAccount, consumer: str) -> list[str]:
    """Workers of the account that send their traces to ``consumer``."""
    return [
        script.name
        for script in account.workers.all()
        if any(
            isinstance(t, dict) and t.get("service") == consumer
            for t in script.script_settings.get("tail_consumers") or []
        )
    ]


def durable_object_namespaces(
    *, account: CloudAccount
) -> QuerySet[DurableObjectNamespace]:
    return account.durable_object_namespaces.select_related("script").order_by(
        "script__name", "class_name"
    )


# --- uploads --------------------------------------------------------------------


def _is_uuid(value: Any) -> bool:
    return (
        isinstance(value, str)
        and re.fullmatch(r"[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}", value)
        is not None
    )


def _module_type(part: Part) -> str:
    if len(part.content_type) > 100:
        raise ScriptInvalid(f"Module {part.name!r} has an overlong Content-Type.")
    media = part.media_type
    if not media:
        extension = part.name.rpartition(".")[2].lower() if "." in part.name else ""
        return TYPE_BY_EXTENSION.get(extension, "application/octet-stream")
    if media not in MODULE_TYPES:
        raise ScriptInvalid(
            f"Module {part.name!r} has an unsupported Content-Type {media!r}."
        )
    return part.content_type


def _check_modules(modules: list[Part]) -> None:
    """Module names are unique, and all modules together fit the limit.
    Raises ScriptInvalid, ScriptTooLarge."""
    names = set()
    for part in modules:
        if not part.name or len(part.name) > 255 or "\x00" in part.name:
            raise ScriptInvalid(f"Module name {part.name[:64]!r}… is not valid.")
        if part.name in names:
            raise ScriptInvalid(f"Module {part.name!r} is uploaded twice.")
        names.add(part.name)
    total = sum(len(p.data) for p in modules)
    if total > settings.CLAIMPORTAL_MAX_SCRIPT_BYTES:
        raise ScriptTooLarge(
            f"Your Worker is {total} bytes; the limit is "
            f"{settings.CLAIMPORTAL_MAX_SCRIPT_BYTES} bytes for all modules together."
        )


def _entry_first(upload: WorkerUpload) -> tuple[str, list[Part]]:
    """The main module's name, and the modules with the entry part first."""
    modules = upload.modules
    main = upload.main_module or upload.body_part
    if main is None:
        if modules:
            raise ScriptInvalid("The metadata must name its 'main_module'.")
        if upload.assets is None:
            raise ScriptInvalid("The upload has no modules and no assets.")
        return "", modules
    if main not in {p.name for p in modules}:
        raise ScriptInvalid(f"The main module {main[:100]!r} was not uploaded.")
    # The entry part goes first; a service-worker script (body_part) has no main
    # module, which is how the runtime tells the two formats apart.
    ordered = sorted(modules, key=lambda part: part.name != main)
    return (main if upload.main_module else ""), ordered


def _etag(modules: list[Part]) -> str:
    digest = hashlib.sha256()
    for part in modules:
        for piece in (part.name.encode(), part.content_type.encode(), part.data):
            digest.update(len(piece).to_bytes(8, "big") + piece)
    return digest.hexdigest()


def _version_assets(
    *,
    account: CloudAccount,
    upload: UploadAssets | None,
    current: WorkerVersion | None,
    now: datetime,
) -> dict[str, Any]:
    if upload is None:
        return {}
    config = assets.clean_assets_config(upload.config)
    if upload.completion_token:
        manifest = assets.completed_manifest(
            account=account, completion_token=upload.completion_token, now=now
        )
    elif upload.keep and current and current.assets:
        manifest = current.assets["manifest"]
    else:
        raise ScriptInvalid("'assets' needs the 'jwt' of a completed asset upload.")
    return {"manifest": manifest, "config": config}


def _lock_script(*, account: CloudAccount, name: str) -> WorkerScript:
    lock_live_account(account_id=account.pk)
    script = (
        WorkerScript.objects.select_for_update()
        .filter(account=account, name=name)
        .first()
    )
    if script is None:
        raise WorkerNotFound()
    return script


def _script_for_upload(
    *, account: CloudAccount, name: str, create: bool, now: datetime
) -> WorkerScript:
    script = account.workers.select_for_update().filter(name=name).first()
    if script is not None:
        return script
    if not create:
        raise WorkerNotFound(
            "You cannot upload a version of a Worker that does not exist yet; "
            "deploy it first."
        )
    if not SCRIPT_NAME.match(name):
        raise ScriptInvalid(
            f"Worker name {name[:100]!r} is not valid: use lowercase letters, digits, "
            "'-' and '_', at most 63 characters, starting and ending with a letter "
            "or digit."
        )
    if account.workers.count() >= settings.CLAIMPORTAL_MAX_WORKERS:
        raise ScriptInvalid(
            f"An account may have {settings.CLAIMPORTAL_MAX_WORKERS} Workers; "
            "delete one first.",
            code=10037,
        )
    return WorkerScript.objects.create(
        account=account, name=name, created_at=now, updated_at=now
    )


def _secrets_after_upload(
    *,
    script: WorkerScript,
    upload: WorkerUpload,
    resolved: bindings.ResolvedBindings,
) -> dict[str, list[str]]:
    """The secrets a new upload runs with: the deployed version's, less those
    the upload neither keeps (``keep_bindings``) nor inherits, plus its own."""
    current = script.current_version
    before = dict(current.secrets) if current else {}
    if not resolved.keep_secrets:
        inherited = {b.name for b in upload.bindings if b.type == "inherit"}
        before = {name: v for name, v in before.items() if name in inherited}
    after = {**before, **{n: [t, v] for n, (t, v) in resolved.secrets.items()}}
    for binding in resolved.bindings:
        if binding["name"] in after:
            raise ScriptInvalid(
                f"Binding name '{binding['name']}' is already used by a secret of "
                f"this Worker. Rename the binding, or remove the secret with "
                f"`wrangler secret delete {binding['name']}`.",
                code=10053,
            )
    return after


def _adopt_secrets(*, script: WorkerScript, version: WorkerVersion) -> None:
    """The script's secrets become those of the version it now serves (what
    ``GET …/secrets`` lists)."""
    script.secrets.exclude(name__in=list(version.secrets)).delete()
    for name, (kind, value) in version.secrets.items():
        WorkerSecret.objects.update_or_create(
            script=script,
            name=name,
            defaults={"type": kind, "value": value, "created_at": version.created_at},
        )


def all_bindings(*, version: WorkerVersion) -> list[dict[str, Any]]:
    """A version's bindings as its views list them: secrets by name and type,
    never by value."""
    return list(version.bindings or []) + [
        {"name": name, "type": kind}
        for name, (kind, _value) in sorted((version.secrets or {}).items())
    ]


def _record_deploy(
    *,
    account: CloudAccount,
    script: WorkerScript,
    deployment: WorkerDeployment,
    actor_label: str,
) -> None:
    record_event(
        account=account,
        kind=AuditEvent.Kind.DEPLOYED,
        actor_label=actor_label,
        details={
            "script": script.name,
            "deployment_id": str(deployment.pk),
            "versions": deployment.versions,
        },
    )


def _deploy_whole(
    *,
    script: WorkerScript,
    version: WorkerVersion,
    annotations: dict[str, Any],
    now: datetime,
    actor_label: str,
) -> WorkerDeployment:
    """Deploy ``version`` at 100% (the caller saves ``current_version``): it
    brings its secrets, and the runtime serves it once committed."""
    deployment = WorkerDeployment.objects.create(
        script=script,
        created_at=now,
        versions=[{"version_id": str(version.pk), "percentage": 100}],
        annotations=annotations,
    )
    script.current_version = version
    _adopt_secrets(script=script, version=version)
    lifecycle.serve_on_commit(script_id=script.pk)
    _record_deploy(
        account=script.account,
        script=script,
        deployment=deployment,
        actor_label=actor_label,
    )
    return deployment


def _start_before_lock(
    *,
    account: CloudAccount,
    script_name: str,
    upload: WorkerUpload,
    modules: list[Module],
    main_module: str,
    now: datetime,
) -> lifecycle.StartChecked | None:
    """Start the upload as it will be stored, from its parsed parts and the
    script's current state, without a lock. None when that state cannot be
    foreseen here (a bad upload, an inherited asset manifest): the check then
    runs under the lock, and so it does if anything changed meanwhile."""
    script = account.workers.filter(name=script_name).first()
    current = script.current_version if script else None
    stored = {s.name: s for s in script.secrets.all()} if script else {}
    try:
        resolved = bindings.resolve(
            bindings=upload.bindings,
            keep=upload.keep_bindings,
            previous=current.bindings if current else [],
            secret_names=set(stored),
        )
    except DomainError:
        return None
    if upload.assets is not None or upload.migrations is not None:
        return None
    secrets = (
        {}
        if not resolved.keep_secrets
        else {name: s.value for name, s in stored.items() if s.type == "secret_text"}
    )
    secrets.update(
        (name, value)
        for name, (kind, value) in resolved.secrets.items()
        if kind == "secret_text"
    )
    taken = {b.get("name") for b in resolved.bindings}
    spec = WorkerSpec(
        script_name=script_name,
        version_id="",
        version_created=now.isoformat(),
        compatibility_date=upload.compatibility_date,
        compatibility_flags=tuple(upload.compatibility_flags),
        modules=tuple(modules),
        bindings=tuple(resolved.bindings)
        + tuple(
            {"name": name, "type": "secret_text", "text": value}
            for name, value in secrets.items()
            if name not in taken
        ),
        durable_objects=tuple(
            DurableObjectClass(ns.class_name, str(ns.pk), ns.use_sqlite)
            for ns in script.durable_object_namespaces.order_by("class_name")
        )
        if script
        else (),
        service_worker=bool(upload.body_part and not main_module),
    )
    return lifecycle.check_before_storing(spec=spec, account_id=account.pk)


def upload_version(
    *,
    account: CloudAccount,
    script_name: str,
    upload: WorkerUpload,
    deploy: bool,
    now: datetime,
    actor_label: str = "agent",
) -> Uploaded:
    """Store one upload of a Worker as a new version, atomically.

    ``deploy`` (PUT script) also creates the script if needed and deploys the
    version at 100%; without it (POST versions) the script must exist and the
    version waits for POST deployments. ``inherit`` bindings are resolved from
    the current version, secrets are kept per ``keep_bindings``, migrations
    create Durable Object namespaces, and every binding must point at a
    resource of this account.

    Raises ScriptInvalid / BindingInvalid / MigrationInvalid (10021 and kin),
    ScriptTooLarge, WorkerNotFound, AccountNotFound.
    """
    _check_modules(upload.modules)
    main_module, modules = _entry_first(upload)
    module_types = {p.name: _module_type(p) for p in modules}
    annotations = upload.annotations
    # The slow part first, with nothing locked: a claim or purge of the account
    # never waits for workerd to start.
    checked = _start_before_lock(
        account=account,
        script_name=script_name,
        upload=upload,
        modules=[Module(p.name, module_types[p.name], p.data) for p in modules],
        main_module=main_module,
        now=now,
    )

    with transaction.atomic():
        account = lock_live_account(account_id=account.pk, now=now)
        script = _script_for_upload(
            account=account, name=script_name, create=deploy, now=now
        )
        current = script.current_version
        version_assets = _version_assets(
            account=account, upload=upload.assets, current=current, now=now
        )
        resolved = bindings.resolve(
            bindings=upload.bindings,
            keep=upload.keep_bindings,
            previous=current.bindings if current else [],
            secret_names=set(current.secrets) if current else set(),
        )
        bindings.migrate(
            account=account,
            script=script,
            migrations=upload.migrations,
            now=now,
        )
        bindings.check(
            account=account,
            script=script,
            bindings=resolved.bindings,
            module_names=set(module_types),
            has_assets=bool(version_assets),
        )
        secrets = _secrets_after_upload(script=script, upload=upload, resolved=resolved)
        number = _next_version_number(script)
        version = WorkerVersion.objects.create(
            script=script,
            number=number,
            created_at=now,
            etag=_etag(modules),
            main_module=main_module,
            compatibility_date=upload.compatibility_date,
            compatibility_flags=upload.compatibility_flags,
            bindings=resolved.bindings,
            metadata=upload.stored_metadata(),
            assets=version_assets,
            annotations=annotations,
            secrets=secrets,
            **version_summary(bindings=resolved.bindings, assets=version_assets),
        )
        WorkerModule.objects.bulk_create(
            WorkerModule(
                version=version,
                name=part.name,
                content_type=module_types[part.name],
                content=part.data,
            )
            for part in modules
        )
        # Start it once, as Cloudflare validates an upload (10021 if it fails).
        lifecycle.check_upload(version=version, checked=checked)
        deployment = None
        script.updated_at = now
        fields = ["updated_at", "migration_tag"]
        if deploy:
            deployment = _deploy_whole(
                script=script,
                version=version,
                annotations=annotations,
                now=now,
                actor_label=actor_label,
            )
            fields.append("current_version")
        script.save(update_fields=fields)
    return Uploaded(script=script, version=version, deployment=deployment)


@dataclass(frozen=True)
class VersionShare:
    """One version of a deployment and the share of traffic it is given."""

    version_id: str
    percentage: float


def _deployment_versions(
    script: WorkerScript, versions: list[VersionShare]
) -> tuple[list[dict[str, Any]], WorkerVersion]:
    if not 1 <= len(versions) <= 2:
        raise InvalidInput("'versions' must list one or two versions.")
    clean, chosen, best = [], None, -1.0
    for share in versions:
        if not 0 <= share.percentage <= 100:
            raise InvalidInput("Each version needs a 'percentage' from 0 to 100.")
        version = get_version(script=script, version_id=share.version_id)
        if share.percentage > best:
            chosen, best = version, share.percentage
        clean.append({"version_id": str(version.pk), "percentage": share.percentage})
    if abs(sum(share.percentage for share in versions) - 100) > 1e-9:
        raise InvalidInput("The percentages of a deployment must add up to 100.")
    assert chosen is not None
    return clean, chosen


def create_deployment(
    *,
    account: CloudAccount,
    script_name: str,
    versions: list[VersionShare],
    annotations: dict[str, Any],
    now: datetime,
    actor_label: str = "agent",
) -> WorkerDeployment:
    """Deploy uploaded versions (POST deployments; also rollback) by
    percentage. The version with the largest share becomes the one the
    preview serves.

    Raises WorkerNotFound, InvalidInput, NotFound (unknown version).
    """
    with transaction.atomic():
        script = _lock_script(account=account, name=script_name)
        shares, chosen = _deployment_versions(script, versions)
        deployment = WorkerDeployment.objects.create(
            script=script,
            created_at=now,
            versions=shares,
            annotations=annotations,
        )
        script.current_version = chosen
        script.updated_at = now
        script.save(update_fields=["current_version", "updated_at"])
        _adopt_secrets(script=script, version=chosen)
        lifecycle.serve_on_commit(script_id=script.pk)
        _record_deploy(
            account=account,
            script=script,
            deployment=deployment,
            actor_label=actor_label,
        )
    return deployment


@transaction.atomic
def delete_script(*, account: CloudAccount, script_name: str, now: datetime) -> None:
    """Delete a Worker with its versions, secrets and Durable Object namespaces,
    and the queue consumers that ran it. Raises ServiceNotFound."""
    account = lock_live_account(account_id=account.pk, now=now)
    script = account.workers.filter(name=script_name).first()
    if script is None:
        raise ServiceNotFound()
    QueueConsumer.objects.filter(
        queue__account=account, type="worker", script_name=script_name
    ).delete()
    script.delete()


# --- settings, secrets, triggers --------------------------------------------------


@transaction.atomic
def update_script_settings(
    *,
    account: CloudAccount,
    script_name: str,
    observability: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    logpush: bool | None = None,
    tail_consumers: list[dict[str, Any]] | None = None,
    now: datetime,
) -> dict[str, Any]:
    """Change the settings given (None keeps one as it is) and answer them
    all. They are kept to be shown back, as wrangler reads them; none changes
    how the preview runs. Raises WorkerNotFound."""
    given = {
        "observability": observability,
        "tags": tags,
        "logpush": logpush,
        "tail_consumers": tail_consumers,
    }
    script = _lock_script(account=account, name=script_name)
    script.script_settings = {
        **script.script_settings,
        **{key: value for key, value in given.items() if value is not None},
    }
    script.updated_at = now
    script.save(update_fields=["script_settings", "updated_at"])
    return script.script_settings


class NoVersions(NotFound):
    code = 10222
    message = "There are currently no uploaded versions of this Worker."


@dataclass(frozen=True)
class NewSecret:
    """A secret's new value: a secret_text's ``text``, or a secret_key's
    ``key`` material (its format, algorithm, usages and the key itself)."""

    type: str = "secret_text"
    text: str | None = None
    key: dict[str, Any] = field(default_factory=dict)


def _secret_changes(
    secrets: dict[str, NewSecret | None],
) -> dict[str, tuple[str, str] | None]:
    """{name: (type, value) or None (delete)}, each checked. Raises
    InvalidInput, BindingInvalid, PayloadTooLarge."""
    if len(secrets) > settings.CLAIMPORTAL_MAX_SECRETS_PER_CHANGE:
        raise InvalidInput(
            "At most "
            f"{settings.CLAIMPORTAL_MAX_SECRETS_PER_CHANGE} secrets per request."
        )
    changes: dict[str, tuple[str, str] | None] = {}
    for name, secret in secrets.items():
        if not name or len(name) > 255 or "\x00" in name:
            raise InvalidInput("A secret name must have 1 to 255 characters.")
        if secret is not None and secret.type not in bindings.SECRET_TYPES:
            raise InvalidInput(f"Secret {name[:100]!r}: 'type' must be secret_text.")
        changes[name] = (
            None
            if secret is None
            else bindings.checked_secret(
                name=name, kind=secret.type, text=secret.text, key=secret.key
            )
        )
    return changes


def _version_with_secrets(
    *,
    script: WorkerScript,
    base: WorkerVersion,
    changes: dict[str, tuple[str, str] | None],
    annotations: dict[str, Any],
    deploy: bool,
    now: datetime,
    actor_label: str,
) -> WorkerVersion:
    """A new version: ``base`` with its secrets changed (the code, bindings and
    assets as they were), deployed at 100% when ``deploy``. The caller holds
    the script's lock. Raises InvalidInput (10053: a binding has that name),
    NotFound (10056: deleting a secret the version does not have)."""
    secrets = dict(base.secrets or {})
    taken = {b.get("name") for b in base.bindings or []}
    for name, value in changes.items():
        if value is None:
            if secrets.pop(name, None) is None:
                raise NotFound(
                    f"This Worker has no secret named {name[:100]!r}.", code=10056
                )
        elif name in taken:
            raise InvalidInput(
                f"Binding name '{name}' is already used by a binding of this Worker.",
                code=10053,
            )
        else:
            secrets[name] = list(value)
    number = _next_version_number(script)
    version = WorkerVersion.objects.create(
        script=script,
        number=number,
        created_at=now,
        etag=base.etag,
        main_module=base.main_module,
        compatibility_date=base.compatibility_date,
        compatibility_flags=base.compatibility_flags,
        bindings=base.bindings,
        metadata=base.metadata,
        assets=base.assets,
        annotations=annotations,
        source=base.source,
        startup_time_ms=base.startup_time_ms,
        secrets=secrets,
        shown_bindings=base.shown_bindings,
        asset_files=base.asset_files,
        asset_bytes=base.asset_bytes,
    )
    WorkerModule.objects.bulk_create(
        WorkerModule(
            version=version,
            name=m.name,
            content_type=m.content_type,
            content=m.content,
        )
        for m in base.modules.all()
    )
    script.updated_at = now
    fields = ["updated_at"]
    if deploy:
        _deploy_whole(
            script=script,
            version=version,
            annotations=annotations,
            now=now,
            actor_label=actor_label,
        )
        fields.append("current_version")
    script.save(update_fields=fields)
    return version


def _secret_annotations(*, message: str | None, tag: str | None) -> dict[str, Any]:
    given = {"workers/message": message, "workers/tag": tag}
    return {
        **{key: value for key, value in given.items() if value is not None},
        "workers/triggered_by": "secret",
    }


@transaction.atomic
def change_secrets(
    *,
    account: CloudAccount,
    script_name: str,
    secrets: dict[str, NewSecret | None],
    now: datetime,
    actor_label: str = "agent",
) -> WorkerVersion:
    """``wrangler secret put | delete | bulk``: a new version of the deployed
    one with ``secrets`` (a merge patch: a new value, or None to delete)
    changed, deployed at once as Cloudflare does. Raises WorkerNotFound
    (wrangler then creates the Worker and retries), NoVersions, InvalidInput,
    NotFound, PayloadTooLarge."""
    changes = _secret_changes(secrets)
    script = _lock_script(account=account, name=script_name)
    if script.current_version is None:
        raise NoVersions()
    return _version_with_secrets(
        script=script,
        base=script.current_version,
        changes=changes,
        annotations=_secret_annotations(message=None, tag=None),
        deploy=True,
        now=now,
        actor_label=actor_label,
    )


@transaction.atomic
def patch_latest_version(
    *,
    account: CloudAccount,
    script_name: str,
    secrets: dict[str, NewSecret | None],
    message: str | None = None,
    tag: str | None = None,
    now: datetime,
    actor_label: str = "agent",
) -> WorkerVersion:
    """``wrangler versions secret put | bulk | delete``: a new version of the
    newest one with ``secrets`` changed (as ``change_secrets``), annotated with
    the version's ``message`` and ``tag``, not deployed (``versions deploy``
    does that). Raises WorkerNotFound, NoVersions, InvalidInput, NotFound."""
    changes = _secret_changes(secrets)
    script = _lock_script(account=account, name=script_name)
    latest = script.versions.order_by("-number").first()
    if latest is None:
        raise NoVersions()
    return _version_with_secrets(
        script=script,
        base=latest,
        changes=changes,
        annotations=_secret_annotations(message=message, tag=tag),
        deploy=False,
        now=now,
        actor_label=actor_label,
    )


def clean_cron(cron: str) -> str:
    """A cron expression as stored: five (or six) fields, single-spaced.
    Raises InvalidInput."""
    fields = cron.split()
    if not 5 <= len(fields) <= 6 or not all(CRON_FIELD.match(f) for f in fields):
        raise InvalidInput(
            f"{str(cron)[:100]!r} is not a valid cron expression "
            "(five fields: minute hour day-of-month month day-of-week)."
        )
    return " ".join(fields)


@transaction.atomic
def set_schedules(
    *, account: CloudAccount, script_name: str, crons: list[str], now: datetime
) -> list[dict[str, str]]:
    """Replace the Worker's cron triggers with ``crons`` (see ``clean_cron``).
    Raises WorkerNotFound, InvalidInput (10074: too many)."""
    if len(crons) > settings.CLAIMPORTAL_MAX_CRON_TRIGGERS:
        raise InvalidInput(
            f"A Worker may have {settings.CLAIMPORTAL_MAX_CRON_TRIGGERS} cron "
            "triggers.",
            code=10074,
        )
    crons = list(dict.fromkeys(clean_cron(cron) for cron in crons))
    script = _lock_script(account=account, name=script_name)
    stamp = now.isoformat()
    earlier = {s["cron"]: s for s in script.cron_schedules}
    script.cron_schedules = [
        {
            "cron": cron,
            "created_on": earlier.get(cron, {}).get("created_on", stamp),
            "modified_on": stamp,
        }
        for cron in crons
    ]
    script.save(update_fields=["cron_schedules"])
    return script.cron_schedules


@transaction.atomic
def set_workers_dev(
    *,
    account: CloudAccount,
    script_name: str,
    enabled: bool,
    previews: bool | None = None,
) -> WorkerScript:
    """Turn the Worker's preview host (its workers.dev route) on or off; its
    version previews follow ``enabled`` unless ``previews`` is given."""
    script = _lock_script(account=account, name=script_name)
    script.workers_dev_enabled = enabled
    script.previews_enabled = enabled if previews is None else previews
    script.save(update_fields=["workers_dev_enabled", "previews_enabled"])
    return script


def subdomain_is_available(*, name: str) -> bool:
    return bool(SUBDOMAIN.match(name)) and not (
        CloudAccount.objects.filter(subdomain=name).exists()
    )


@transaction.atomic
def change_subdomain(
    *, account: CloudAccount, subdomain: str, now: datetime
) -> CloudAccount:
    """Give the account another workers.dev-style subdomain (its preview hosts
    move with it). Raises InvalidInput, Conflict (taken)."""
    if not SUBDOMAIN.match(subdomain):
        raise InvalidInput(
            "'subdomain' must be 1-63 lowercase letters, digits or '-', not "
            "starting or ending with '-'."
        )
    account = lock_live_account(account_id=account.pk, now=now)
    if account.subdomain == subdomain:
        return account
    if CloudAccount.objects.filter(subdomain=subdomain).exists():
        raise Conflict("That subdomain is taken.", code=10031)
    account.subdomain = subdomain
    try:
        with transaction.atomic():
            account.save(update_fields=["subdomain"])
    except IntegrityError as exc:  # taken a moment ago by another account
        raise Conflict("That subdomain is taken.", code=10031) from exc
    return account
