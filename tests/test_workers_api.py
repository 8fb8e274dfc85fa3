"""Workers endpoints as wrangler deploy calls them (spec 2.2-2.10, 4.3-4.14)."""

import json
import threading
from http import HTTPStatus

import pytest
from django.db import connection

from accounts.models import (
    AuditEvent,
    D1Database,
    DurableObjectNamespace,
    KVNamespace,
    Queue,
    WorkerDeployment,
    WorkerModule,
    WorkerScript,
    WorkerSecret,
    WorkerTail,
    WorkerVersion,
)
from tests.cloudapi import AccountClient, error_code, ok
from tests.workerupload import HELLO, MODULE, form, script_form, upload

pytestmark = pytest.mark.django_db

TEXT = b"Hello from a Text module\n"
SOURCE_MAP = b'{"version":3,"sources":[],"mappings":""}'


@pytest.fixture
def api(client, provision):
    return AccountClient(client, provision())


@pytest.fixture
def resources(api):
    """A KV namespace, a D1 database and a queue, as auto-provisioning makes them."""
    account = api.account
    return {
        "kv": KVNamespace.objects.create(account=account, title="full-worker-cache"),
        "d1": D1Database.objects.create(account=account, name="full-db"),
        "queue": Queue.objects.create(account=account, name="jobs"),
    }


def full_metadata(resources, **extra):
    """The metadata of the 'full worker' first deploy (spec 2.4)."""
    metadata = {
        "main_module": "index.js",
        "bindings": [
            {"name": "GREETING", "type": "plain_text", "text": "hi"},
            {"name": "LIMITS", "type": "json", "json": {"max": 3}},
            {"name": "API_KEY", "type": "secret_text", "text": "s3cret-value"},
            {
                "name": "CACHE",
                "type": "kv_namespace",
                "namespace_id": resources["kv"].id,
            },
            {
                "name": "COUNTER",
                "type": "durable_object_namespace",
                "class_name": "Counter",
            },
            {"type": "queue", "name": "JOBS", "queue_name": "jobs"},
            {"name": "DB", "type": "d1", "id": str(resources["d1"].uuid)},
        ],
        "compatibility_date": "2026-06-01",
        "compatibility_flags": ["nodejs_compat"],
        "migrations": {"new_tag": "v1", "steps": [{"new_sqlite_classes": ["Counter"]}]},
        "keep_bindings": ["secret_text", "secret_key"],
        "placement": {"mode": "smart"},
        "observability": {"enabled": True, "head_sampling_rate": 1},
    }
    metadata.update(extra)
    return metadata


FULL_MODULES = {
    "index.js": (MODULE, HELLO),
    "./feb83e-hello.txt": ("text/plain", TEXT),
    "index.js.map": ("application/source-map", SOURCE_MAP),
}

INHERITED = [
    {"name": "CACHE", "type": "inherit"},
    {"name": "JOBS", "type": "inherit"},
    {"name": "DB", "type": "inherit"},
]


def redeploy_metadata(**extra):
    """What wrangler sends on a versions-API redeploy (spec 2.5)."""
    metadata = {
        "main_module": "index.js",
        "bindings": [
            {"name": "GREETING", "type": "plain_text", "text": "hi again"},
            *INHERITED,
            {
                "name": "COUNTER",
                "type": "durable_object_namespace",
                "class_name": "Counter",
            },
        ],
        "compatibility_date": "2026-06-01",
        "keep_bindings": ["secret_text", "secret_key"],
    }
    metadata.update(extra)
    return metadata


