"""mTLS certificates and CA chains over client/v4, with PEM made by openssl."""

from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import pytest

from accounts.models import Certificate, HyperdriveConfig, WorkerScript, WorkerVersion
from tests.cloudapi import AccountClient, error_code, make_pem, ok

pytestmark = pytest.mark.django_db

CERTS = "mtls_certificates"


@dataclass(frozen=True)
class Pem:
    cert: str
    key: str


def read_pem(folder: Path, name: str) -> Pem:
    cert, key = make_pem(folder, name)
    return Pem(cert=cert.read_text(), key=key.read_text())


@pytest.fixture(scope="module")
def pems(tmp_path_factory) -> tuple[Pem, Pem]:
    folder = tmp_path_factory.mktemp("pem")
    return read_pem(folder, "leaf"), read_pem(folder, "other")


@pytest.fixture
def api(client, provision) -> AccountClient:
    return AccountClient(client, provision())


def node_buffer(text: str) -> dict:
    """How wrangler's JSON.stringify sends a file it read: a Node Buffer."""
    return {"type": "Buffer", "data": list(text.encode())}


def test_upload_an_mtls_certificate_as_wrangler_sends_it(api, pems):
    leaf, _ = pems
    made = ok(
        api.post(
            CERTS,
            {
                "name": "client",
                "certificates": node_buffer(leaf.cert),
                "private_key": node_buffer(leaf.key),
                "ca": False,
            },
        )
    )
    assert made["name"] == "client"
    assert made["ca"] is False
    assert made["issuer"] == "O=Claim Tests, CN=leaf"
    assert made["serial_number"]
    assert made["expires_on"].endswith("Z")
    stored = Certificate.objects.get(pk=made["id"])
    assert stored.private_key == leaf.key
    for response in [api.get(CERTS), api.get(f"{CERTS}/{made['id']}")]:
        assert b"PRIVATE KEY" not in response.content
        assert b"private_key" not in response.content


def test_upload_a_ca_chain_list_filters_and_delete(api, pems):
    leaf, other = pems
    ca = ok(api.post(CERTS, {"name": "ca", "certificates": other.cert, "ca": True}))
    mtls = ok(api.post(CERTS, {"certificates": leaf.cert, "private_key": leaf.key}))
    assert ca["ca"] is True
    assert [c["id"] for c in ok(api.get(CERTS))] == [ca["id"], mtls["id"]]
    assert [c["id"] for c in ok(api.get(f"{CERTS}?ca=false"))] == [mtls["id"]]
    assert [c["id"] for c in ok(api.get(f"{CERTS}?name=ca"))] == [ca["id"]]
    ok(api.delete(f"{CERTS}/{ca['id']}"))
    missing = api.get(f"{CERTS}/{ca['id']}")
    assert missing.status_code == HTTPStatus.NOT_FOUND
    assert error_code(missing) == 1404


@pytest.mark.parametrize(
    "case",
    [
        "no certificate",
        "not pem",
        "garbled pem",
        "no key",
        "someone else's key",
        "encrypted-looking key",
        "key with a ca",
        "bad buffer",
    ],
)
def test_bad_uploads_are_400_and_store_nothing(api, pems, case):
    leaf, other = pems
    body = {
        "no certificate": {"private_key": leaf.key},
        "not pem": {"certificates": "hello", "private_key": leaf.key},
        "garbled pem": {
            "certificates": "-----BEGIN CERTIFICATE-----\nAAAA\n"
            "-----END CERTIFICATE-----",
            "private_key": leaf.key,
        },
        "no key": {"certificates": leaf.cert},
        "someone else's key": {"certificates": leaf.cert, "private_key": other.key},
        "encrypted-looking key": {
            "certificates": leaf.cert,
            "private_key": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nxx\n",
        },
        "key with a ca": {
            "certificates": leaf.cert,
            "private_key": leaf.key,
            "ca": True,
        },
        "bad buffer": {
            "certificates": {"type": "Buffer", "data": [999]},
            "private_key": leaf.key,
        },
    }[case]
    response = api.post(CERTS, body)
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    assert not Certificate.objects.exists()


def test_size_and_count_are_limited(api, pems, settings):
    leaf, other = pems
    settings.CLAIMPORTAL_CERTIFICATE_MAX_BYTES = 100
    too_big = api.post(CERTS, {"certificates": leaf.cert, "ca": True})
    assert too_big.status_code == HTTPStatus.BAD_REQUEST
    settings.CLAIMPORTAL_CERTIFICATE_MAX_BYTES = 64 * 1024
    settings.CLAIMPORTAL_CERTIFICATES_MAX = 1
    ok(api.post(CERTS, {"certificates": leaf.cert, "ca": True}))
    assert error_code(api.post(CERTS, {"certificates": other.cert, "ca": True})) == 1405


def test_a_certificate_in_use_cannot_be_deleted(api, pems):
    leaf, other = pems
    ca = ok(api.post(CERTS, {"certificates": other.cert, "ca": True}))
    mtls = ok(api.post(CERTS, {"certificates": leaf.cert, "private_key": leaf.key}))
    HyperdriveConfig.objects.create(
        account=api.account, name="hd", mtls={"ca_certificate_id": ca["id"]}
    )
    script = WorkerScript.objects.create(account=api.account, name="api-worker")
    script.current_version = WorkerVersion.objects.create(
        script=script,
        number=1,
        bindings=[
            {"name": "M", "type": "mtls_certificate", "certificate_id": mtls["id"]}
        ],
    )
    script.save(update_fields=["current_version"])
    for cert_id, user in [
        (ca["id"], "Hyperdrive config 'hd'"),
        (mtls["id"], "'api-worker'"),
    ]:
        response = api.delete(f"{CERTS}/{cert_id}")
        assert response.status_code == HTTPStatus.CONFLICT
        assert user in response.json()["errors"][0]["message"]
    assert Certificate.objects.count() == 2


def test_another_accounts_certificates_are_invisible(client, provision, pems):
    leaf, _ = pems
    mine = AccountClient(client, provision())
    theirs = AccountClient(client, provision())
    made = ok(theirs.post(CERTS, {"certificates": leaf.cert, "ca": True}))
    assert ok(mine.get(CERTS)) == []
    assert mine.get(f"{CERTS}/{made['id']}").status_code == HTTPStatus.NOT_FOUND
    assert mine.delete(f"{CERTS}/{made['id']}").status_code == HTTPStatus.NOT_FOUND
    assert Certificate.objects.filter(pk=made["id"]).exists()


def test_odd_ids_and_filters_are_4xx_never_5xx(api):
    assert api.get(f"{CERTS}?name=%00").status_code == HTTPStatus.BAD_REQUEST
    for method in ("get", "delete"):
        assert api.call(method, f"{CERTS}/%00").status_code == HTTPStatus.NOT_FOUND
