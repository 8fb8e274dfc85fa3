"""Fuzzing client/v4 from its own OpenAPI document with schemathesis.

Every operation gets requests generated from its schema (and beyond it),
sent in-process to the real WSGI application with a real token for a real
account. Whatever comes in: no 5xx, and every answer in the envelope (the
few operations that answer with raw bytes on success still fail in it).

The budget is CLAIMPORTAL_FUZZ_EXAMPLES per operation (the seed is fixed);
``bench/fuzz_api.py`` runs the long form.
"""

import json
import os
from collections import Counter
from dataclasses import dataclass, field

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, seed, settings

from accounts.api.openapi import document

pytestmark = pytest.mark.slow

SEED = 20261128
# 8 per operation in the suite (under 800 requests over the 96 operations);
# bench/fuzz_api.py sends 500 per operation.
EXAMPLES = int(os.environ.get("CLAIMPORTAL_FUZZ_EXAMPLES", "8"))
METHODS = {"get", "put", "post", "patch", "delete"}
# Successful answers that are the stored bytes themselves, not an envelope.
RAW_ON_SUCCESS = {
    ("GET", "/openapi.json"),
    ("GET", "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/values/{key}"),
    ("GET", "/accounts/{account_id}/d1/database/{database_id}/export-download/{token}"),
}


@dataclass
class FuzzReport:
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def check(self, operation, case, response) -> None:
        self.requests += 1
        self.statuses[response.status_code] += 1
        where = f"{case.method} {case.formatted_path} -> {response.status_code}"
        if response.status_code >= 500:
            self.problems.append(f"{where}: {response.content[:300]!r}")
            return
        key = (operation.method.upper(), operation.path)
        if response.status_code < 400 and key in RAW_ON_SUCCESS:
            return
        if response.status_code in (204, 304) and not response.content:
            return
        try:
            body = json.loads(response.content)
        except ValueError:
            self.problems.append(f"{where}: not JSON {response.content[:200]!r}")
            return
        ok = isinstance(body, dict) and {"success", "errors", "result"} <= body.keys()
        if ok and response.status_code >= 400:
            ok = body["success"] is False and all(
                isinstance(e.get("code"), int) and e.get("message")
                for e in body["errors"]
            )
            ok = ok and bool(body["errors"])
        if not ok:
            self.problems.append(f"{where}: outside the envelope {body!r:.300}")


def fuzz_api(*, account_id: str, token: str, examples: int) -> FuzzReport:
    """Send ``examples`` generated requests (at most) to each operation."""
    app = WSGIHandler()
    schema = schemathesis.openapi.from_dict(document())
    report = FuzzReport()
    # Like Django's test client: one connection (and test transaction) for all.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            _fuzz_operation(operation, app, account_id, token, examples, report)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return report


def _fuzz_operation(operation, app, account_id, token, examples, report) -> None:
    @seed(SEED)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def send(case) -> None:
        if "account_id" in (case.path_parameters or {}):
            case.path_parameters["account_id"] = account_id
        response = case.call(app=app, headers={"Authorization": f"Bearer {token}"})
        report.check(operation, case, response)

    send()


@pytest.mark.django_db
def test_every_operation_survives_generated_requests(provision):
    made = provision()
    report = fuzz_api(
        account_id=made.account.id, token=made.api_token, examples=EXAMPLES
    )
    print(f"fuzzed {report.requests} requests: {dict(sorted(report.statuses.items()))}")
    operations = sum(
        method in METHODS for item in document()["paths"].values() for method in item
    )
    assert report.requests >= EXAMPLES * operations
    assert not report.problems, "\n".join(report.problems)
