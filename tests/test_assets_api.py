"""Static assets: upload sessions, hash-checked blobs, manifests on versions."""

import base64
import json
import threading
from http import HTTPStatus

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client

from accounts.models import AssetBlob, AssetUploadSession, WorkerScript, WorkerVersion
from accounts.services.assets import asset_hash, read_blob
from tests.cloudapi import AccountClient, error_code, ok
from tests.workerupload import asset_form, asset_manifest, form, script_form, upload

pytestmark = pytest.mark.django_db

FILES = {
    "/index.html": b"<h1>Hello</h1>\n",
    "/about/index.html": b"<h1>About</h1>\n",
    "/copy.html": b"<h1>Hello</h1>\n",  # same bytes and extension: same hash
    "/css/site.css": b"body { color: teal; }\n",
    "/img/dot.png": bytes(range(256)),
}
CONFIG = {
    "html_handling": "auto-trailing-slash",
    "not_found_handling": "single-page-application",
    "run_worker_first": ["/api/*"],
    "_headers": "/*\n  X-Frame-Options: DENY\n",
    "_redirects": "/old /new 301\n",
}


@pytest.fixture
def api(client, provision):
    return AccountClient(client, provision())


def open_session(api, files=FILES, script="site"):
    return api.post(
        f"workers/scripts/{script}/assets-upload-session",
        {"manifest": asset_manifest(files)},
    )


