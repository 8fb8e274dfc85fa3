"""The OpenAPI document of client/v4 stays in step with accounts/api/urls.py."""

import re
from http import HTTPStatus
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, resolve

from accounts.api import urls as api_urls
from accounts.api.openapi import document

PREFIX = "/client/v4"
CATCH_ALL = "api-unknown"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def routes(patterns: list, prefix: str = "") -> list[tuple[str, URLPattern]]:
    """Every (route text, pattern) of the URLconf, includes expanded."""
    found = []
    for entry in patterns:
        text = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found += routes(entry.url_patterns, text)
        else:
            found.append((text, entry))
    return found


def as_openapi_path(route: str) -> str:
    """``accounts/<str:account_id>/x`` (or a regex) -> ``/accounts/{account_id}/x``."""
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route)
    route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
    return "/" + route.lstrip("^").rstrip("$")


def sample(path: str) -> str:
    return re.sub(r"\{\w+\}", "0123456789abcdef0123456789abcdef", path)


def described_routes() -> list[tuple[str, URLPattern]]:
    return [
        (as_openapi_path(text), pattern)
        for text, pattern in routes(api_urls.urlpatterns)
        if pattern.name != CATCH_ALL
    ]


DOC = document()


def test_the_document_is_openapi_3_1_with_every_reference_defined():
    assert DOC["openapi"] == "3.1.0"
    schemas = DOC["components"]["schemas"]

    def refs(node: Any):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for reference in refs(DOC):
        assert reference.startswith("#/components/schemas/")
        assert reference.rsplit("/", 1)[1] in schemas, reference


@pytest.mark.parametrize(
    ("path", "pattern"), described_routes(), ids=lambda v: str(getattr(v, "name", v))
)
def test_every_route_is_described_with_its_methods(path, pattern):
    assert path in DOC["paths"], f"{path} ({pattern.name}) is not in the OpenAPI paths"
    described = {m for m in DOC["paths"][path] if m in METHODS}
    answered = {m.lower() for m in pattern.callback.handlers}
    assert described == answered, path


@pytest.mark.parametrize("path", sorted(DOC["paths"]))
def test_every_described_path_resolves_to_its_view(path):
    match = resolve(PREFIX + sample(path))
    assert match.url_name != CATCH_ALL, f"{path} falls through to the catch-all"
    item = DOC["paths"][path]
    operations = {m: op for m, op in item.items() if m in METHODS}
    assert set(operations) <= {m.lower() for m in match.func.handlers}
    names = set(re.findall(r"\{(\w+)\}", path))
    for method, op in operations.items():
        assert op["responses"], (path, method)
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == names, (path, method)


def test_the_document_is_served(client):
    response = client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == HTTPStatus.OK
    served = response.json()
    assert served["paths"].keys() == DOC["paths"].keys()
    assert served["servers"][0]["url"].endswith("/client/v4")


def test_routes_convert_to_openapi_templates():
    # The checks above rely on this conversion; a route it mangled would hide.
    assert as_openapi_path("accounts/<str:account_id>/queues") == (
        "/accounts/{account_id}/queues"
    )
    assert as_openapi_path(r"^accounts/(?P<account_id>[^/]+)/x$") == (
        "/accounts/{account_id}/x"
    )
