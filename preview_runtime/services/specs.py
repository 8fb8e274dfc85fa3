"""From database rows to a runnable Worker: the spec of a version, its binding
credential, its static assets on disk, and the check a deploy makes that the
upload really starts."""

import hashlib
import json
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts.exceptions import DomainError
from accounts.models import AssetBlob, WorkerVersion
from preview_runtime import process, sandbox
from preview_runtime.render import (
    DurableObjectClass,
    Module,
    WorkerConfigInvalid,
    WorkerPaths,
    WorkerSpec,
    render_worker,
)

from . import runtime_settings
from .identity import identity_for

_TOKEN_SALT = "claimportal.previews.binding"  # noqa: S105 - a salt, not a secret


def start_key(spec: WorkerSpec) -> str:
    """What decides whether ``spec`` starts: everything but the names a stored
    version gets (its id, time, token, the Durable Object namespaces' ids)."""
    return json.dumps(
        [
            spec.script_name,
            spec.compatibility_date,
            spec.compatibility_flags,
            [
                (m.name, m.content_type, hashlib.sha256(m.content).hexdigest())
                for m in spec.modules
            ],
            sorted(spec.bindings, key=lambda b: str(b.get("name"))),
            [(d.class_name, d.enable_sql) for d in spec.durable_objects],
            spec.assets_config,
            spec.service_worker,
        ],
        sort_keys=True,
        default=str,
    )


def binding_token(*, account_id: str, version_id: str) -> str:
    """The credential a version's bindings present to the internal endpoints.

    Derived from SECRET_KEY, so nothing is stored and every version gets its
    own; it only ever sits in the runtime's config (bridge props). It names the
    account in the clear, so the runtime's binding gateway can share out its
    capacity by account without asking the database."""
    subject = f"{account_id}.{version_id}"
    mac = salted_hmac(_TOKEN_SALT, subject, algorithm="sha256").hexdigest()
    return f"{subject}.{mac}"


def account_for_token(*, token: str) -> str | None:
    """The account id a genuine binding credential names; None for any other
    string. Reads no database."""
    account_id, _, rest = token.partition(".")
    version_id, _, _mac = rest.partition(".")
    if not account_id or not version_id:
        return None
    genuine = binding_token(account_id=account_id, version_id=version_id)
    return account_id if constant_time_compare(token, genuine) else None


def version_for_token(*, token: str) -> WorkerVersion | None:
    """The version whose credential ``token`` is, with its script and account."""
    account_id = account_for_token(token=token)
    if account_id is None:
        return None
    version_id = token.split(".")[1]
    return (
        WorkerVersion.objects.select_related("script__account")
        .filter(pk=version_id, script__account_id=account_id)
        .first()
    )


def worker_spec(*, version: WorkerVersion) -> WorkerSpec:
    """Everything workerd needs to run ``version``: its modules (main first),
    its bindings with its secrets, its Durable Object classes and its
    static assets config."""
    script = version.script
    modules = sorted(
        version.modules.all(), key=lambda m: (m.name != version.main_module, m.pk)
    )
    bindings = list(version.bindings or [])
    taken = {b.get("name") for b in bindings}
    bindings += [
        {"name": name, "type": "secret_text", "text": value}
        for name, (kind, value) in sorted((version.secrets or {}).items())
        if name not in taken and kind == "secret_text"
    ]
    metadata = version.metadata or {}
    assets = version.assets or {}
    return WorkerSpec(
        script_name=script.name,
        version_id=str(version.pk),
        version_created=version.created_at.isoformat(),
        compatibility_date=version.compatibility_date,
        compatibility_flags=tuple(version.compatibility_flags or ()),
        modules=tuple(
            Module(m.name, m.content_type, bytes(m.content)) for m in modules
        ),
        bindings=tuple(bindings),
        durable_objects=tuple(
            DurableObjectClass(ns.class_name, ns.pk, ns.use_sqlite)
            for ns in script.durable_object_namespaces.order_by("class_name")
        ),
        assets_config=(assets.get("config") or {}) if "manifest" in assets else None,
        service_worker=bool(metadata.get("body_part") and not version.main_module),
        binding_token=binding_token(
            account_id=script.account_id, version_id=str(version.pk)
        ),
    )


def _asset_path(root: Path, name: str) -> Path:
    parts = PurePosixPath(name).parts
    if not parts or parts[0] != "/" or any(p in ("..", ".") for p in parts[1:]):
        raise WorkerConfigInvalid(f"The asset path {name!r} is not valid.")
    return root.joinpath(*parts[1:])


