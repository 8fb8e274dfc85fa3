"""The layering arrows: models <- selectors <- services <- views, api, tasks, admin.

A lower layer never imports a higher one; services never see a request."""

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "accounts"

LAYERS = {
    "models": 0,
    "tokens": 0,
    "exceptions": 0,
    "selectors": 1,
    "services": 2,
    "views": 3,
    "http": 3,
    "api": 3,
    "tasks": 3,
    "admin": 3,
    "forms": 3,
    "urls": 3,
    "management": 3,
    "previews": 3,
    "edge": 3,
    "discovery": 3,
    "report_views": 3,
    "templatetags": 3,
}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "accounts" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS else None


def imports_of(path: Path, package: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
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


def source_files():
    for path in sorted(APP.rglob("*.py")):
        rel = path.relative_to(APP.parent).with_suffix("")
        parts = list(rel.parts)
        if "migrations" in parts:
            continue
        package = ".".join(parts[:-1])
        yield path, ".".join(parts), package


@pytest.mark.parametrize(
    ("path", "module", "package"), list(source_files()), ids=lambda v: str(v)
)
def test_no_module_imports_a_higher_layer(path, module, package):
    own = layer_of(module)
    if own is None:
        return
    for imported in imports_of(path, package):
        target = layer_of(imported)
        if target is not None:
            assert LAYERS[target] <= LAYERS[own], f"{module} imports {imported}"


def test_services_never_take_a_request():
    for path in (APP / "services").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names = [a.arg for a in node.args.args + node.args.kwonlyargs]
                assert "request" not in names, f"{path.name}:{node.name}"
            if isinstance(node, ast.ImportFrom) and node.module == "django.http":
                pytest.fail(f"{path.name} imports django.http")


def test_the_rule_catches_an_upward_import(tmp_path):
    bad = tmp_path / "models.py"
    bad.write_text("from accounts.services import provisioning\n")
    imported = imports_of(bad, "accounts")
    assert any(LAYERS[layer_of(m)] > LAYERS["models"] for m in imported if layer_of(m))