def test_first_deploy_of_a_plain_worker_follows_wranglers_sequence(api, settings):
    settings.CLAIMPORTAL_PREVIEW_DOMAIN = "preview.example.test"
    settings.CLAIMPORTAL_PREVIEW_BASE_URL = "https://{host}"
    assert error_code(api.get("workers/services/plain-worker")) == 10090
    assert error_code(api.get("workers/scripts/plain-worker/deployments")) == 10007
    assert error_code(api.get("workers/scripts/plain-worker/settings")) == 10007
    subdomain = ok(api.get("workers/subdomain"))["subdomain"]
    assert subdomain == api.account.subdomain

    result = ok(
        upload(
            api,
            "workers/scripts/plain-worker?excludeScript=true&bindings_inherit=strict",
            script_form(
                {"main_module": "index.js", "compatibility_date": "2026-06-01"}
            ),
        )
    )
    version = WorkerVersion.objects.get(pk=result["deployment_id"])
    assert version.number == 1
    module = WorkerModule.objects.get(version=version)
    assert (bytes(module.content), module.content_type) == (HELLO, MODULE)

    worker = ok(api.get("workers/workers/plain-worker"))
    host = f"plain-worker.{subdomain}.preview.example.test"
    assert worker["subdomain"]["url"] == f"https://{host}"
    assert worker["subdomain"]["enabled"] is False
    enabled = ok(api.post("workers/scripts/plain-worker/subdomain", {"enabled": True}))
    assert enabled == {"enabled": True, "previews_enabled": True}
    assert ok(api.get("workers/workers/plain-worker"))["subdomain"]["enabled"] is True

    service = ok(api.get("workers/services/plain-worker"))
    assert service["default_environment"]["script"]["etag"] == version.etag
    assert service["default_environment"]["script"]["last_deployed_from"] != "dash"
    deployments = ok(api.get("workers/scripts/plain-worker/deployments"))["deployments"]
    assert deployments[0]["versions"] == [
        {"version_id": str(version.pk), "percentage": 100}
    ]
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.DEPLOYED)
    assert event.account_id == api.account.id
    assert event.details["script"] == "plain-worker"


def test_full_worker_deploy_then_redeploy_through_the_versions_api(api, resources):
    first = ok(
        upload(
            api,
            "workers/scripts/full-worker",
            script_form(full_metadata(resources), FULL_MODULES),
        )
    )
    script = WorkerScript.objects.get(account=api.account, name="full-worker")
    assert script.migration_tag == "v1"
    namespace = DurableObjectNamespace.objects.get(script=script)
    assert (namespace.class_name, namespace.use_sqlite) == ("Counter", True)
    stored = {
        m.name: (m.content_type, bytes(m.content))
        for m in WorkerModule.objects.filter(version_id=first["deployment_id"])
    }
    assert stored == FULL_MODULES
    secret = WorkerSecret.objects.get(script=script)
    assert (secret.name, secret.value) == ("API_KEY", "s3cret-value")

    settings = ok(api.get("workers/scripts/full-worker/settings"))
    by_name = {b["name"]: b for b in settings["bindings"]}
    assert by_name["CACHE"]["namespace_id"] == resources["kv"].id
    assert by_name["DB"]["id"] == str(resources["d1"].uuid)
    assert by_name["JOBS"]["queue_name"] == "jobs"
    assert by_name["API_KEY"] == {"name": "API_KEY", "type": "secret_text"}
    assert "s3cret-value" not in json.dumps(settings)
    assert (
        ok(api.get("workers/services/full-worker"))["default_environment"]["script"][
            "migration_tag"
        ]
        == "v1"
    )

    # The redeploy: inherit for the provisioned bindings, no migrations, no secret.
    version = ok(
        upload(
            api,
            "workers/scripts/full-worker/versions?bindings_inherit=strict",
            script_form(redeploy_metadata(), FULL_MODULES),
            method="post",
        )
    )
    assert version["resources"]["script"]["etag"]
    assert version["number"] == 2
    # Uploaded but not deployed yet: settings still show version 1.
    assert (
        ok(api.get("workers/scripts/full-worker/settings"))["bindings"][0]["text"]
        == "hi"
    )
    ok(
        api.post(
            "workers/scripts/full-worker/deployments",
            {
                "strategy": "percentage",
                "versions": [{"version_id": version["id"], "percentage": 100}],
            },
        )
    )
    ok(
        api.patch(
            "workers/scripts/full-worker/script-settings",
            {"observability": {"enabled": True}, "tags": []},
        )
    )
    settings = ok(api.get("workers/scripts/full-worker/settings"))
    by_name = {b["name"]: b for b in settings["bindings"]}
    assert by_name["GREETING"]["text"] == "hi again"
    assert by_name["CACHE"]["namespace_id"] == resources["kv"].id
    assert by_name["DB"] == {
        "name": "DB",
        "type": "d1",
        "id": str(resources["d1"].uuid),
    }
    assert "API_KEY" in by_name  # kept across deploys (keep_bindings)
    assert "LIMITS" not in by_name  # vars are not kept without --keep-vars
    assert settings["observability"] == {"enabled": True}

    deployments = ok(api.get("workers/scripts/full-worker/deployments"))["deployments"]
    assert [d["versions"][0]["version_id"] for d in deployments] == [
        version["id"],
        first["deployment_id"],
    ]
    items = ok(api.get("workers/scripts/full-worker/versions?deployable=true"))["items"]
    assert [item["number"] for item in items] == [2, 1]
    stored = WorkerVersion.objects.get(pk=version["id"])
    assert all(b["type"] != "inherit" for b in stored.bindings)
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.DEPLOYED).count() == 2
    # Nothing was duplicated by the redeploy.
    assert WorkerScript.objects.count() == 1
    assert DurableObjectNamespace.objects.count() == 1
    assert WorkerSecret.objects.count() == 1