def write_assets(*, version: WorkerVersion, directory: Path) -> int:
    """Copy the version's static assets from storage into ``directory``, as the
    files workerd's assets service serves. Returns the number of files."""
    manifest = (version.assets or {}).get("manifest") or {}
    blobs = {
        blob.hash: blob
        for blob in AssetBlob.objects.filter(
            account_id=version.script.account_id,
            hash__in=[entry.get("hash") for entry in manifest.values()],
        )
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, entry in manifest.items():
        blob = blobs.get(entry.get("hash"))
        if blob is None:
            raise WorkerConfigInvalid(f"The asset {name!r} was never uploaded.")
        target = _asset_path(directory, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            source = default_storage.open(blob.storage_name, "rb")
        except FileNotFoundError as exc:
            # One lost file fails this Worker, never the runtime that serves others.
            raise WorkerConfigInvalid(
                f"The asset {name!r} is missing from storage."
            ) from exc
        with source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)
    return len(manifest)


def write_version(
    *,
    version: WorkerVersion | None,
    directory: Path,
    paths: WorkerPaths,
    heap_mb: int,
    assets: bool = True,
    banner: str = "",
    spec: WorkerSpec | None = None,
) -> Path:
    """Render ``version`` (or a ``spec`` not stored yet) into ``directory``
    (config, modules, our helper Workers and, with ``assets``, its static files
    under ``assets/``) and return the config file; ``banner`` goes on its HTML
    pages. Everything workerd reads is then in ``directory``. Raises
    WorkerConfigInvalid."""
    if spec is None:
        assert version is not None
        spec = worker_spec(version=version)
    rendered = render_worker(spec, paths=paths, heap_mb=heap_mb, banner=banner)
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in rendered.files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(content)
    process.install_helpers(directory)
    (directory / "assets").mkdir(exist_ok=True)
    if assets and version is not None and "manifest" in (version.assets or {}):
        write_assets(version=version, directory=directory / "assets")
    config = directory / "config.capnp"
    config.write_text(rendered.config, encoding="utf-8")
    return config


class UploadRefused(DomainError):
    """What wrangler shows for an upload that cannot run (Cloudflare's 10021):
    the API's form of the runtime's WorkerConfigInvalid."""

    code = 10021
    message = "The uploaded script is not valid."


class WorkerStartupFailed(UploadRefused):
    """The upload was rendered but workerd refused it (syntax error, missing
    export, a top-level infinite loop ...): Cloudflare's 10021."""


def check_version_starts(
    *,
    version: WorkerVersion | None = None,
    spec: WorkerSpec | None = None,
    account_id: str | None = None,
) -> int | None:
    """Start ``version`` (or ``account_id``'s ``spec``, not stored yet) once
    in a scratch workerd, as Cloudflare validates an upload, and return its
    startup time in ms: in the same cell as the runtime would run it (the
    account's UID, no network, the same cgroup limits). Raises
    WorkerStartupFailed with workerd's message, UploadRefused for one that
    cannot even be rendered. Returns None when workerd is not installed here
    (the runtime then reports the failure on the claim page instead)."""
    try:
        binary = runtime_settings.workerd_binary()
        jailed = runtime_settings.wanted_sandbox()
    except process.RuntimeUnavailable:
        return None
    identity = None
    if jailed:  # allocated first: a first deploy briefly locks the account
        owner = account_id or (version.script.account_id if version else None)
        assert owner is not None, "a spec's start check names its account"
        identity = identity_for(account_id=owner)
    with tempfile.TemporaryDirectory(prefix="cp-check-") as scratch:
        root = Path(scratch)
        files = root / "version"
        objects = root / "do"
        objects.mkdir()
        try:
            config = write_version(
                version=version,
                spec=spec,
                directory=files,
                paths=process.worker_paths(
                    directory=files,
                    control_socket=root / "control.sock",
                    objects=objects,
                    cell=jailed,
                ),
                heap_mb=settings.CLAIMPORTAL_PREVIEW_HEAP_MB,
                assets=False,  # starting needs the folder, not the files
            )
        except WorkerConfigInvalid as invalid:
            raise UploadRefused(invalid.message) from None
        cell = None
        if identity is not None:
            sandbox.own(files, identity)
            sandbox.own(objects, identity)
            group = f"{sandbox.group_prefix(root)}-check"
            cell = process.make_cell(
                identity=identity,
                cgroup=group,
                limits=runtime_settings.limits(),
                objects=objects,
            )
        sockets = {
            name: process.unix_listener(root / f"{name}.sock")
            for name in ("http", "admin")
        }
        try:
            started = process.spawn(
                config=config,
                sockets=sockets,
                log=root / "log",
                cell=cell,
                timeout=settings.CLAIMPORTAL_PREVIEW_STARTUP_TIMEOUT_SECONDS,
                binary=binary,
            )
            process.stop(started.process, grace=0)
        except process.StartupFailed as failure:
            raise WorkerStartupFailed(
                f"The Worker failed to start: {failure.message}"
            ) from None
        finally:
            for listener in sockets.values():
                listener.close()
            if cell is not None:
                cell.cgroup.kill()
                cell.cgroup.remove()
        return started.startup_ms
