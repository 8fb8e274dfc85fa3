"""One table of error codes (accounts.exceptions.ERROR_CODES): every domain
error's code is a row there and answers with that row's status, a code means one
thing, and the codes wrangler branches on (spec 1.4) are where it expects them."""

import ast
import importlib
import pkgutil
from collections import defaultdict
from http import HTTPStatus
from pathlib import Path

import pytest

import accounts
import preview_runtime
from accounts.exceptions import (
    ERROR_CODES,
    AuthenticationRequired,
    DomainError,
    NotFound,
    PayloadTooLarge,
)

APP = Path(accounts.__file__).resolve().parent


def every_error_class() -> list[type[DomainError]]:
    for package in (accounts, preview_runtime):
        prefix = package.__name__ + "."
        for module in pkgutil.walk_packages(package.__path__, prefix):
            if ".migrations" not in module.name:
                importlib.import_module(module.name)
    found, todo = [], [DomainError]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def test_every_error_class_takes_code_and_status_from_the_table():
    classes = every_error_class()
    assert len(classes) > 50
    for cls in classes:
        assert cls.code in ERROR_CODES, cls
        assert cls.status == ERROR_CODES[cls.code].status, cls


def test_a_code_answers_with_one_status_whichever_class_carries_it():
    statuses = defaultdict(set)
    for cls in every_error_class():
        statuses[cls.code].add(cls.status)
    assert {code: s for code, s in statuses.items() if len(s) > 1} == {}


def test_every_code_given_at_a_raise_has_a_row():
    """``SomeError(..., code=N)`` in the source: N must be in the table."""
    missing = []
    for path in [
        *APP.rglob("*.py"),
        *APP.parent.joinpath("preview_runtime").rglob("*.py"),
    ]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                value = getattr(keyword.value, "value", None)
                listed = not isinstance(value, int) or value in ERROR_CODES
                if keyword.arg == "code" and not listed:
                    missing.append(f"{path.name}:{node.lineno} {value}")
    assert missing == []


def test_a_second_meaning_for_a_code_is_refused():
    with pytest.raises(TypeError, match="ERROR_CODES says"):

        class KeyTooLarge(DomainError):  # 10013 is "no such KV namespace"
            code = 10013
            status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE

    with pytest.raises(LookupError, match="no row"):

        class Unlisted(DomainError):
            code = 99999

    with pytest.raises(LookupError, match="no row"):
        NotFound("gone", code=99999)
    with pytest.raises(TypeError):
        NotFound("gone", code=10007, status=HTTPStatus.GONE)


def test_a_code_given_at_a_raise_brings_its_status():
    error = NotFound("No route.", code=7000)
    assert (error.code, error.status) == (7000, HTTPStatus.NOT_FOUND)
    error = DomainError("Not here.", code=10405)
    assert error.status == HTTPStatus.METHOD_NOT_ALLOWED


def test_the_codes_wrangler_branches_on():
    from accounts.services.d1 import DatabaseExists, DatabaseNotFound, TooManyDatabases
    from accounts.services.kv import NamespaceNotFound
    from accounts.services.workers import ScriptInvalid, ServiceNotFound, WorkerNotFound

    expected = {
        WorkerNotFound: (10007, HTTPStatus.NOT_FOUND),  # "Worker not found": deploy
        ServiceNotFound: (10090, HTTPStatus.NOT_FOUND),
        DatabaseNotFound: (7404, HTTPStatus.NOT_FOUND),  # provision the database
        DatabaseExists: (7502, HTTPStatus.CONFLICT),
        TooManyDatabases: (7406, HTTPStatus.BAD_REQUEST),
        ScriptInvalid: (10021, HTTPStatus.BAD_REQUEST),  # message source-mapped
        AuthenticationRequired: (10000, HTTPStatus.UNAUTHORIZED),
        NamespaceNotFound: (10013, HTTPStatus.NOT_FOUND),
    }
    assert {cls: (cls.code, cls.status) for cls in expected} == expected
    assert ERROR_CODES[10031].status == HTTPStatus.CONFLICT  # subdomain taken
    assert ERROR_CODES[10032].status == HTTPStatus.NOT_FOUND  # subdomain free
    # Only the errors that mean "no such Worker" may say 10007 or 10090:
    # wrangler would take anything else as a first deploy and go on.
    for cls in every_error_class():
        if cls.code in (10007, 10090):
            assert issubclass(cls, NotFound), cls
    assert PayloadTooLarge.code not in (10007, 10013, 10090)