def test_a_version_keeps_what_settings_show_back_and_no_secret(api, resources):
    limits = {"cpu_ms": 50}
    metadata = full_metadata(resources, limits=limits, exports={"Counter": {}})
    result = ok(
        upload(api, "workers/scripts/full-worker", script_form(metadata, FULL_MODULES))
    )
    version = WorkerVersion.objects.get(pk=result["deployment_id"])
    assert "s3cret-value" not in json.dumps(version.metadata)
    assert "exports" not in version.metadata  # sent, not read: not kept
    assert version.compatibility_flags == ["nodejs_compat"]
    assert version.main_module == "index.js"
    shown = ok(api.get("workers/scripts/full-worker/settings"))
    assert (shown["placement"], shown["limits"]) == ({"mode": "smart"}, limits)


def test_inherit_is_resolved_on_the_put_path_too(api, resources):
    ok(
        upload(
            api, "workers/scripts/full-worker", script_form(full_metadata(resources))
        )
    )
    metadata = redeploy_metadata(
        migrations={
            "old_tag": "v1",
            "new_tag": "v2",
            "steps": [{"new_classes": ["Legacy"]}],
        }
    )
    result = ok(upload(api, "workers/scripts/full-worker", script_form(metadata)))
    version = WorkerVersion.objects.get(pk=result["deployment_id"])
    kinds = {b["name"]: b["type"] for b in version.bindings}
    assert kinds["CACHE"] == "kv_namespace"
    assert kinds["DB"] == "d1"
    legacy = DurableObjectNamespace.objects.get(class_name="Legacy")
    assert legacy.use_sqlite is False
    assert WorkerScript.objects.get(name="full-worker").migration_tag == "v2"