def send_bucket(client, account_id, token, bucket, files=FILES):
    body, content_type = asset_form(files, bucket)
    return client.post(
        f"/client/v4/accounts/{account_id}/workers/assets/upload?base64=true",
        data=body,
        content_type=content_type,
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def upload_all(api, files=FILES) -> str:
    """Run a whole asset upload as wrangler does; the completion token."""
    session = ok(open_session(api, files))
    token = session["jwt"]
    for bucket in session["buckets"]:
        result = ok_any(
            send_bucket(api.client, api.account.id, session["jwt"], bucket, files)
        )
        token = result.get("jwt", token)
    return token


def ok_any(response):
    assert response.status_code in (200, 201, 202), response.content[:300]
    body = response.json()
    assert body["success"] is True, body
    return body["result"]


def test_a_whole_upload_stores_each_blob_once_and_links_the_manifest(api):
    session = ok(open_session(api))
    hashes = {asset_hash(data, path=p) for p, data in FILES.items()}
    assert sorted(h for b in session["buckets"] for h in b) == sorted(hashes)
    assert len(hashes) == 4  # /copy.html shares /index.html's hash

    results = [
        send_bucket(api.client, api.account.id, session["jwt"], bucket)
        for bucket in session["buckets"]
    ]
    assert results[-1].status_code == HTTPStatus.CREATED
    completion = results[-1].json()["result"]["jwt"]
    assert completion != session["jwt"]

    for path, data in FILES.items():
        blob = AssetBlob.objects.get(
            account=api.account, hash=asset_hash(data, path=path)
        )
        assert blob.storage_name.startswith(f"accounts/{api.account.id}/assets/")
        assert read_blob(blob=blob) == data
        assert blob.size == len(data)

    metadata = {
        "main_module": "index.js",
        "bindings": [{"name": "ASSETS", "type": "assets"}],
        "assets": {"jwt": completion, "config": CONFIG},
        "compatibility_date": "2026-06-01",
    }
    result = ok(upload(api, "workers/scripts/site", script_form(metadata)))
    version = WorkerVersion.objects.get(pk=result["deployment_id"])
    assert version.assets["manifest"] == asset_manifest(FILES)
    assert version.assets["config"] == CONFIG
    stored = json.dumps([version.metadata, version.assets])
    assert completion not in stored  # tokens are never stored raw
    assert result["has_assets"] is True

    # A redeploy announces the same manifest: nothing is missing.
    again = ok(open_session(api))
    assert again["buckets"] == []
    ok(
        upload(
            api,
            "workers/scripts/site/versions",
            script_form({**metadata, "assets": {"jwt": again["jwt"], "config": {}}}),
            method="post",
        )
    )
    assert AssetBlob.objects.count() == 4


def test_an_assets_only_site_has_no_modules(api):
    token = upload_all(api)
    metadata = {
        "assets": {"jwt": token, "config": {}},
        "compatibility_date": "2026-06-01",
    }
    result = ok(
        upload(
            api,
            "workers/scripts/static-site",
            form([("metadata", None, None, json.dumps(metadata).encode())]),
        )
    )
    version = WorkerVersion.objects.get(pk=result["deployment_id"])
    assert version.main_module == ""
    assert not version.modules.exists()
    assert len(version.assets["manifest"]) == len(FILES)


def test_keep_assets_carries_the_manifest_to_a_new_version(api):
    token = upload_all(api)
    metadata = {"main_module": "index.js", "assets": {"jwt": token}}
    ok(upload(api, "workers/scripts/site", script_form(metadata)))
    kept = {
        "main_module": "index.js",
        "keep_assets": True,
        "assets": {"config": CONFIG},
    }
    version = ok(
        upload(api, "workers/scripts/site/versions", script_form(kept), method="post")
    )
    stored = WorkerVersion.objects.get(pk=version["id"])
    assert stored.assets == {"manifest": asset_manifest(FILES), "config": CONFIG}


def test_a_blob_that_does_not_match_its_hash_is_refused_and_not_stored(api):
    session = ok(open_session(api))
    digest = session["buckets"][0][0]
    body, content_type = form(
        [(digest, digest, "text/html", base64.b64encode(b"<h1>Evil!!!!!</h1>"))]
    )
    response = api.client.post(
        api.url("workers/assets/upload?base64=true"),
        data=body,
        content_type=content_type,
        HTTP_AUTHORIZATION=f"Bearer {session['jwt']}",
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == 10021
    assert not AssetBlob.objects.exists()
    assert not default_storage.exists(f"accounts/{api.account.id}")


@pytest.mark.parametrize(
    ("make_part", "message"),
    [
        (
            lambda h, d: ("0" * 32, "0" * 32, "text/html", base64.b64encode(d)),
            "manifest",
        ),
        (lambda h, d: (h, h, "text/html", b"%%% not base64 %%%"), "base64"),
        (lambda h, d: (h, h, "text/html", base64.b64encode(d + b"!")), "bytes"),
    ],
)
def test_bad_blobs_are_10021(api, make_part, message):
    session = ok(open_session(api, {"/index.html": FILES["/index.html"]}))
    digest = session["buckets"][0][0]
    body, content_type = form([make_part(digest, FILES["/index.html"])])
    response = api.client.post(
        api.url("workers/assets/upload?base64=true"),
        data=body,
        content_type=content_type,
        HTTP_AUTHORIZATION=f"Bearer {session['jwt']}",
    )
    assert error_code(response) == 10021
    assert message in response.json()["errors"][0]["message"]


def test_blob_uploads_need_the_sessions_upload_token_on_its_own_account(
    api, provision, now
):
    session = ok(open_session(api))
    bucket = session["buckets"][0]
    other = provision().account
    for account_id, token in (
        (api.account.id, "cpa_not-a-token"),
        (api.account.id, api.made.api_token),  # the account token is not enough
        (other.id, session["jwt"]),
    ):
        response = send_bucket(api.client, account_id, token, bucket)
        assert response.status_code == HTTPStatus.UNAUTHORIZED
        assert response.json()["success"] is False
    AssetUploadSession.objects.update(expires_at=now)
    expired = send_bucket(api.client, api.account.id, session["jwt"], bucket)
    assert expired.status_code == HTTPStatus.UNAUTHORIZED
    assert "Run the deploy again" in expired.json()["errors"][0]["message"]
    assert not AssetBlob.objects.exists()


def test_an_unknown_or_incomplete_upload_cannot_be_attached(api):
    session = ok(open_session(api))
    for token in ("cpa_made-up", session["jwt"]):
        metadata = {"main_module": "index.js", "assets": {"jwt": token}}
        response = upload(api, "workers/scripts/site", script_form(metadata))
        assert error_code(response) == 10021
    assert not WorkerScript.objects.exists()


@pytest.mark.parametrize(
    ("manifest", "status"),
    [
        ({}, HTTPStatus.BAD_REQUEST),
        ({"index.html": {"hash": "0" * 32, "size": 1}}, HTTPStatus.BAD_REQUEST),
        ({"/a": {"hash": "XYZ", "size": 1}}, HTTPStatus.BAD_REQUEST),
        ({"/a": {"hash": "0" * 32, "size": -1}}, HTTPStatus.BAD_REQUEST),
        ({"/a": {"hash": "0" * 32, "size": 26 * 1024 * 1024}}, 413),
        ({"/a": ["not", "an", "object"]}, HTTPStatus.BAD_REQUEST),
    ],
)
def test_manifests_are_checked(api, manifest, status):
    response = api.post(
        "workers/scripts/site/assets-upload-session", {"manifest": manifest}
    )
    assert response.status_code == status
    assert response.json()["success"] is False
    assert not AssetUploadSession.objects.exists()


H = "0" * 32
# Manifests whose files cannot all exist on one disk, and what the error says.
HOSTILE_MANIFESTS = [
    ({"/" + "a" * 256: {"hash": H, "size": 1}}, "longer than 255 bytes"),
    ({"/d/" + "é" * 128 + ".html": {"hash": H, "size": 1}}, "longer than 255 bytes"),
    ({"/a": {"hash": H, "size": 1}, "/a/b": {"hash": H, "size": 1}}, "a folder"),
    ({"/x/a/b": {"hash": H, "size": 1}, "/X/A": {"hash": H, "size": 1}}, "a folder"),
    ({"/A.txt": {"hash": H, "size": 1}, "/a.txt": {"hash": H, "size": 1}}, "by case"),
    ({"/a/./b": {"hash": H, "size": 1}}, "'.' or '..'"),
    ({"/../etc/passwd": {"hash": H, "size": 1}}, "'.' or '..'"),
    ({"/a\x00b": {"hash": H, "size": 1}}, "NUL"),
    ({"/a//b": {"hash": H, "size": 1}}, "empty part"),
    ({"/a/": {"hash": H, "size": 1}}, "empty part"),
    ({"/" + "a/" * 2100 + "b": {"hash": H, "size": 1}}, "4096"),
]


@pytest.mark.parametrize(("manifest", "said"), HOSTILE_MANIFESTS)
def test_manifests_that_cannot_exist_on_disk_are_refused(api, manifest, said):
    response = api.post(
        "workers/scripts/site/assets-upload-session", {"manifest": manifest}
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == 10021
    assert said in response.json()["errors"][0]["message"]
    assert not AssetUploadSession.objects.exists()


def test_the_number_of_asset_files_is_limited(api, settings):
    settings.CLAIMPORTAL_MAX_ASSET_FILES = 2
    response = open_session(api)
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert "2 asset files" in response.json()["errors"][0]["message"]


def test_buckets_fit_in_one_request(api, settings):
    settings.CLAIMPORTAL_MAX_REQUEST_BYTES = 40  # buckets of at most 20 raw bytes
    session = ok(open_session(api))
    assert len(session["buckets"]) == 4
    assert all(len(bucket) == 1 for bucket in session["buckets"])


@pytest.mark.django_db(transaction=True)
def test_parallel_buckets_all_land_and_one_of_them_completes(provision, settings):
    settings.CLAIMPORTAL_MAX_REQUEST_BYTES = 40
    made = provision()
    api = AccountClient(Client(), made)
    session = ok(open_session(api))
    responses = []

    def send(bucket):
        try:
            responses.append(
                send_bucket(Client(), made.account.id, session["jwt"], bucket)
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(b,)) for b in session["buckets"]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results = [ok_any(r) for r in responses]
    tokens = {r["jwt"] for r in results if "jwt" in r}
    assert len(tokens) == 1  # at least one completes, and they agree
    assert AssetBlob.objects.count() == 4
    metadata = {"main_module": "index.js", "assets": {"jwt": tokens.pop()}}
    ok(upload(api, "workers/scripts/site", script_form(metadata)))
