"""workerd configs for one Worker version, as pure functions.

``render_worker`` maps what wrangler uploaded (modules, bindings, Durable Object
classes, static assets) to a config and the files it embeds, with the
unclaimed-preview banner when there is one. It touches neither the disk, the
database nor the clock, so it is tested without workerd. Every string a user
chose goes through ``capnp.text``.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

from accounts.exceptions import DomainError

from . import capnp

# Our own Workers (bridge, trigger, banner ...) are embedded from the import path
# that workerd gets with ``-I``: a leading "/" means that path, not the root.
JS = "/js/"
OWN_COMPATIBILITY_DATE = "2025-09-01"
DEFAULT_COMPATIBILITY_DATE = "2025-09-01"

MODULE_KINDS = {
    "application/javascript+module": "esModule",
    "text/javascript": "esModule",
    "application/javascript": "commonJsModule",
    "text/plain": "text",
    "application/octet-stream": "data",
    "application/wasm": "wasm",
    "application/json": "json",
}
# Parts a Worker may upload that the runtime has no use for.
IGNORED_CONTENT_TYPES = {"application/source-map"}
# Binding types that are plain values.
VALUE_BINDINGS = {"plain_text": "text", "secret_text": "text", "json": "json"}


class WorkerConfigInvalid(DomainError):
    """What wrangler shows for an upload that cannot run (Cloudflare's 10021)."""

    code = 10021
    message = "The uploaded script is not valid."


@dataclass(frozen=True)
class Module:
    name: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class DurableObjectClass:
    class_name: str
    unique_key: str  # stable across versions: where the objects' data lives
    enable_sql: bool


@dataclass(frozen=True)
class WorkerSpec:
    """Everything needed to run one version of one Worker."""

    script_name: str
    version_id: str
    version_created: str  # ISO 8601, for the version_metadata binding
    compatibility_date: str
    compatibility_flags: tuple[str, ...]
    modules: tuple[Module, ...]  # the main module first
    bindings: tuple[dict[str, Any], ...]  # upload-metadata shape, secrets included
    durable_objects: tuple[DurableObjectClass, ...] = ()
    assets_config: dict[str, Any] | None = None  # None: the Worker has no assets
    service_worker: bool = False  # the old format: one script, global bindings
    # The credential the bridge presents to Django for this version's bindings.
    binding_token: str = ""


@dataclass(frozen=True)
class WorkerPaths:
    """Where the runtime keeps this Worker's things (absolute paths)."""

    control_socket: str  # Django's internal binding endpoints
    durable_objects: str  # a directory, kept across versions
    assets: str  # a directory holding this version's asset files
    services: dict[str, str] = field(default_factory=dict)  # script -> http socket


@dataclass(frozen=True)
class RenderedWorker:
    config: str
    files: dict[str, bytes]  # relative to the config file


def _base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _bridge(kind: str, resource: Any, token: str) -> str:
    """A typed binding served by the bridge, which tells Django who is asking."""
    props = capnp.json_text({"kind": kind, "id": str(resource or ""), "token": token})
    return f'(name = "bridge", props = (json = {props}))'


def _unsupported(name: str, kind: str, why: str = "") -> str:
    """A binding whose every method throws a clear error when it is called."""
    inner = [
        f"(name = {capnp.text(k)}, text = {capnp.text(v)})"
        for k, v in (("binding", name), ("type", kind), ("why", why))
    ]
    return (
        f'wrapped = (moduleName = "claimportal:unsupported", '
        f"innerBindings = [{', '.join(inner)}])"
    )


# Service-worker format: parts bound as globals, embedded from their files.
BLOB_BINDINGS = {"wasm_module": "wasmModule", "text_blob": "text", "data_blob": "data"}


def _binding(
    binding: dict[str, Any],
    spec: WorkerSpec,
    paths: WorkerPaths,
    files: dict[str, str],
) -> str:
    name = str(binding.get("name", ""))
    kind = str(binding.get("type", ""))
    token = spec.binding_token
    if kind in BLOB_BINDINGS and binding.get("part") in files:
        body = f'{BLOB_BINDINGS[kind]} = embed "{files[binding["part"]]}"'
    elif kind in VALUE_BINDINGS:
        if kind == "json":
            value = capnp.json_text(binding.get("json"))
        else:
            value = capnp.text(str(binding.get("text", "")))
        body = f"{VALUE_BINDINGS[kind]} = {value}"
    elif kind == "kv_namespace":
        body = f"kvNamespace = {_bridge('kv', binding.get('namespace_id'), token)}"
    elif kind == "d1":
        fetcher = _bridge("d1", binding.get("id"), token)
        body = (
            'wrapped = (moduleName = "cloudflare-internal:d1-api", '
            f'innerBindings = [(name = "fetcher", service = {fetcher})])'
        )
    elif kind == "queue":
        body = f"queue = {_bridge('queue', binding.get('queue_name'), token)}"
    elif kind == "durable_object_namespace":
        own = binding.get("script_name") in (None, "", spec.script_name)
        if own:
            body = (
                "durableObjectNamespace = (className = "
                f"{capnp.text(str(binding['class_name']))})"
            )
        else:
            why = "Durable Objects of another Worker are not bound in previews"
            body = _unsupported(name, kind, why)
    elif kind == "assets" and spec.assets_config is not None:
        body = 'service = (name = "assets", entrypoint = "AssetWorker")'
    elif kind == "service" and binding.get("service") == spec.script_name:
        body = 'service = "app"'
    elif kind == "service" and binding.get("service") in paths.services:
        body = f"service = {capnp.text('service:' + str(binding['service']))}"
    elif kind == "version_metadata":
        meta = {"id": spec.version_id, "tag": "", "timestamp": spec.version_created}
        body = f"json = {capnp.json_text(meta)}"
    elif spec.service_worker:  # internal modules (ours below) need ES modules
        body = 'service = "unsupported"'
    else:
        body = _unsupported(name, kind)
    return f"(name = {capnp.text(name)}, {body})"


def _module(index: int, module: Module) -> str:
    kind = MODULE_KINDS.get(_base_type(module.content_type))
    if kind is None:
        raise WorkerConfigInvalid(
            f"Module {module.name!r} has content type {module.content_type!r}, "
            "which previews cannot run."
        )
    return f'(name = {capnp.text(module.name)}, {kind} = embed "modules/{index}")'


def _assets_config(config: dict[str, Any]) -> dict[str, Any]:
    """wrangler's uploaded assets config in the shape workerd's assets service
    reads: the text of ``_headers`` and ``_redirects`` under its own keys."""
    out: dict[str, Any] = {
        key: config[key]
        for key in ("html_handling", "not_found_handling", "run_worker_first")
        if key in config
    }
    for uploaded, ours in (("_headers", "headers"), ("_redirects", "redirects")):
        if isinstance(config.get(uploaded), str):
            out[ours] = config[uploaded]
    return out


def _worker(
    name: str,
    *,
    code: str,
    date: str,
    flags: tuple[str, ...] = (),
    bindings: list[str] | None = None,
    extra: str = "",
) -> str:
    """A worker service; every Worker, ours included, gets no outbound network."""
    flag_list = ", ".join(capnp.text(flag) for flag in flags)
    return (
        f"(name = {capnp.text(name)}, worker = ({code}, "
        f"compatibilityDate = {capnp.text(date)}, compatibilityFlags = [{flag_list}], "
        f"bindings = [{', '.join(bindings or [])}], {extra}"
        'globalOutbound = "outbound"))'
    )


def _own_worker(
    name: str, script: str, bindings: list[str], flags: tuple[str, ...] = ()
) -> str:
    code = f'modules = [(name = "{script}", esModule = embed "{JS}{script}")]'
    return _worker(
        name, code=code, date=OWN_COMPATIBILITY_DATE, flags=flags, bindings=bindings
    )


def _external(name: str, socket: str) -> str:
    address = capnp.text("unix:" + socket)
    return f"(name = {capnp.text(name)}, external = (address = {address}, http = ()))"


def _common_services() -> list[str]:
    return [
        _own_worker("outbound", "outbound.js", []),
        # Belt and braces: the implicit "internet" service would allow the public
        # internet; ours allows nothing.
        '(name = "internet", network = (allow = []))',
    ]


EXTENSIONS = (
    'extensions = [(modules = [(name = "claimportal:unsupported", internal = true, '
    f'esModule = embed "{JS}unsupported.js"), '
    f'(name = "claimportal:banner", esModule = embed "{JS}banner.js")])]'
)

# The main module of an unclaimed ES-module Worker: the Worker's own, re-exported
# with the banner added to its fetch() answers, in the same isolate.
BANNER_MAIN = "claimportal-banner-main.js"
_PLAIN_MODULE_NAME = re.compile(r"[A-Za-z0-9_@+-][A-Za-z0-9_@+./-]*")


def _banner_in_place(spec: WorkerSpec, modules: list[Module]) -> bool:
    """Whether the banner can wrap the Worker's main module (no hop), rather
    than an entry Worker in front of it (assets, service-worker format ...)."""
    main = modules[0].name if modules else ""
    return (
        bool(modules)
        and not spec.service_worker
        and spec.assets_config is None
        and MODULE_KINDS.get(_base_type(modules[0].content_type)) == "esModule"
        and bool(_PLAIN_MODULE_NAME.fullmatch(main))
        and ".." not in main.split("/")
        and all(m.name != BANNER_MAIN for m in modules)
    )


def _banner_main(main: str, banner: str) -> str:
    """(name, esModule = source) of the module that wraps ``main``."""
    specifier = json.dumps("./" + main)
    source = (
        f"import * as worker from {specifier};\n"
        'import { wrapHandler } from "claimportal:banner";\n'
        f"export * from {specifier};\n"
        f"export default wrapHandler(worker.default, {json.dumps(banner)});\n"
    )
    return f"(name = {capnp.text(BANNER_MAIN)}, esModule = {capnp.text(source)})"


def _assets_service(spec: WorkerSpec, paths: WorkerPaths, has_code: bool) -> str:
    assert spec.assets_config is not None
    parts = [
        f"path = {capnp.text(paths.assets)}",
        f"config = {capnp.json_text(_assets_config(spec.assets_config))}",
    ]
    if has_code:
        parts.append('userWorker = "app"')
    else:  # assets only: the service needs the dates a user Worker would give it
        date = spec.compatibility_date or DEFAULT_COMPATIBILITY_DATE
        flags = ", ".join(capnp.text(flag) for flag in spec.compatibility_flags)
        parts += [
            f"compatibilityDate = {capnp.text(date)}",
            f"compatibilityFlags = [{flags}]",
        ]
    return f'(name = "assets", assets = ({", ".join(parts)}))'


def _tail_hook(spec: WorkerSpec) -> tuple[str, str]:
    """workerd's ``tails`` for the Worker (to add to its config) and our tail
    Worker, which forwards every trace to claimportal with the version's
    credential (for ``wrangler tail`` and the recent events pages show)."""
    props = capnp.json_text({"token": spec.binding_token})
    hook = f'tails = [(name = "tail", props = (json = {props}))], '
    control = ['(name = "CONTROL", service = "control")']
    return hook, _own_worker("tail", "tail.js", control)


def _app_services(
    spec: WorkerSpec, paths: WorkerPaths, modules: list[Module], banner_main: str
) -> list[str]:
    files = {m.name: f"modules/{i}" for i, m in enumerate(modules)}
    if spec.service_worker:
        code = 'serviceWorkerScript = embed "modules/0"'
    else:
        listed = [_module(i, m) for i, m in enumerate(modules)]
        if banner_main:
            listed.insert(0, banner_main)
        code = f"modules = [{', '.join(listed)}]"
    services = []
    extra = ""
    if spec.durable_objects:
        classes = ", ".join(
            f"(className = {capnp.text(do.class_name)}, "
            f"uniqueKey = {capnp.text(do.unique_key)}, "
            f"enableSql = {'true' if do.enable_sql else 'false'})"
            for do in spec.durable_objects
        )
        extra = (
            f"durableObjectNamespaces = [{classes}], "
            'durableObjectStorage = (localDisk = "do-disk"), '
        )
        disk = capnp.text(paths.durable_objects)
        services.append(f'(name = "do-disk", disk = (path = {disk}, writable = true))')
    tail_hook, tail_worker = _tail_hook(spec)
    app = _worker(
        "app",
        code=code,
        date=spec.compatibility_date or DEFAULT_COMPATIBILITY_DATE,
        flags=spec.compatibility_flags,
        bindings=[_binding(b, spec, paths, files) for b in spec.bindings],
        extra=tail_hook + extra,
    )
    bridge = _own_worker(
        "bridge", "bridge.js", ['(name = "CONTROL", service = "control")']
    )
    services = [
        app,
        *services,
        bridge,
        tail_worker,
        _external("control", paths.control_socket),
    ]
    services += [
        _external(f"service:{script}", socket)
        for script, socket in sorted(paths.services.items())
    ]
    if spec.service_worker:
        services.append(_own_worker("unsupported", "unsupported-service.js", []))
    return services


def _config(services: list[str], *tail: str) -> str:
    lines = [
        'using Workerd = import "/workerd/workerd.capnp";',
        "const config :Workerd.Config = (",
        "  services = [\n    " + ",\n    ".join(services) + "\n  ],",
        *(f"  {line}," for line in tail),
        ");",
    ]
    return "\n".join(lines) + "\n"


def render_worker(
    spec: WorkerSpec, *, paths: WorkerPaths, heap_mb: int, banner: str = ""
) -> RenderedWorker:
    """The workerd config that runs ``spec``, and the module files it embeds.

    Sockets ``http`` (visitors) and ``admin`` (queue and cron triggers) have no
    address: the runtime passes them as file descriptors. ``banner`` (HTML,
    escaped already) is added to every HTML page the Worker answers with.
    Raises WorkerConfigInvalid for an upload that cannot run.
    """
    modules = [
        m
        for m in spec.modules
        if _base_type(m.content_type) not in IGNORED_CONTENT_TYPES
    ]
    has_code = bool(modules)
    if not has_code and spec.assets_config is None:
        raise WorkerConfigInvalid("The upload has neither modules nor static assets.")
    in_place = bool(banner) and _banner_in_place(spec, modules)
    banner_main = _banner_main(modules[0].name, banner) if in_place else ""
    services = _app_services(spec, paths, modules, banner_main) if has_code else []
    trigger = ['(name = "USER", service = "app")'] if has_code else []
    services.append(
        _own_worker(
            "trigger", "trigger.js", trigger, flags=("service_binding_extra_handlers",)
        )
    )
    if spec.assets_config is not None:
        services.append(_assets_service(spec, paths, has_code))
    front = "assets" if spec.assets_config is not None else "app"
    if banner and not in_place:
        bindings = [
            f'(name = "BANNER", text = {capnp.text(banner)})',
            f'(name = "TARGET", service = "{front}")',
        ]
        services.append(_own_worker("banner", "banner.js", bindings))
        front = "banner"
    services += _common_services()
    config = _config(
        services,
        EXTENSIONS,
        f'v8Flags = ["--max-old-space-size={int(heap_mb)}"]',
        f'sockets = [(name = "http", http = (), service = "{front}"), '
        '(name = "admin", http = (), service = "trigger")]',
    )
    files = {f"modules/{i}": m.content for i, m in enumerate(modules)}
    return RenderedWorker(config=config, files=files)