def test_inherit_with_nothing_to_inherit_is_a_10021(api):
    response = upload(
        api,
        "workers/scripts/fresh",
        script_form({"main_module": "index.js", "bindings": INHERITED[:1]}),
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == 10021
    assert "nothing to inherit" in response.json()["errors"][0]["message"]
    assert not WorkerScript.objects.exists()


BAD_BINDINGS = [
    (
        {"name": "CACHE", "type": "kv_namespace", "namespace_id": "0" * 32},
        10021,
        "does not have",
    ),
    (
        {"name": "DB", "type": "d1", "id": "00000000-0000-0000-0000-000000000000"},
        10021,
        "binding DB of type d1 must have a valid `id` specified",
    ),
    ({"name": "DB", "type": "d1", "id": "not-a-uuid"}, 10021, "valid `id`"),
    (
        {"name": "JOBS", "type": "queue", "queue_name": "nope"},
        10021,
        'Queue "nope" does not exist',
    ),
    ({"name": "HD", "type": "hyperdrive", "id": "f" * 32}, 10021, "hyperdrive"),
    (
        {"name": "FILES", "type": "r2_bucket", "bucket_name": "files"},
        10021,
        "R2 is not available",
    ),
    (
        {"name": "C", "type": "durable_object_namespace", "class_name": "Nope"},
        10061,
        "Did you forget to apply a migration?",
    ),
    ({"name": "X", "type": "teleporter"}, 10021, "unknown type"),
    ({"name": "ASSETS", "type": "assets"}, 10021, "needs assets"),
    ({"type": "plain_text", "text": "no name"}, 10021, "name"),
]


@pytest.mark.parametrize(("binding", "code", "message"), BAD_BINDINGS)
def test_bindings_must_point_at_this_accounts_resources(api, binding, code, message):
    metadata = {"main_module": "index.js", "bindings": [binding]}
    response = upload(api, "workers/scripts/bad", script_form(metadata))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == code
    assert message in response.json()["errors"][0]["message"]
    assert not WorkerScript.objects.exists()


def test_another_accounts_resources_are_not_bindable(api, provision, client):
    other = provision().account
    foreign = KVNamespace.objects.create(account=other, title="theirs")
    metadata = {
        "main_module": "index.js",
        "bindings": [
            {"name": "KV", "type": "kv_namespace", "namespace_id": foreign.id}
        ],
    }
    response = upload(api, "workers/scripts/w", script_form(metadata))
    assert error_code(response) == 10021


def test_a_token_cannot_deploy_into_another_account(api, provision):
    other = provision().account
    body, content_type = script_form({"main_module": "index.js"})
    response = api.client.put(
        f"/client/v4/accounts/{other.id}/workers/scripts/w",
        data=body,
        content_type=content_type,
        **api.auth,
    )
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == 7003
    assert not WorkerScript.objects.exists()


def _raw(api, body: bytes, content_type: str):
    return api.client.put(
        api.url("workers/scripts/w"), data=body, content_type=content_type, **api.auth
    )


MALFORMED = [
    (b'{"main_module": "index.js"}', "application/json", "multipart/form-data"),
    (b"--x\r\n", "multipart/form-data", "boundary"),
    (
        b'--abc\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n{}',
        "multipart/form-data; boundary=abc",
        "closing boundary",
    ),
    (
        b"--abc\r\nContent-Type: text/plain\r\n\r\nx\r\n--abc--",
        "multipart/form-data; boundary=abc",
        "Content-Disposition",
    ),
    (
        b"--abc\r\nno colon here\r\n\r\nx\r\n--abc--",
        "multipart/form-data; boundary=abc",
        "malformed",
    ),
    (b"--abcX", "multipart/form-data; boundary=abc", "CRLF"),
    (b"garbage", "multipart/form-data; boundary=abc", "not in the body"),
]


@pytest.mark.parametrize(("body", "content_type", "message"), MALFORMED)
def test_malformed_multipart_is_a_400_in_the_envelope(api, body, content_type, message):
    response = _raw(api, body, content_type)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert message in response.json()["errors"][0]["message"]
    assert not WorkerScript.objects.exists()


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ([("index.js", "index.js", MODULE, HELLO)], "exactly one 'metadata'"),
        ([("metadata", None, None, b"{not json")], "not valid JSON"),
        ([("metadata", None, None, b"[1, 2]")], "JSON object"),
        ([("metadata", None, None, b'{"main_module": "missing.js"}')], "not uploaded"),
        (
            [
                ("metadata", None, None, b'{"main_module": "index.js"}'),
                ("index.js", "index.js", "application/x-evil", HELLO),
            ],
            "unsupported Content-Type",
        ),
        (
            [
                ("metadata", None, None, b'{"main_module": "a.js"}'),
                ("a.js", "a.js", MODULE, HELLO),
                ("a.js", "a.js", MODULE, HELLO),
            ],
            "twice",
        ),
        (
            [("metadata", None, None, b'{"compatibility_date": "2026-06-01"}')],
            "no modules and no assets",
        ),
        (
            [
                ("metadata", None, None, b'{"main_module": "index.js", "x": [}'),
                ("index.js", "index.js", MODULE, HELLO),
            ],
            "not valid JSON",
        ),
        (
            [
                ("metadata", None, None, b'{"compatibility_date": "June"}'),
                ("index.js", "index.js", MODULE, HELLO),
            ],
            "compatibility_date",
        ),
        (
            [
                ("metadata", None, None, b'{"main_module": 7}'),
                ("index.js", "index.js", MODULE, HELLO),
            ],
            "'main_module' must be a string",
        ),
    ],
)
def test_bad_script_uploads_are_10021_and_write_nothing(api, parts, message):
    response = upload(api, "workers/scripts/w", form(parts))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == 10021
    assert message in response.json()["errors"][0]["message"]
    assert not WorkerScript.objects.exists()


