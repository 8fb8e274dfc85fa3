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

from accounts.models import AssetBlob, WorkerVersion

from . import process
from .render import (
    DurableObjectClass,
    Module,
    WorkerConfigInvalid,
    WorkerPaths,
    WorkerSpec,
    render_worker,
)

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


def binding_token(*, version_id: str) -> str:
    """The credential a version's bindings present to the internal endpoints.

    Derived from SECRET_KEY, so nothing is stored and every version gets its
    own; it only ever sits in the runtime's config (bridge props)."""
    mac = salted_hmac(_TOKEN_SALT, version_id, algorithm="sha256").hexdigest()
    return f"{version_id}.{mac}"


def version_for_token(*, token: str) -> WorkerVersion | None:
    """The version whose credential ``token`` is, with its script and account."""
    version_id, _, _mac = token.rpartition(".")
    if not version_id or not constant_time_compare(
        token, binding_token(version_id=version_id)
    ):
        return None
    return (
        WorkerVersion.objects.select_related("script__account")
        .filter(pk=version_id)
        .first()
    )


def worker_spec(*, version: WorkerVersion) -> WorkerSpec:
    """Everything workerd needs to run ``version``: its modules (main first),
    its bindings with the script's secrets, its Durable Object classes and its
    static assets config."""
    script = version.script
    modules = sorted(
        version.modules.all(), key=lambda m: (m.name != version.main_module, m.pk)
    )
    bindings = list(version.bindings or [])
    taken = {b.get("name") for b in bindings}
    bindings += [
        {"name": s.name, "type": "secret_text", "text": s.value}
        for s in script.secrets.all()
        if s.name not in taken and s.type == "secret_text"
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
        binding_token=binding_token(version_id=str(version.pk)),
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
    (config, modules and, with ``assets``, its static files) and return the
    config file; ``banner`` goes on its HTML pages. Raises WorkerConfigInvalid."""
    if spec is None:
        assert version is not None
        spec = worker_spec(version=version)
    rendered = render_worker(spec, paths=paths, heap_mb=heap_mb, banner=banner)
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in rendered.files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(content)
    Path(paths.assets).mkdir(parents=True, exist_ok=True)
    if assets and version is not None and "manifest" in (version.assets or {}):
        write_assets(version=version, directory=Path(paths.assets))
    config = directory / "config.capnp"
    config.write_text(rendered.config, encoding="utf-8")
    return config


class WorkerStartupFailed(WorkerConfigInvalid):
    """The upload was rendered but workerd refused it (syntax error, missing
    export, a top-level infinite loop ...): Cloudflare's 10021."""


def check_version_starts(
    *, version: WorkerVersion | None = None, spec: WorkerSpec | None = None
) -> int | None:
    """Start ``version`` (or a ``spec`` not stored yet) once in a scratch
    workerd, as Cloudflare validates an upload, and return its startup time in
    ms. Raises WorkerStartupFailed with
    workerd's message. Returns None when workerd is not installed here (the
    runtime then reports the failure on the claim page instead)."""
    try:
        binary = process.workerd_binary()
    except process.RuntimeUnavailable:
        return None
    with tempfile.TemporaryDirectory(prefix="cp-check-") as scratch:
        root = Path(scratch)
        paths = WorkerPaths(
            control_socket=str(root / "control.sock"),
            durable_objects=str(root / "do"),
            assets=str(root / "assets"),
        )
        (root / "do").mkdir()
        config = write_version(
            version=version,
            spec=spec,
            directory=root,
            paths=paths,
            heap_mb=settings.CLAIMPORTAL_PREVIEW_HEAP_MB,
            assets=False,  # starting needs the folder, not the files
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
                sandbox=False,
                timeout=settings.CLAIMPORTAL_PREVIEW_STARTUP_TIMEOUT_SECONDS,
                binary=binary,
            )
        except process.StartupFailed as failure:
            raise WorkerStartupFailed(
                f"The Worker failed to start: {failure.message}"
            ) from None
        finally:
            for listener in sockets.values():
                listener.close()
        process.stop(started.process, grace=0)
        return started.startup_ms
