"""The claim pages a person sees, from opening the link to owning the account."""

import re
import uuid
from datetime import timedelta
from http import HTTPStatus

import pytest
import qrcode
import qrcode.image.svg
from allauth.account.models import EmailAddress
from django.test import Client
from django.urls import reverse

from accounts.models import (
    ApiToken,
    AuditEvent,
    ClaimLink,
    CloudAccount,
    WorkerDeployment,
)
from accounts.services.claims import decline_claim
from accounts.views import CLAIM_COOKIE
from tests.claim_builders import NEVER_SHOWN, full_deploy

pytestmark = pytest.mark.django_db

REVIEW = reverse("accounts:claim_review")


def claim_path(key: str) -> str:
    return reverse("accounts:claim", args=[key])


def assert_private(response, referrer_policy: str = "same-origin") -> None:
    assert response["Referrer-Policy"] == referrer_policy
    assert "no-store" in response["Cache-Control"]


@pytest.fixture
def made(provision):
    made = provision(origin_hint="Lisbon, PT")
    full_deploy(made.account)
    return made


@pytest.fixture
def opened(client, made):
    """A browser that has opened the claim link."""
    client.get(claim_path(made.claim_key))
    return client


def test_opening_the_link_swaps_the_key_for_a_keyless_address(client, made):
    response = client.get(claim_path(made.claim_key))

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == REVIEW
    assert made.claim_key not in response["Location"]
    assert_private(response, referrer_policy="no-referrer")
    cookie = response.cookies[CLAIM_COOKIE]
    assert (cookie["httponly"], cookie["samesite"]) == (True, "Lax")
    assert not cookie["max-age"]  # gone when the browser closes
    assert "sessionid" not in client.cookies


def test_the_claim_page_shows_what_the_agent_built_and_no_values(opened, made):
    response = opened.get(REVIEW)

    assert response.status_code == HTTPStatus.OK
    assert_private(response)
    page = response.content.decode()
    subdomain = made.account.subdomain
    deployed = WorkerDeployment.objects.get(script__account=made.account).created_at
    for expected in [
        "An agent deployed this for you",
        made.account.name,
        "Lisbon, PT",
        "using <code>wrangler 4.164.0</code>",
        # the Worker, its preview link, deploy and compatibility
        "hello-worker",
        f"http://hello-worker.{subdomain}.preview.localhost:8000",
        # when it was deployed, in UTC until the page's script shows local time
        f'datetime="{deployed.isoformat()}">{deployed:%Y-%m-%d %H:%M} UTC</time>',
        "2026-11-01",
        "nodejs_compat",
        # bindings by name, pointing at resources by name rather than id
        "CACHE",
        "hello-worker-cache",
        "hello-worker-db",
        # vars and secrets by name only
        "GREETING",
        "LIMITS",
        "SIGNING_KEY",
        "API_TOKEN",
        "values hidden",
        # every resource kind
        "Counter",
        "hello-worker-jobs",
        "3 files, 3.0\xa0KB",
        "db.example.com:5432",
        "shop",
        "hello-worker-cert",
        "<svg",
        f"?next={REVIEW}",
        # and a way to report it
        f'href="/report/{made.account.id}/"',
    ]:
        assert expected in page, expected
    assert NEVER_SHOWN not in page
    assert made.claim_key not in page


def test_kv_counts_keys_and_queues_name_producers_and_consumers(opened):
    page = opened.get(REVIEW).content.decode()

    assert "<td>hello-worker-cache</td><td>3</td>" in page
    assert "<td>hello-worker-jobs</td><td>hello-worker</td><td>hello-worker</td>" in (
        page
    )


def test_looking_never_claims_even_when_signed_in(client, made, user):
    client.force_login(user)
    client.get(claim_path(made.claim_key))
    page = client.get(REVIEW)

    assert page.status_code == HTTPStatus.OK
    assert b"It will belong to" in page.content
    account = CloudAccount.objects.get(pk=made.account.pk)
    assert account.state == CloudAccount.State.PENDING
    assert account.owner is None
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.CLAIMED).exists()