@pytest.mark.parametrize(
    ("limit", "code"),
    [("CLAIMPORTAL_MAX_SCRIPT_BYTES", 10027), ("DATA_UPLOAD_MAX_MEMORY_SIZE", 10413)],
)
def test_oversized_uploads_are_a_413(api, settings, limit, code):
    setattr(settings, limit, 1000)
    modules = {"index.js": (MODULE, b"//" + b"x" * 2000)}
    response = upload(
        api, "workers/scripts/w", script_form({"main_module": "index.js"}, modules)
    )
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert error_code(response) == code
    assert not WorkerScript.objects.exists()


def test_versions_need_an_existing_worker(api):
    response = upload(
        api,
        "workers/scripts/ghost/versions",
        script_form({"main_module": "index.js"}),
        method="post",
    )
    assert error_code(response) == 10007
    assert "does not exist" in response.json()["errors"][0]["message"]


def test_invalid_worker_names_are_refused(api):
    response = upload(
        api, "workers/scripts/Bad_Name!", script_form({"main_module": "index.js"})
    )
    assert error_code(response) == 10021


def test_the_number_of_workers_is_limited(api, settings):
    settings.CLAIMPORTAL_MAX_WORKERS = 1
    ok(upload(api, "workers/scripts/one", script_form({"main_module": "index.js"})))
    response = upload(
        api, "workers/scripts/two", script_form({"main_module": "index.js"})
    )
    assert error_code(response) == 10037


def test_migrations_check_their_tags_and_steps(api):
    def deploy(migrations, bindings=()):
        metadata = {
            "main_module": "index.js",
            "migrations": migrations,
            "bindings": list(bindings),
        }
        return upload(api, "workers/scripts/do", script_form(metadata))

    ok(deploy({"new_tag": "v1", "steps": [{"new_sqlite_classes": ["Counter"]}]}))
    stale = deploy({"old_tag": "v0", "new_tag": "v2", "steps": []})
    assert error_code(stale) == 10079
    assert "precondition" in stale.json()["errors"][0]["message"]
    renamed = deploy(
        {
            "old_tag": "v1",
            "new_tag": "v2",
            "steps": [{"renamed_classes": [{"from": "Counter", "to": "Tally"}]}],
        },
        [{"name": "T", "type": "durable_object_namespace", "class_name": "Tally"}],
    )
    ok(renamed)
    namespace = DurableObjectNamespace.objects.get()
    assert namespace.class_name == "Tally"  # same row, so the same storage
    # A failed upload rolls its migration back with everything else.
    failed = deploy(
        {"old_tag": "v2", "new_tag": "v3", "steps": [{"deleted_classes": ["Tally"]}]},
        [{"name": "FILES", "type": "r2_bucket", "bucket_name": "x"}],
    )
    assert error_code(failed) == 10021
    assert DurableObjectNamespace.objects.filter(class_name="Tally").exists()
    assert WorkerScript.objects.get().migration_tag == "v2"
    assert WorkerVersion.objects.count() == 2
    listed = ok(api.get("workers/durable_objects/namespaces?per_page=1000&page=1"))
    assert listed == [
        {
            "id": namespace.id,
            "name": "do_Tally",
            "script": "do",
            "class": "Tally",
            "use_sqlite": True,
        }
    ]


