"""The generated OpenAPI document says what the code accepts, and no more.

For every operation declared with ``kit.operation``, a body (or query string)
built from the document's own schema is accepted by the endpoint's declared
input, and a wrong type or a field the document does not list is refused
over HTTP with the code the document states. A multipart body with a declared
JSON part (a Worker upload's metadata) is checked the same way, each
alternative of a list of several shapes (the binding types) included.
"""

import json
import re
from http import HTTPStatus
from typing import Any

import jsonschema_rs
import pytest
from django.urls import resolve

from accounts.api.kit import declared
from accounts.api.openapi import document
from tests.workerupload import HELLO, MODULE, form

pytestmark = pytest.mark.django_db

PREFIX = "/client/v4"
HEX = "0123456789abcdef0123456789abcdef"
DOC = document()


def declared_operations() -> list[tuple[str, str]]:
    found = []
    for path in DOC["paths"]:
        match = resolve(PREFIX + re.sub(r"\{\w+\}", HEX, path))
        for method, handler in match.func.handlers.items():
            if declared(handler) is not None:
                found.append((path, method.lower()))
    return sorted(found)


DECLARED = declared_operations()
WITH_BODY = [
    (p, m)
    for p, m in DECLARED
    if "application/json"
    in DOC["paths"][p][m].get("requestBody", {}).get("content", {})
]
WITH_QUERY = [
    (p, m)
    for p, m in DECLARED
    if any(q["in"] == "query" for q in DOC["paths"][p][m].get("parameters", []))
]

# Multipart bodies whose JSON part the document describes (the uploads).
WITH_FORM = [
    (p, m)
    for p, m in DECLARED
    if "encoding"
    in DOC["paths"][p][m]
    .get("requestBody", {})
    .get("content", {})
    .get("multipart/form-data", {})
]


def operation_of(path: str, method: str):
    match = resolve(PREFIX + re.sub(r"\{\w+\}", HEX, path))
    return declared(match.func.handlers[method.upper()])


def body_schema(path: str, method: str) -> dict:
    content = DOC["paths"][path][method]["requestBody"]["content"]
    return content["application/json"]["schema"]


def sample(schema: dict) -> Any:
    """The smallest value the schema describes: required properties only."""
    if "anyOf" in schema:
        return sample(schema["anyOf"][0])
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: sample(properties[name]) for name in schema.get("required", [])}
    if kind == "array":
        return [sample(schema["items"])] * max(1, schema.get("minItems", 0))
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return True
    if kind == "string":
        if schema.get("pattern") == "^(?:[0-9a-f]{32})$":
            return HEX
        if schema.get("contentEncoding") == "base64":
            return "ZXhhbXBsZQ=="
        return "x" * max(1, schema.get("minLength", 1))
    return {"any": "json"}


WRONG = {
    "string": 12345,
    "integer": "12",
    "number": "12.5",
    "boolean": "yes",
    "object": 7,
    "array": {},
}


def wrong_value(schema: dict) -> Any:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if "anyOf" in schema:
        kind = "string"
    return WRONG.get(kind) if kind else None


def documented_code(path: str, method: str) -> int:
    return DOC["paths"][path][method]["responses"]["400"]["x-error-codes"][0]


@pytest.fixture
def caller(client, provision):
    made = provision()

    def call(
        path: str,
        method: str,
        *,
        body: Any = None,
        query: str = "",
        form_body: tuple[bytes, str] | None = None,
    ):
        url = PREFIX + path.replace("{account_id}", made.account.id)
        url = re.sub(r"\{\w+\}", HEX, url) + query
        extra = {}
        if DOC["paths"][path][method].get("security") != []:
            extra["HTTP_AUTHORIZATION"] = f"Bearer {made.api_token}"
        if body is not None:
            extra |= {"data": json.dumps(body), "content_type": "application/json"}
        if form_body is not None:
            extra |= {"data": form_body[0], "content_type": form_body[1]}
        return getattr(client, method)(url, **extra)

    return call


def test_some_operations_are_declared():
    # The checks below run per declared operation; none declared would pass.
    assert len(WITH_BODY) >= 4 and len(WITH_QUERY) >= 2


@pytest.mark.parametrize(("path", "method"), WITH_BODY)
def test_a_body_built_from_the_document_is_accepted(path, method):
    schema = body_schema(path, method)
    body = sample(schema)
    jsonschema_rs.validate(schema, body)  # the sample is what the document says
    operation_of(path, method).body.clean(body, path="")  # and the code takes it


@pytest.mark.parametrize(("path", "method"), WITH_BODY)
def test_a_field_of_the_wrong_type_is_refused_with_the_documented_code(
    caller, path, method
):
    schema = body_schema(path, method)
    typed = {
        name: wrong_value(field)
        for name, field in (schema.get("properties") or {}).items()
        if wrong_value(field) is not None  # a free JSON value has no wrong type
    }
    if typed:
        name, wrong = next(iter(typed.items()))
        body = {**sample(schema), name: wrong}
    else:  # a list, or one of several shapes: the body itself is of a wrong type
        name, body = "", "a string is none of them"
    assert not jsonschema_rs.is_valid(schema, body)
    response = caller(path, method, body=body)
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    error = response.json()["errors"][0]
    assert error["code"] == documented_code(path, method)
    assert name in error["message"]