def test_a_signed_in_person_claims_with_one_post(opened, made, user):
    opened.force_login(user)
    response = opened.post(REVIEW, {"account": made.account.pk})

    account_url = reverse("accounts:account", args=[made.account.pk])
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == account_url
    account = CloudAccount.objects.get(pk=made.account.pk)
    assert (account.state, account.owner) == (CloudAccount.State.CLAIMED, user)
    assert opened.cookies[CLAIM_COOKIE].value == ""  # forgotten
    done = opened.get(account_url)
    assert done.status_code == HTTPStatus.OK
    assert f"{made.account.name} is yours".encode() in done.content
    assert b"wrangler logout" in done.content
    assert b"hello-worker-db" in done.content
    assert NEVER_SHOWN.encode() not in done.content


def test_confirming_needs_a_signed_in_person(opened, made):
    response = opened.post(REVIEW, {"account": made.account.pk})

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(reverse("account_login") + "?next=")
    assert CloudAccount.objects.get(pk=made.account.pk).owner is None


def test_confirming_needs_csrf(made, user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get(claim_path(made.claim_key))

    response = browser.post(REVIEW, {"account": made.account.pk})

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert CloudAccount.objects.get(pk=made.account.pk).owner is None


def test_a_second_link_asks_which_to_keep_and_replaces_nothing_silently(
    client, provision, made, user
):
    other = provision()
    client.force_login(user)
    client.get(claim_path(made.claim_key))
    client.get(claim_path(other.claim_key))  # another tab, or another site

    choice = client.get(REVIEW)
    assert choice.status_code == HTTPStatus.CONFLICT
    page = choice.content.decode()
    assert "Two claim links are open in this browser" in page
    for account in (made.account, other.account):
        assert f'name="account" value="{account.pk}"' in page
    # The page reviewed first still confirms what it showed.
    confirmed = client.post(REVIEW, {"account": made.account.pk})
    assert confirmed["Location"] == reverse("accounts:account", args=[made.account.pk])
    assert CloudAccount.objects.get(pk=made.account.pk).owner == user


def test_choosing_the_second_link_keeps_it_and_a_stale_tab_is_not_confirmed_blind(
    client, provision, made, user
):
    other = provision()
    client.force_login(user)
    client.get(claim_path(made.claim_key))
    client.get(claim_path(other.claim_key))

    kept = client.post(reverse("accounts:claim_choose"), {"account": other.account.pk})
    assert kept["Location"] == REVIEW
    review = client.get(REVIEW)
    assert review.status_code == HTTPStatus.OK
    assert f"Claim {other.account.name}".encode() in review.content
    # The first tab still shows the other account: its button is refused.
    response = client.post(REVIEW, {"account": made.account.pk}, follow=True)
    assert response.redirect_chain[-1][0] == REVIEW
    assert b"changed since you opened this page" in response.content
    for account in CloudAccount.objects.filter(
        pk__in=[made.account.pk, other.account.pk]
    ):
        assert account.owner is None


def test_a_second_link_replaces_one_that_is_no_longer_open(client, provision, made):
    expired = provision(now=made.account.created_at - timedelta(hours=2))
    client.get(claim_path(expired.claim_key))
    client.get(claim_path(made.claim_key))
    assert client.get(REVIEW).status_code == HTTPStatus.OK  # no question to ask


def test_five_hundred_anonymous_link_openings_store_no_session(client, made):
    from django.contrib.sessions.models import Session

    for number in range(500):
        browser = Client()
        key = made.claim_key if number % 10 == 0 else uuid.uuid4().hex
        assert browser.get(claim_path(key)).status_code == HTTPStatus.FOUND
        if number % 10 == 0:  # some come back to look; nobody does anything
            assert browser.get(REVIEW).status_code == HTTPStatus.OK
    assert Session.objects.count() == 0


def test_a_malformed_confirmation_gets_the_page_back_not_an_error(opened, made, user):
    opened.force_login(user)

    response = opened.post(
        REVIEW, {"account": made.account.pk, "agent_grace_hours": "9999"}
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert b"Select a valid choice" in response.content
    assert CloudAccount.objects.get(pk=made.account.pk).owner is None


def test_letting_the_agent_keep_deploying_for_some_hours(opened, made, user, now):
    opened.force_login(user)

    opened.post(REVIEW, {"account": made.account.pk, "agent_grace_hours": "4"})

    temporary = ApiToken.objects.get(pk=made.api_token_id)
    assert temporary.revoked_at is None
    grace_left = temporary.expires_at - now
    assert timedelta(hours=4) <= grace_left < timedelta(hours=4, minutes=1)
    grace = ApiToken.objects.get(account=made.account, kind=ApiToken.Kind.AGENT_GRACE)
    assert grace.expires_at == temporary.expires_at
    account_url = reverse("accounts:account", args=[made.account.pk])
    first = opened.get(account_url).content.decode()
    assert "can keep deploying to it until" in first
    assert grace.prefix in first  # the secret, shown once
    assert grace.prefix + "…" in opened.get(account_url).content.decode()
    assert '<pre class="secret">' not in opened.get(account_url).content.decode()


# --- Every other state has its own page -------------------------------------------


def test_an_unknown_link_looks_the_same_whatever_the_reason(client, provision):
    revoked = provision()
    ClaimLink.objects.filter(account=revoked.account).update(
        state=ClaimLink.State.REVOKED
    )
    pages = []
    for key in ["no-such-key", "x" * 5000, revoked.claim_key]:
        client.get(claim_path(key))
        pages.append(client.get(REVIEW))
    pages.append(Client().get(REVIEW))  # no link opened at all

    for page in pages:
        assert page.status_code == HTTPStatus.NOT_FOUND
        assert_private(page)
        assert page.content == pages[0].content
    assert b"not valid" in pages[0].content


def test_an_expired_link_says_what_to_do(client, provision, now):
    made = provision(now=now - timedelta(minutes=61))
    client.get(claim_path(made.claim_key))

    page = client.get(REVIEW)

    assert page.status_code == HTTPStatus.GONE
    assert b"wrangler deploy --temporary" in page.content


def test_a_declined_link_says_it_was_deleted(client, made, now):
    decline_claim(key=made.claim_key, account_id=made.account.pk, now=now)
    client.get(claim_path(made.claim_key))

    page = client.get(REVIEW)

    assert page.status_code == HTTPStatus.GONE
    assert b"This deployment was deleted" in page.content


def test_an_owner_who_opens_the_link_again_is_sent_to_the_account(opened, made, user):
    opened.force_login(user)
    opened.post(REVIEW, {"account": made.account.pk})
    opened.get(claim_path(made.claim_key))

    page = opened.get(REVIEW)

    assert page.status_code == HTTPStatus.OK
    assert b"You already own this deployment" in page.content
    assert reverse("accounts:account", args=[made.account.pk]).encode() in page.content


def test_someone_else_sees_that_it_was_claimed(client, made, user, django_user_model):
    CloudAccount.objects.filter(pk=made.account.pk).update(
        state=CloudAccount.State.CLAIMED, owner=user
    )
    client.force_login(django_user_model.objects.create_user("bob", "b@example.com"))
    client.get(claim_path(made.claim_key))

    page = client.get(REVIEW)

    assert page.status_code == HTTPStatus.CONFLICT
    assert b"already been claimed" in page.content
    assert b"ada" not in page.content


def test_a_suspended_deployment_cannot_be_claimed(opened, made, user):
    CloudAccount.objects.filter(pk=made.account.pk).update(
        state=CloudAccount.State.SUSPENDED,
        state_before_suspension=CloudAccount.State.PENDING,
    )
    opened.force_login(user)

    page = opened.get(REVIEW)
    refused = opened.post(REVIEW, {"account": made.account.pk})

    assert page.status_code == refused.status_code == HTTPStatus.FORBIDDEN
    assert b"suspended" in page.content
    assert CloudAccount.objects.get(pk=made.account.pk).owner is None


# --- Decline and delete now -------------------------------------------------------


def test_declining_asks_first_then_deletes_everything(opened, made):
    decline = reverse("accounts:claim_decline")
    confirm = opened.get(decline)

    assert confirm.status_code == HTTPStatus.OK
    assert b"Yes, delete everything" in confirm.content
    assert CloudAccount.objects.get(pk=made.account.pk).state == "pending"

    done = opened.post(decline, {"account": made.account.pk})

    assert done.status_code == HTTPStatus.OK
    assert b"This deployment was deleted" in done.content
    account = CloudAccount.objects.get(pk=made.account.pk)
    assert account.state == CloudAccount.State.EXPIRED
    assert ApiToken.objects.get(pk=made.api_token_id).revoked_because == "expired"
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.DECLINED)
    assert event.actor_label == "claim link holder"
    opened.get(claim_path(made.claim_key))
    assert opened.get(REVIEW).status_code == HTTPStatus.GONE


def test_the_claim_key_never_reaches_a_log(client, made, caplog):
    with caplog.at_level("DEBUG"):
        client.get(claim_path(made.claim_key))
        client.get(REVIEW)
        client.post(REVIEW, {"account": made.account.pk})
        client.get(claim_path(made.claim_key) + "extra/")  # a pasted tail
        client.post(claim_path(made.claim_key))  # a 405
        client.get(REVIEW)

    assert made.claim_key not in caplog.text


# --- Signing up or in without losing the claim -------------------------------------


def test_a_new_person_signs_up_verifies_by_code_and_comes_back(
    opened, made, mailoutbox
):
    email = f"grace-{uuid.uuid4().hex[:8]}@example.com"  # one code per address a while
    signup = opened.get(reverse("account_signup") + f"?next={REVIEW}")
    assert b"You are claiming a deployment" in signup.content

    entered = opened.post(
        reverse("account_signup"),
        {
            "email": email,
            "password1": "a long passphrase 42",
            "password2": "a long passphrase 42",
            "next": REVIEW,
        },
        follow=True,
    )
    assert b"Enter Email Verification Code" in entered.content
    (mail,) = mailoutbox
    code = re.search(r"^([A-Z0-9]{4}-[A-Z0-9]{4})$", mail.body, re.MULTILINE)[1]

    back = opened.post(
        reverse("account_email_verification_sent"), {"code": code}, follow=True
    )

    assert back.redirect_chain[-1][0] == REVIEW
    assert f"It will belong to <strong>{email}</strong>".encode() in back.content


def test_an_existing_person_signs_in_and_comes_back(opened, made, user):
    EmailAddress.objects.create(
        user=user, email=user.email, verified=True, primary=True
    )
    back = opened.post(
        reverse("account_login"),
        {"login": user.email, "password": "correct horse battery", "next": REVIEW},
        follow=True,
    )

    assert back.redirect_chain[-1][0] == REVIEW
    assert b"It will belong to" in back.content


def test_the_qr_code_carries_the_full_claim_link_to_a_phone(opened, made):
    page = opened.get(REVIEW).content.decode()
    drawn = re.search(r"<svg.*?</svg>", page, re.S)[0]

    code = qrcode.QRCode(border=2, image_factory=qrcode.image.svg.SvgPathImage)
    code.add_data(made.claim_url)
    assert drawn == code.make_image().to_string(encoding="unicode")
    assert drawn in opened.get(REVIEW).content.decode()


def test_a_claim_forgets_the_key(opened, made, user):
    opened.get(REVIEW)
    opened.force_login(user)

    opened.post(REVIEW, {"account": made.account.pk})

    assert opened.cookies[CLAIM_COOKIE].value == ""
    assert made.claim_key not in str(dict(opened.session))


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/mine/%00/", HTTPStatus.NOT_FOUND),
        ("post", "/mine/not-an-account/", HTTPStatus.NOT_FOUND),
        ("post", "/mine/{account}/tokens/99999999999999999999/revoke/", 404),
        ("get", "/claim/%00%FF/", HTTPStatus.FOUND),
        ("post", REVIEW, HTTPStatus.BAD_REQUEST),
        ("post", reverse("accounts:claim_decline"), HTTPStatus.OK),
    ],
)
def test_malformed_input_gets_a_page_not_an_error(
    opened, made, user, method, path, status
):
    opened.force_login(user)

    response = getattr(opened, method)(
        path.format(account=made.account.pk),
        {"account": "\x00", "agent_grace_hours": "\x00"},
    )

    assert response.status_code == status
    assert CloudAccount.objects.get(pk=made.account.pk).state == "pending"