def test_secrets_are_write_only_and_survive_deploys(api):
    assert (
        error_code(api.put("workers/scripts/w/secrets", {"name": "K", "text": "v"}))
        == 10007
    )
    assert error_code(api.get("workers/scripts/w/secrets")) == 10007
    ok(upload(api, "workers/scripts/w", script_form({"main_module": "index.js"})))
    put = ok(
        api.put(
            "workers/scripts/w/secrets",
            {"name": "K", "text": "v1", "type": "secret_text"},
        )
    )
    assert put == {"name": "K", "type": "secret_text"}
    ok(
        api.put(
            "workers/scripts/w/secrets",
            {"name": "K", "text": "v2", "type": "secret_text"},
        )
    )
    assert ok(api.get("workers/scripts/w/secrets")) == [
        {"name": "K", "type": "secret_text"}
    ]
    assert WorkerSecret.objects.get().value == "v2"

    metadata = {"main_module": "index.js", "keep_bindings": ["secret_text"]}
    ok(upload(api, "workers/scripts/w", script_form(metadata)))
    assert WorkerSecret.objects.filter(name="K").exists()
    clash = {**metadata, "bindings": [{"name": "K", "type": "plain_text", "text": "x"}]}
    assert error_code(upload(api, "workers/scripts/w", script_form(clash))) == 10053

    ok(api.delete("workers/scripts/w/secrets/K?url_encoded=true"))
    assert ok(api.get("workers/scripts/w/secrets")) == []
    assert error_code(api.delete("workers/scripts/w/secrets/K")) == 10056


def test_an_upload_without_keep_bindings_drops_old_secrets(api):
    ok(upload(api, "workers/scripts/w", script_form({"main_module": "index.js"})))
    ok(api.put("workers/scripts/w/secrets", {"name": "K", "text": "v"}))
    ok(upload(api, "workers/scripts/w", script_form({"main_module": "index.js"})))
    assert not WorkerSecret.objects.exists()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("put", "secrets", {"text": "v"}),
        ("put", "secrets", {"name": "K", "text": 5}),
        ("put", "secrets", {"name": "K", "text": "v", "type": "plain_text"}),
        ("patch", "secrets-bulk", {"secrets": {"K": "v"}}),
        ("patch", "secrets-bulk", {"secrets": {"K": {"text": "v", "colour": 1}}}),
        ("patch", "secrets-bulk", {}),
    ],
)
def test_malformed_secret_bodies_are_refused_before_a_version_is_made(
    api, method, path, body
):
    ok(upload(api, "workers/scripts/w", script_form({"main_module": "index.js"})))
    response = getattr(api, method)(f"workers/scripts/w/{path}", body)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == 10001
    assert WorkerVersion.objects.count() == 1


def test_versions_secret_patch_keeps_the_message_and_tag(api):
    ok(upload(api, "workers/scripts/w", script_form({"main_module": "index.js"})))
    body = {
        "env": {"K": {"type": "secret_text", "text": "v"}},
        "annotations": {"workers/message": "rotate", "workers/tag": "t1"},
    }
    version = ok(api.patch("workers/workers/w/versions/latest", body))
    assert version["annotations"] == {
        "workers/message": "rotate",
        "workers/tag": "t1",
        "workers/triggered_by": "secret",
    }
    assert WorkerVersion.objects.get(pk=version["id"]).secrets == {
        "K": ["secret_text", "v"]
    }


def test_a_tail_keeps_its_filters_as_the_tail_server_reads_them(api):
    ok(upload(api, "workers/scripts/w", script_form({"main_module": "index.js"})))
    filters = [
        {"outcome": ["exception"]},
        {"method": ["get"]},
        {"client_ip": ["self"]},
        {"header": {"key": "X-Pick", "query": "yes"}},
        {"scriptVersion": "v1"},
        {"sampling_rate": 0.5},
    ]
    created = ok(api.post("workers/scripts/w/tails", {"filters": filters}))
    assert WorkerTail.objects.get(pk=created["id"]).filters == [
        {"outcome": ["exception"]},
        {"method": ["GET"]},
        {"client_ip": ["127.0.0.1"]},
        {"header": {"key": "x-pick", "query": "yes"}},
        {"scriptVersion": "v1"},
        {"sampling_rate": 0.5},
    ]
    assert ok(api.post("workers/scripts/w/tails", ""))["url"]  # no body: no filter


@pytest.mark.parametrize(
    "filters",
    [
        [{"method": ["GET"], "query": "x"}],
        [{}],
        [{"colour": "blue"}],
        [{"outcome": ["fine"]}],
        [{"client_ip": ["not-an-ip"]}],
        [{"sampling_rate": 0}],
        [{"header": {"query": "x"}}],
        {"method": ["GET"]},
    ],
)
def test_malformed_tail_filters_are_refused(api, filters):
    ok(upload(api, "workers/scripts/w", script_form({"main_module": "index.js"})))
    response = api.post("workers/scripts/w/tails", {"filters": filters})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == 10001
    assert not WorkerTail.objects.exists()


