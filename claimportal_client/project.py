"""A wrangler project (wrangler.json, wrangler.jsonc or wrangler.toml) read into
what the client uploads.

The client does not bundle: the main module and the modules beside it are
uploaded as they are, so a Worker may import its own files and the runtime's
(``cloudflare:*``, ``node:*``), not npm packages. Use wrangler for those.
"""

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .assets import AssetBundle, collect
from .errors import ProjectError

CONFIG_NAMES = ("wrangler.json", "wrangler.jsonc", "wrangler.toml")
# wrangler's default module rules, by extension.
MODULE_TYPES = {
    ".js": "application/javascript+module",
    ".mjs": "application/javascript+module",
    ".txt": "text/plain",
    ".html": "text/plain",
    ".sql": "text/plain",
    ".bin": "application/octet-stream",
    ".wasm": "application/wasm",
}
BARE_IMPORT = re.compile(
    r"""(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"./][^'"]*)['"]""",
    re.MULTILINE,
)
RUNTIME_PREFIXES = ("cloudflare:", "node:", "workerd:")
SUPPORTED = {
    "name",
    "main",
    "compatibility_date",
    "compatibility_flags",
    "vars",
    "kv_namespaces",
    "d1_databases",
    "durable_objects",
    "migrations",
    "queues",
    "assets",
    "triggers",
    "workers_dev",
    "observability",
    "hyperdrive",
    "$schema",
    "account_id",
    "preview_urls",
    "placement",
    "limits",
    "keep_vars",
    "upload_source_maps",
}


@dataclass(frozen=True)
class Module:
    name: str
    data: bytes
    content_type: str


@dataclass(frozen=True)
class KVNamespace:
    binding: str
    title: str
    id: str | None = None


@dataclass(frozen=True)
class D1Database:
    binding: str
    name: str
    id: str | None = None


@dataclass(frozen=True)
class QueueProducer:
    binding: str
    queue: str


@dataclass(frozen=True)
class QueueConsumer:
    queue: str
    settings: dict[str, int]
    dead_letter_queue: str | None = None


@dataclass(frozen=True)
class Migration:
    tag: str
    steps: dict[str, Any]


@dataclass
class WorkerProject:
    """Everything one deploy sends. ``modules[0]`` is the main module."""

    name: str
    compatibility_date: str
    compatibility_flags: list[str] = field(default_factory=list)
    modules: list[Module] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    kv_namespaces: list[KVNamespace] = field(default_factory=list)
    d1_databases: list[D1Database] = field(default_factory=list)
    durable_objects: dict[str, str] = field(default_factory=dict)  # binding: class
    migrations: list[Migration] = field(default_factory=list)
    queue_producers: list[QueueProducer] = field(default_factory=list)
    queue_consumers: list[QueueConsumer] = field(default_factory=list)
    hyperdrive: dict[str, str] = field(default_factory=dict)  # binding: config id
    assets: AssetBundle | None = None
    assets_binding: str | None = None
    assets_config: dict[str, Any] = field(default_factory=dict)
    crons: list[str] | None = None
    workers_dev: bool = True
    observability: dict[str, Any] | None = None

    @property
    def main_module(self) -> str | None:
        return self.modules[0].name if self.modules else None


