"""The layering arrows, as an allow-list: each module of `accounts` and of
`preview_runtime` belongs to one layer, and each layer names the layers (and
the `claimportal` modules) it may import. models <- selectors <- services <-
pages, API, edges; pages and the API never import each other; services never
see a request; the runtime's core imports neither Django nor any of ours.

Every rule is also fed a module that breaks it (`BROKEN`), so each can fail."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("accounts", "preview_runtime")

# Longest prefix wins. A new module outside every prefix fails the test until
# it is given a layer.
LAYER_OF_PREFIX = {
    "accounts.models": "core",
    "accounts.tokens": "core",
    "accounts.exceptions": "core",
    "accounts.selectors": "selectors",
    "accounts.services": "services",
    "accounts.http": "web",
    "accounts.views": "pages",
    "accounts.inventory_html": "pages",
    "accounts.report_views": "pages",
    "accounts.forms": "pages",
    "accounts.urls": "pages",
    "accounts.discovery": "pages",
    "accounts.templatetags": "pages",
    "accounts.api": "api",
    # The part of the API kit the Worker-binding endpoints share: declared
    # inputs, the wire shapes both APIs read, and the mapping of failures.
    "accounts.api.inputs": "kit",
    "accounts.api.wire": "kit",
    "accounts.api.failures": "kit",
    "accounts.edge": "runtime",
    "accounts.tail_server": "runtime",  # behind the edge, as the runtime is
    # The preview runtime: a core that knows no Django (processes, cells,
    # routes, config rendering, the supervisor loop), its model-backed
    # services, and the binding endpoints.
    "preview_runtime": "runtime-core",
    "preview_runtime.services": "services",
    "preview_runtime.endpoints": "runtime",
    "accounts.context_processors": "pages",
    "accounts.tasks": "edges",
    "accounts.admin": "edges",
    "accounts.management": "edges",
    "accounts.apps": "apps",
    "accounts.__init__": "core",
}
BELOW_EDGES = {"core", "selectors", "services"}
MAY_IMPORT: dict[str, set[str]] = {
    "core": {"core"},
    "selectors": {"core", "selectors"},
    # Services use the runtime core's data types and pure functions.
    "services": {"core", "selectors", "services", "runtime-core"},
    "runtime-core": {"runtime-core"},
    # What pages and the API share about a request (its origin).
    "web": {"core", "services", "web"},
    "pages": BELOW_EDGES | {"web", "pages"},
    "api": BELOW_EDGES | {"web", "api", "kit"},
    "kit": {"core", "services", "kit"},
    # The preview runtime's Django side: binding endpoints and the edge.
    "runtime": BELOW_EDGES | {"runtime", "runtime-core", "kit"},
    # Tasks, admin and commands call services; the commands that run the
    # preview runtime and the edge also wire them up.
    "edges": BELOW_EDGES | {"runtime-core"},
    # Signal wiring: connects models to the services that react.
    "apps": {"core", "services"},
}
EXCEPTIONS = {
    ("accounts.management.commands.edge", "runtime"),
    ("accounts.management.commands.tail_server", "runtime"),
}
# Layers that import no framework at all (the runtime's core runs, and is
# tested, without Django's setup).
NO_FRAMEWORK = {"runtime-core"}
FRAMEWORKS = ("django", "celery", "allauth", "claimportal")
# From the project package, only what wiring needs: the cache helpers and
# the Celery app.
CLAIMPORTAL_ALLOWED = {
    "services": {"claimportal.cache", "claimportal.celery"},
    "edges": {"claimportal.celery"},
}


def layer_of(module: str) -> str | None:
    if module in PACKAGES or module.partition(".")[0] not in PACKAGES:
        return None
    best = max(
        (p for p in LAYER_OF_PREFIX if module == p or module.startswith(p + ".")),
        key=len,
        default=None,
    )
    return LAYER_OF_PREFIX[best] if best else "unassigned"


def imports_of(source: str, package: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append(module)
            found += [f"{module}.{alias.name}" for alias in node.names]
    return found


def takes_a_request(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names = [a.arg for a in node.args.args + node.args.kwonlyargs]
            if "request" in names:
                found.append(f"{node.name}() takes a request")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "django.http"
        ):
            found.append("imports django.http")
        if isinstance(node, ast.Import) and any(
            a.name.startswith("django.http") for a in node.names
        ):
            found.append("imports django.http")
    return found


def violations(module: str, source: str) -> list[str]:
    """Every rule ``module`` (with this ``source``) breaks."""
    own = layer_of(module)
    if own in ("unassigned", None):
        return [f"{module} has no layer: add it to LAYER_OF_PREFIX"]
    package = module if module.endswith("__init__") else module.rsplit(".", 1)[0]
    package = package.removesuffix(".__init__")
    found = []
    for imported in imports_of(source, package):
        if own in NO_FRAMEWORK and imported.partition(".")[0] in FRAMEWORKS:
            found.append(f"{module} ({own}) imports {imported}")
            continue
        if imported.startswith("claimportal"):
            allowed = CLAIMPORTAL_ALLOWED.get(own, set())
            if not any(imported == a or imported.startswith(a + ".") for a in allowed):
                found.append(f"{module} ({own}) imports {imported}")
            continue
        target = layer_of(imported)
        if target is None:
            continue  # the package itself
        if target not in MAY_IMPORT[own] and (module, target) not in EXCEPTIONS:
            found.append(f"{module} ({own}) imports {imported} ({target})")
    if own == "services":
        found += [f"{module}: {problem}" for problem in takes_a_request(source)]
    return found


def source_files():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if "migrations" not in parts:
                yield ".".join(parts), path


@pytest.mark.parametrize(("module", "path"), list(source_files()), ids=str)
def test_every_module_keeps_to_its_layer(module, path):
    assert violations(module, path.read_text()) == []


# One module per rule, each breaking it.
BROKEN = {
    "models import services": (
        "accounts.models",
        "from accounts.services import purge",
    ),
    "selectors import services": (
        "accounts.selectors",
        "from accounts.services.claims import claim_status",
    ),
    "services import pages": ("accounts.services.kv", "from accounts import views"),
    "services import the API": (
        "accounts.services.kv",
        "from accounts.api.kit import endpoint",
    ),
    "services import the binding endpoints": (
        "accounts.services.d1",
        "from preview_runtime.endpoints import api",
    ),
    "the runtime core imports Django": (
        "preview_runtime.supervisor",
        "from django.conf import settings",
    ),
    "the runtime core imports Django's database": (
        "preview_runtime.process",
        "from django.db import close_old_connections",
    ),
    "the runtime core imports models": (
        "preview_runtime.supervisor",
        "from accounts.models import WorkerVersion",
    ),
    "the runtime core imports its Django side": (
        "preview_runtime.routes",
        "from .services.state import desired_previews",
    ),
    "the runtime core imports claimportal": (
        "preview_runtime.render",
        "from claimportal.cache import CACHE_DOWN",
    ),
    "the runtime core imports Celery": ("preview_runtime.cron", "import celery"),
    "services import settings from claimportal": (
        "accounts.services.kv",
        "from claimportal.settings import base",
    ),
    "services import claimportal's URLs": (
        "accounts.services.kv",
        "import claimportal.urls",
    ),
    "services take a request": (
        "accounts.services.kv",
        "def create(*, request):\n    pass",
    ),
    "services import django.http": (
        "accounts.services.kv",
        "from django.http import HttpRequest",
    ),
    "pages import the API": (
        "accounts.views",
        "from accounts.api.envelope import error_response",
    ),
    "the API imports pages": ("accounts.api.kv", "from accounts.views import home"),
    "the API imports forms": ("accounts.api.kv", "from accounts import forms"),
    "the API imports the runtime": (
        "accounts.api.workers",
        "from preview_runtime.endpoints.api import binding",
    ),
    "tasks import pages": ("accounts.tasks", "from accounts.views import home"),
    "tasks import the API": ("accounts.tasks", "import accounts.api.kv"),
    "tasks import the admin": ("accounts.tasks", "from accounts import admin"),
    "the admin imports pages": ("accounts.admin", "from . import views"),
    "the admin imports the API": (
        "accounts.admin",
        "from .api.serializers import account_json",
    ),
    "a command imports the API": (
        "accounts.management.commands.purge_expired",
        "from accounts.api import kv",
    ),
    "the runtime imports the API": (
        "preview_runtime.endpoints.api",
        "from accounts.api.kit import endpoint",
    ),
    "the API imports the runtime core": (
        "accounts.api.workers",
        "from preview_runtime import supervisor",
    ),
    "the kit imports the envelope": (
        "accounts.api.inputs",
        "from accounts.api.envelope import failure",
    ),
    "the runtime imports pages": (
        "preview_runtime.endpoints.urls",
        "from accounts.views import home",
    ),
    "apps imports pages": ("accounts.apps", "from accounts import views"),
    "apps imports the admin": ("accounts.apps", "from .admin import site"),
    "pages import claimportal": ("accounts.views", "from claimportal import celery"),
    "a module with no layer": ("accounts.newthing", "import json"),
}


@pytest.mark.parametrize(("module", "source"), BROKEN.values(), ids=BROKEN.keys())
def test_each_rule_fails_a_module_that_breaks_it(module, source):
    assert violations(module, source)


ALLOWED = {
    "services import each other": (
        "accounts.services.claims",
        "from accounts.services.purge import purge_account_now",
    ),
    "services use the cache helpers": (
        "accounts.services.pow",
        "from claimportal.cache import CACHE_DOWN",
    ),
    "the admin calls services": (
        "accounts.admin",
        "from .services import moderation\nfrom . import selectors, models",
    ),
    "services use the runtime core": (
        "preview_runtime.services.state",
        "from preview_runtime.targets import Desired",
    ),
    "the runtime core imports itself": (
        "preview_runtime.supervisor",
        "from . import process\nfrom .routes import Routes",
    ),
    "the command wires the runtime up": (
        "accounts.management.commands.preview_runtime",
        "from preview_runtime.supervisor import Supervisor\n"
        "from preview_runtime.services import wiring",
    ),
    "the binding endpoints use the kit": (
        "preview_runtime.endpoints.api",
        "from accounts.api.inputs import Input\nfrom accounts.api.failures import x",
    ),
    "the API reads a request's origin": (
        "accounts.api.provisioning",
        "from accounts.http import request_origin",
    ),
}


@pytest.mark.parametrize(("module", "source"), ALLOWED.values(), ids=ALLOWED.keys())
def test_the_allowed_arrows_pass(module, source):
    assert violations(module, source) == []


CORE_PROBE = """
import pkgutil, importlib, sys
import preview_runtime
core = [
    m.name for m in pkgutil.walk_packages(preview_runtime.__path__, "preview_runtime.")
    if not m.name.startswith(("preview_runtime.services", "preview_runtime.endpoints"))
]
for name in core:
    importlib.import_module(name)
print(len(core), sorted(m for m in sys.modules if m.split(".")[0] in FRAMEWORKS))
"""


@pytest.mark.slow
def test_the_runtime_core_runs_without_django():
    """Every module of the core imported in a fresh interpreter with no Django
    settings: none of them pulls in a framework, not even indirectly."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    probe = f"FRAMEWORKS = {FRAMEWORKS!r}\n" + CORE_PROBE
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    count, loaded = done.stdout.split(" ", 1)
    assert int(count) >= 10  # supervisor, process, sandbox, routes, render ...
    assert loaded.strip() == "[]"