def test_oversized_secrets_are_refused(api, settings):
    settings.CLAIMPORTAL_MAX_SECRET_BYTES = 10
    ok(upload(api, "workers/scripts/w", script_form({"main_module": "index.js"})))
    response = api.put("workers/scripts/w/secrets", {"name": "K", "text": "x" * 11})
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def test_schedules_replace_the_set_and_are_checked(api, settings):
    ok(upload(api, "workers/scripts/w", script_form({"main_module": "index.js"})))
    result = ok(api.put("workers/scripts/w/schedules", [{"cron": "*/5 * * * *"}]))
    assert [s["cron"] for s in result["schedules"]] == ["*/5 * * * *"]
    ok(api.put("workers/scripts/w/schedules", [{"cron": "0 0 * * MON"}]))
    listed = ok(api.get("workers/scripts/w/schedules"))["schedules"]
    assert [s["cron"] for s in listed] == ["0 0 * * MON"]
    for bad in ([{"cron": "every minute"}], {"cron": "* * * * *"}, [{"cron": 5}]):
        assert error_code(api.put("workers/scripts/w/schedules", bad)) == 10001
    settings.CLAIMPORTAL_MAX_CRON_TRIGGERS = 1
    too_many = [{"cron": "* * * * *"}, {"cron": "0 * * * *"}]
    assert error_code(api.put("workers/scripts/w/schedules", too_many)) == 10074


def test_deployments_refuse_unknown_versions_and_bad_splits(api, provision):
    ok(upload(api, "workers/scripts/w", script_form({"main_module": "index.js"})))
    for body in (
        {"versions": [{"version_id": "nope", "percentage": 100}]},
        {
            "versions": [
                {
                    "version_id": "00000000-0000-0000-0000-000000000000",
                    "percentage": 100,
                }
            ]
        },
        {"versions": []},
        {"strategy": "immediate", "versions": []},
        {"versions": "all"},
    ):
        assert (
            api.post("workers/scripts/w/deployments", body).json()["success"] is False
        )
    assert WorkerDeployment.objects.count() == 1
    version = WorkerVersion.objects.get()
    half = {"versions": [{"version_id": str(version.pk), "percentage": 50}]}
    assert error_code(api.post("workers/scripts/w/deployments", half)) == 10001


def test_account_subdomain_and_availability(api, provision):
    other = provision().account
    assert error_code(api.get(f"workers/subdomains/{other.subdomain}")) == 10031
    free = api.get("workers/subdomains/a-free-name")
    assert free.status_code == HTTPStatus.NOT_FOUND
    assert error_code(free) == 10032
    assert ok(api.put("workers/subdomain", {"subdomain": "a-free-name"})) == {
        "subdomain": "a-free-name"
    }
    assert ok(api.get("workers/subdomain")) == {"subdomain": "a-free-name"}
    assert (
        error_code(api.put("workers/subdomain", {"subdomain": other.subdomain}))
        == 10031
    )
    assert error_code(api.put("workers/subdomain", {"subdomain": "No Way"})) == 10001


def test_delete_removes_the_worker_and_everything_it_owns(api, resources):
    ok(
        upload(
            api, "workers/scripts/full-worker", script_form(full_metadata(resources))
        )
    )
    references = ok(api.get("workers/scripts/full-worker/references"))
    assert references["services"]["incoming"] == []
    assert ok(api.get("workers/tails/by-consumer/full-worker")) == []
    ok(api.delete("workers/services/full-worker?force=false"))
    assert error_code(api.get("workers/services/full-worker")) == 10090
    for model in (WorkerVersion, WorkerModule, WorkerSecret, DurableObjectNamespace):
        assert not model.objects.exists()
    assert (
        KVNamespace.objects.exists()
    )  # data resources are the account's, not the script's
    assert error_code(api.delete("workers/services/full-worker")) == 10090