@pytest.mark.parametrize(("path", "method"), WITH_BODY)
def test_a_field_the_document_does_not_list_is_refused(caller, path, method):
    schema = body_schema(path, method)
    if schema.get("type") != "object" or schema.get("additionalProperties", True):
        pytest.skip("the document says this body takes other fields")
    body = {**sample(schema), "not_a_listed_field": 1}
    assert not jsonschema_rs.is_valid(schema, body)
    response = caller(path, method, body=body)
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    error = response.json()["errors"][0]
    assert error["code"] == documented_code(path, method)
    assert "not_a_listed_field" in error["message"]


@pytest.mark.parametrize(("path", "method"), WITH_QUERY)
def test_query_parameters_are_checked_as_documented(caller, path, method):
    parameters = [
        p for p in DOC["paths"][path][method]["parameters"] if p["in"] == "query"
    ]
    typed = [
        p
        for p in parameters
        if p["schema"].get("type")
        in ("integer", ["integer", "null"], "boolean", ["boolean", "null"])
    ]
    if not typed:
        pytest.skip("no typed query parameter")
    name = typed[0]["name"]
    response = caller(path, method, query=f"?{name}=not-a-value")
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    error = response.json()["errors"][0]
    assert error["code"] == documented_code(path, method)
    assert name in error["message"]


def json_part(path: str, method: str) -> tuple[str, dict]:
    """The name and schema of a multipart body's declared JSON part."""
    schema = DOC["paths"][path][method]["requestBody"]["content"][
        "multipart/form-data"
    ]["schema"]
    (name,) = schema["required"]
    return name, schema["properties"][name]


def alternatives(schema: dict) -> list[tuple[str, dict]]:
    """(property, schema of one item) for each shape a list property takes."""
    return [
        (name, alternative)
        for name, field in schema["properties"].items()
        for alternative in field.get("items", {}).get("anyOf", [])
    ]


def typed_property(schema: dict) -> str | None:
    """The last property with a type to get wrong (the type's own fields come
    after a binding's name), its discriminating ``type`` aside."""
    typed = [
        name
        for name, field in schema.get("properties", {}).items()
        if name != "type" and wrong_value(field) is not None
    ]
    return typed[-1] if typed else None


def send_form(caller, path: str, method: str, part: str, data: Any):
    metadata = (part, None, None, json.dumps(data).encode())
    body = form([metadata, ("index.js", "index.js", MODULE, HELLO)])
    return caller(path, method, form_body=body)


def refusals(schema: dict):
    """(a JSON part, the property in it of a wrong type): one of the part's
    own properties, then one per shape a list of it takes (each binding type)."""
    base = {**sample(schema), "main_module": "index.js"}
    own = typed_property(schema)
    assert own is not None
    yield {**base, own: wrong_value(schema["properties"][own])}, own
    for listed, alternative in alternatives(schema):
        name = typed_property(alternative)
        if name is not None:
            wrong = wrong_value(alternative["properties"][name])
            yield {**base, listed: [{**sample(alternative), name: wrong}]}, name


def test_the_uploads_are_declared_forms():
    assert len(WITH_FORM) >= 2


@pytest.mark.parametrize(("path", "method"), WITH_FORM)
def test_a_json_part_built_from_the_document_is_accepted(path, method):
    _, schema = json_part(path, method)
    bodies = [sample(schema)] + [
        {**sample(schema), name: [sample(alternative)]}
        for name, alternative in alternatives(schema)
    ]
    assert len(bodies) > 20  # every binding type is described
    for body in bodies:
        jsonschema_rs.validate(schema, body)
        operation_of(path, method).form.input.parse(body)


@pytest.mark.parametrize(("path", "method"), WITH_FORM)
def test_a_json_part_of_the_wrong_type_is_refused_with_the_documented_code(
    caller, path, method
):
    part, schema = json_part(path, method)
    checked = 0
    for data, name in refusals(schema):
        assert not jsonschema_rs.is_valid(schema, data), data
        response = send_form(caller, path, method, part, data)
        assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
        error = response.json()["errors"][0]
        assert error["code"] == documented_code(path, method), data
        assert name in error["message"], (data, error)
        checked += 1
    assert checked > 20


@pytest.mark.parametrize(("path", "method"), WITH_FORM)
def test_a_json_part_takes_fields_it_does_not_list_as_documented(caller, path, method):
    part, schema = json_part(path, method)
    assert schema["additionalProperties"] is True
    data = {"main_module": "index.js", "not_a_listed_field": {"any": 1}}
    response = send_form(caller, path, method, part, data)
    refusal = response.json()["errors"]
    assert response.status_code != HTTPStatus.BAD_REQUEST, refusal
