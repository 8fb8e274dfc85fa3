from http import HTTPStatus

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_home_page_explains_how_an_agent_uses_the_service(client):
    response = client.get(reverse("accounts:home"))
    assert response.status_code == HTTPStatus.OK
    assert b"--temporary" in response.content
    assert b"/client/v4" in response.content


@pytest.mark.parametrize(
    "link", ["/auth.md", "/llms.txt", "http://testserver/client/v4/openapi.json"]
)
def test_home_page_links_agents_to_the_protocol(client, link):
    home = client.get(reverse("accounts:home")).content.decode()
    assert f'href="{link}"' in home
    assert client.get(link).status_code == HTTPStatus.OK


def test_health_reports_database_and_broker(client):
    response = client.get(reverse("accounts:health"))
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"ok": True, "database": True, "broker": True}


def test_health_says_when_the_broker_is_unreachable(client, settings, monkeypatch):
    from claimportal.celery import app

    # Celery reads the variable before its setting.
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get(reverse("accounts:health"))
    finally:
        app.conf.broker_url = original
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["broker"] is False


def test_admin_answers(admin_client):
    response = admin_client.get("/admin/accounts/cloudaccount/")
    assert response.status_code == HTTPStatus.OK


def test_unknown_pages_get_a_helpful_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert b"home page" in response.content
