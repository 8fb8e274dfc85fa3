"""The claimant names the account at the claim and renames it later; the name
shows wherever the machine name did: the account pages, the list, the admin
and the API."""

from http import HTTPStatus

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import CloudAccount

pytestmark = pytest.mark.django_db

REVIEW = reverse("accounts:claim_review")


@pytest.fixture
def claimed_as_shop(client, provision, user):
    made = provision()
    client.get(reverse("accounts:claim", args=[made.claim_key]))
    client.force_login(user)
    form = client.get(REVIEW).content.decode()
    assert f'value="{made.account.name}"' in form  # the machine name, to change
    response = client.post(REVIEW, {"account": made.account.pk, "name": "Shop"})
    assert response.status_code == HTTPStatus.FOUND
    return made


def test_the_claimant_names_it_at_the_claim(client, claimed_as_shop):
    account = CloudAccount.objects.get(pk=claimed_as_shop.account.pk)
    assert account.name == "Shop"
    assert account.state == CloudAccount.State.CLAIMED
    page = client.get(reverse("accounts:account", args=[account.pk])).content
    assert b"Shop is yours" in page
    assert b"<h2><a" in client.get(reverse("accounts:mine")).content
    assert b">Shop</a>" in client.get(reverse("accounts:mine")).content


def test_and_renames_it_later_everywhere(client, claimed_as_shop, django_user_model):
    account_id = claimed_as_shop.account.pk
    rename = reverse("accounts:rename_account", args=[account_id])

    response = client.post(rename, {"name": "Shop (production)"})

    assert response.status_code == HTTPStatus.FOUND
    assert CloudAccount.objects.get(pk=account_id).name == "Shop (production)"
    page = client.get(reverse("accounts:account", args=[account_id])).content
    assert b"Renamed to Shop (production)." in page
    assert b"Shop (production) is yours" in page
    admin = django_user_model.objects.create_superuser(
        "root", "root@example.com", "correct horse battery"
    )
    moderator = Client()
    moderator.force_login(admin)
    changelist = moderator.get(reverse("admin:accounts_cloudaccount_changelist"))
    assert b"Shop (production)" in changelist.content


def test_a_bad_name_changes_nothing(client, claimed_as_shop):
    account_id = claimed_as_shop.account.pk
    rename = reverse("accounts:rename_account", args=[account_id])
    for bad in ["", "x" * 101, "two\nlines"]:
        response = client.post(rename, {"name": bad})
        assert response.status_code == HTTPStatus.FOUND
    assert CloudAccount.objects.get(pk=account_id).name == "Shop"


def test_nobody_else_renames_it(claimed_as_shop, django_user_model):
    other = Client()
    other.force_login(django_user_model.objects.create_user("eve", "e@example.com"))
    rename = reverse("accounts:rename_account", args=[claimed_as_shop.account.pk])

    assert other.post(rename, {"name": "Mine now"}).status_code == 404
    assert Client().post(rename, {"name": "Mine now"}).status_code == 302  # sign in
    assert CloudAccount.objects.get(pk=claimed_as_shop.account.pk).name == "Shop"