def strip_jsonc(text: str) -> str:
    """JSON with comments and trailing commas, as plain JSON."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(c)
            i += 1
    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))


def read_config(directory: Path) -> tuple[Path, dict[str, Any]]:
    for name in CONFIG_NAMES:
        path = directory / name
        if path.is_file():
            break
    else:
        raise ProjectError(f"No {', '.join(CONFIG_NAMES)} in {directory}.")
    try:
        if path.suffix == ".toml":
            config = tomllib.loads(path.read_text())
        else:
            config = json.loads(strip_jsonc(path.read_text()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{path.name} is not valid: {exc}") from exc
    if not isinstance(config, dict):
        raise ProjectError(f"{path.name} must hold an object.")
    return path, config


def _default_name(worker: str, binding: str) -> str:
    return f"{worker}-{binding.lower().replace('_', '-')}"


def _items(config: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = config.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ProjectError(f"{key} must be a list of objects.")
    return value


def _text(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise ProjectError(f"{where} needs a {key!r}.")
    return value


def _modules(root: Path, main: str) -> list[Module]:
    entry = (root / main).resolve()
    if not entry.is_file():
        raise ProjectError(f"The main module {main} does not exist.")
    if entry.suffix not in (".js", ".mjs"):
        raise ProjectError("The main module must be JavaScript (.js or .mjs).")
    source = entry.read_text()
    bare = [
        m for m in BARE_IMPORT.findall(source) if not m.startswith(RUNTIME_PREFIXES)
    ]
    if bare:
        raise ProjectError(
            f"{main} imports packages ({', '.join(sorted(set(bare)))}); this client "
            "uploads modules unbundled. Deploy it with wrangler instead."
        )
    modules = [Module(entry.name, entry.read_bytes(), MODULE_TYPES[entry.suffix])]
    for path in sorted(entry.parent.rglob("*")):
        if path == entry or not path.is_file() or path.suffix not in MODULE_TYPES:
            continue
        name = PurePosixPath(path.relative_to(entry.parent).as_posix()).as_posix()
        modules.append(Module(name, path.read_bytes(), MODULE_TYPES[path.suffix]))
    return modules


def _queues(project: WorkerProject, queues: Any) -> None:
    if not isinstance(queues, dict):
        raise ProjectError("queues must be an object with producers and consumers.")
    for entry in _items(queues, "producers"):
        project.queue_producers.append(
            QueueProducer(
                binding=_text(entry, "binding", "A queue producer"),
                queue=_text(entry, "queue", "A queue producer"),
            )
        )
    for entry in _items(queues, "consumers"):
        settings = {
            "batch_size": entry.get("max_batch_size"),
            "max_retries": entry.get("max_retries"),
            "max_concurrency": entry.get("max_concurrency"),
            "retry_delay": entry.get("retry_delay"),
        }
        if entry.get("max_batch_timeout") is not None:
            settings["max_wait_time_ms"] = int(entry["max_batch_timeout"] * 1000)
        project.queue_consumers.append(
            QueueConsumer(
                queue=_text(entry, "queue", "A queue consumer"),
                settings={k: v for k, v in settings.items() if v is not None},
                dead_letter_queue=entry.get("dead_letter_queue"),
            )
        )


def _assets(project: WorkerProject, root: Path, assets: Any) -> None:
    if not isinstance(assets, dict) or "directory" not in assets:
        raise ProjectError("assets needs a directory.")
    project.assets = collect((root / str(assets["directory"])).resolve())
    project.assets_binding = assets.get("binding")
    project.assets_config = {
        key: assets[key]
        for key in ("html_handling", "not_found_handling", "run_worker_first")
        if key in assets
    }
    project.assets_config.update(project.assets.rules)


def load_project(directory: Path | str) -> WorkerProject:
    """The project in ``directory``, or ProjectError saying what is wrong."""
    root = Path(directory).resolve()
    path, config = read_config(root)
    unknown = sorted(set(config) - SUPPORTED)
    if unknown:
        raise ProjectError(
            f"{path.name} uses {', '.join(unknown)}, which this client does not "
            "deploy. Use wrangler for this project."
        )
    name = _text(config, "name", path.name)
    project = WorkerProject(
        name=name,
        compatibility_date=_text(config, "compatibility_date", path.name),
        compatibility_flags=list(config.get("compatibility_flags") or []),
        vars=dict(config.get("vars") or {}),
        workers_dev=bool(config.get("workers_dev", True)),
        observability=config.get("observability"),
    )
    if config.get("main"):
        project.modules = _modules(root, str(config["main"]))
    elif "assets" not in config:
        raise ProjectError(f"{path.name} needs a main module or assets.")
    for entry in _items(config, "kv_namespaces"):
        binding = _text(entry, "binding", "A KV namespace")
        project.kv_namespaces.append(
            KVNamespace(binding, _default_name(name, binding), entry.get("id"))
        )
    for entry in _items(config, "d1_databases"):
        binding = _text(entry, "binding", "A D1 database")
        project.d1_databases.append(
            D1Database(
                binding,
                entry.get("database_name") or _default_name(name, binding),
                entry.get("database_id"),
            )
        )
    for entry in _items(config.get("durable_objects") or {}, "bindings"):
        if entry.get("script_name"):
            raise ProjectError("Durable Objects of other Workers are not supported.")
        binding = _text(entry, "name", "A Durable Object binding")
        project.durable_objects[binding] = _text(entry, "class_name", binding)
    for entry in _items(config, "migrations"):
        steps = {k: v for k, v in entry.items() if k != "tag"}
        project.migrations.append(Migration(_text(entry, "tag", "A migration"), steps))
    for entry in _items(config, "hyperdrive"):
        binding = _text(entry, "binding", "A Hyperdrive binding")
        project.hyperdrive[binding] = _text(entry, "id", binding)
    if "queues" in config:
        _queues(project, config["queues"])
    if "assets" in config:
        _assets(project, root, config["assets"])
    triggers = config.get("triggers")
    if isinstance(triggers, dict) and "crons" in triggers:
        project.crons = [str(c) for c in triggers["crons"]]
    return project
