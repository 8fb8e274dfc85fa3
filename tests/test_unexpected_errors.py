"""Anything unforeseen is logged in full and answered with code 10500, without
a detail of it, on both APIs: client/v4 in its envelope, the binding endpoints
in their text protocol. The routes here are real kit endpoints whose handler
fails the way a bug would."""

import logging
from http import HTTPStatus

import pytest
from django.http import HttpRequest, HttpResponse
from django.urls import path

from accounts.api.failures import answering_failures
from accounts.api.kit import endpoint
from preview_runtime.endpoints import api as bindings

SECRET_DETAIL = "the detail no caller may read"


def _broken(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(SECRET_DETAIL)


def _broken_binding(request: HttpRequest) -> HttpResponse:
    with answering_failures(bindings._failure, where="a test binding") as failed:
        _broken(request)
    return failed[0]


urlpatterns = [
    path("client/v4/broken", endpoint(auth=False)({"GET": _broken})),
    path("internal/preview/broken", _broken_binding),
]

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]


def test_client_v4_answers_an_unexpected_error_in_the_envelope(client, caplog):
    with caplog.at_level(logging.ERROR, logger="claimportal.api"):
        response = client.get("/client/v4/broken")
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["success"] is False
    assert body["result"] is None
    assert body["errors"][0]["code"] == 10500
    assert SECRET_DETAIL not in response.content.decode()
    # The log has the whole exception, for whoever fixes it.
    assert any(
        r.exc_info and SECRET_DETAIL in str(r.exc_info[1]) for r in caplog.records
    )


def test_the_binding_endpoints_answer_an_unexpected_error_in_their_protocol(
    client, caplog
):
    with caplog.at_level(logging.ERROR, logger="claimportal.api"):
        response = client.get("/internal/preview/broken")
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert response["Content-Type"].startswith("text/plain")
    assert SECRET_DETAIL not in response.content.decode()
    assert "unexpected" in response.content.decode()
    assert any(
        r.exc_info and SECRET_DETAIL in str(r.exc_info[1]) for r in caplog.records
    )