def test_service_bindings_show_up_as_references(api):
    ok(upload(api, "workers/scripts/backend", script_form({"main_module": "index.js"})))
    metadata = {
        "main_module": "index.js",
        "bindings": [{"name": "B", "type": "service", "service": "backend"}],
    }
    ok(upload(api, "workers/scripts/frontend", script_form(metadata)))
    references = ok(api.get("workers/scripts/backend/references"))
    assert references["services"]["incoming"] == [{"service": "frontend"}]


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_deploys_of_one_name_make_one_worker(provision, client):
    made = provision()
    from django.test import Client

    results = []

    def deploy():
        try:
            api = AccountClient(Client(), made)
            results.append(
                upload(
                    api,
                    "workers/scripts/race",
                    script_form({"main_module": "index.js"}),
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=deploy) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in results] == [HTTPStatus.OK] * 4
    script = WorkerScript.objects.get(name="race")
    assert sorted(script.versions.values_list("number", flat=True)) == [1, 2, 3, 4]
    assert script.current_version.number == 4  # the last to take the lock


def test_a_service_worker_script_keeps_its_body_part_first(api):
    wasm = b"\x00asm\x01\x00\x00\x00"
    metadata = {
        "body_part": "worker.js",
        "bindings": [{"name": "GREETING", "type": "plain_text", "text": "hi"}],
    }
    modules = {
        "wasm": ("application/wasm", wasm),
        "worker.js": ("application/javascript", b"addEventListener('fetch', e => {});"),
    }
    result = ok(upload(api, "workers/scripts/sw", script_form(metadata, modules)))
    version = WorkerVersion.objects.get(pk=result["deployment_id"])
    assert version.main_module == ""
    assert version.metadata["body_part"] == "worker.js"
    assert [m.name for m in version.modules.all()] == ["worker.js", "wasm"]
    missing = {
        **metadata,
        "bindings": [{"name": "W", "type": "wasm_module", "part": "x"}],
    }
    assert (
        error_code(upload(api, "workers/scripts/sw", script_form(missing, modules)))
        == 10021
    )


HOSTILE_METADATA = [
    b'{"main_module": "index.js", "vars": NaN}',
    b'{"main_module": "index.js", "annotations": {"x": "\\u0000"}}',
    b'{"main_module": "index.js", "keep_bindings": [{"a": 1}]}',
    b'{"main_module": "index.js", "bindings": [{"name": "Q", "type": "queue",'
    b' "queue_name": ["jobs"]}]}',
    b'{"main_module": "index.js", "bindings": [{"name": "D", "type": "d1",'
    b' "id": {"x": 1}}]}',
    b'{"main_module": "index.js", "migrations": {"new_tag": ["v1"]}}',
    b'{"main_module": "index.js", "migrations": {"steps": [{"new_classes": [1]}]}}',
    b'{"main_module": "index.js", "compatibility_flags": "nodejs_compat"}',
]


@pytest.mark.parametrize("metadata", HOSTILE_METADATA)
def test_hostile_metadata_is_refused_cleanly(api, metadata):
    body = form(
        [("metadata", None, None, metadata), ("index.js", "index.js", MODULE, HELLO)]
    )
    response = upload(api, "workers/scripts/w", body)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["success"] is False
    assert not WorkerScript.objects.exists()


def test_a_module_with_an_overlong_content_type_is_refused(api):
    parts = [
        ("metadata", None, None, b'{"main_module": "index.js"}'),
        ("index.js", "index.js", MODULE + "; x=" + "y" * 200, HELLO),
    ]
    assert error_code(upload(api, "workers/scripts/w", form(parts))) == 10021


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("script-settings", '{"observability": {"head_sampling_rate": NaN}}'),
        ("script-settings", '{"tags": ["\\u0000"]}'),
        ("script-settings", '{"colour": "blue"}'),
        ("deployments", '{"versions": [{"version_id": "x", "percentage": NaN}]}'),
        ("deployments", '{"annotations": {"a": Infinity}, "versions": []}'),
    ],
)
def test_hostile_json_bodies_are_400s(api, path, body):
    ok(upload(api, "workers/scripts/w", script_form({"main_module": "index.js"})))
    method = api.patch if path == "script-settings" else api.post
    response = method(f"workers/scripts/w/{path}", body)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["success"] is False
