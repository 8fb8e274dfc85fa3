"""Workers endpoints of client/v4: what ``wrangler deploy`` calls (spec 2.2-2.10,
4.3-4.15). Each view checks its input, calls one service, and answers in the
envelope."""

from http import HTTPStatus
from secrets import token_hex
from typing import Any

from django.http import HttpResponse
from django.utils import timezone

from accounts.exceptions import Conflict, NotFound
from accounts.http import client_address
from accounts.models import preview_url
from accounts.services import tails as tail_service
from accounts.services import workers

from . import envelope
from .inputs import (
    Boolean,
    Input,
    JSONObject,
    ListOf,
    MapOf,
    Nested,
    Number,
    Text,
)
from .kit import ApiRequest, FormBody, endpoint, operation
from .openapi import BOOLEAN, STRING, TIMESTAMP, obj, ref
from .paging import Paging, page_of, paged_response
from .serializers import (
    durable_object_namespace_json,
    iso,
    worker_deployment_json,
    worker_script_json,
    worker_service_json,
    worker_version_json,
)
from .uploads import (
    ANNOTATIONS_MAX_BYTES,
    UPLOAD_FORM,
    NamedSecret,
    SecretBinding,
    UploadMetadata,
    worker_upload,
)

TAG = "workers"
SCRIPT_SETTINGS_DEFAULTS = {
    "logpush": False,
    "observability": {"enabled": False},
    "tags": [],
    "tail_consumers": [],
}


def _actor(request: ApiRequest) -> str:
    return f"API token {request.api_token.prefix}…"


def _script(request: ApiRequest, script_name: str):
    return workers.get_script(account=request.cloud_account, name=script_name)


# --- scripts and services ----------------------------------------------------------


SCRIPT = ref("WorkerScript")


@operation(
    "A Worker's tag and migration tag (10090 when missing).",
    tag=TAG,
    result={"type": "object"},
)
def _get_service(request: ApiRequest, account_id: str, script_name: str):
    script = workers.get_script(
        account=request.cloud_account, name=script_name, code=10090
    )
    return envelope.success(worker_service_json(script))


@operation(
    "Delete a Worker with its versions, secrets and Durable Object namespaces.",
    tag=TAG,
)
def _delete_service(request: ApiRequest, account_id: str, script_name: str):
    workers.delete_script(
        account=request.cloud_account, script_name=script_name, now=timezone.now()
    )
    return envelope.success({})


@operation("The account's Workers.", tag=TAG, result=SCRIPT, listing=True)
def _list_scripts(request: ApiRequest, account_id: str):
    scripts = workers.list_scripts(account=request.cloud_account)
    return envelope.success([worker_script_json(s) for s in scripts])


UPLOAD_ERRORS = {
    "400": "Malformed multipart or metadata, bad bindings: 10021, whose message "
    "wrangler prints (R2 refused, a resource this account does not have); "
    "10079 for migrations, 10053 for a binding named like a secret.",
    "413": "Larger than the configured limits (10027 for the modules together).",
}


def _upload(
    request: ApiRequest,
    script_name: str,
    body: FormBody[UploadMetadata],
    *,
    deploy: bool,
):
    return workers.upload_version(
        account=request.cloud_account,
        script_name=script_name,
        upload=worker_upload(body),
        deploy=deploy,
        now=timezone.now(),
        actor_label=_actor(request),
    )


@operation(
    "Upload and deploy a Worker: a metadata part and the modules.",
    tag=TAG,
    form=UPLOAD_FORM,
    result=SCRIPT,
    errors=UPLOAD_ERRORS,
)
def _put_script(
    request: ApiRequest,
    account_id: str,
    script_name: str,
    *,
    body: FormBody[UploadMetadata],
):
    uploaded = _upload(request, script_name, body, deploy=True)
    result = worker_script_json(uploaded.script)
    result["deployment_id"] = str(uploaded.version.pk)
    result["startup_time_ms"] = uploaded.version.startup_time_ms
    return envelope.success(result)


@operation(
    "The deployed version's modules, one multipart part per module (named and "
    "filed by the module's name).",
    tag=TAG,
    raw={"multipart/form-data": {"schema": STRING}},
)
def _get_script_content(request: ApiRequest, account_id: str, script_name: str):
    """The deployed version's modules as multipart/form-data, one part per module
    named (and filed) by its name, as Cloudflare answers."""
    modules = workers.script_modules(script=_script(request, script_name))
    boundary = token_hex(16)
    body = b""
    for module in modules:
        name = module.name.replace("\\", "\\\\").replace('"', '\\"')
        body += (
            (
                f"--{boundary}\r\nContent-Disposition: form-data; "
                f'name="{name}"; filename="{name}"\r\n'
                f"Content-Type: {module.content_type}\r\n\r\n"
            ).encode()
            + bytes(module.content)
            + b"\r\n"
        )
    body += f"--{boundary}--\r\n".encode()
    return HttpResponse(body, content_type=f"multipart/form-data; boundary={boundary}")


class VersionListing(Paging):
    deployable = Boolean(
        default=False,
        description="true: the newest 100, unpaged (rollback and versions deploy).",
    )


VERSION = ref("WorkerVersion")
DEPLOYMENT = ref("WorkerDeployment")


@operation(
    "Versions, newest first ({items: [...]}).",
    tag=TAG,
    query=VersionListing,
    result=obj(items={"type": "array", "items": VERSION}),
)
def _list_versions(
    request: ApiRequest, account_id: str, script_name: str, *, query: VersionListing
):
    versions = workers.list_versions(script=_script(request, script_name))
    if query.deployable:
        # Cloudflare ignores paging here (rollback and versions deploy ask).
        return envelope.success(
            {"items": [worker_version_json(v) for v in versions[:100]]}
        )
    items, info = page_of(versions, query.page(default_size=100), worker_version_json)
    return envelope.success({"items": items}, result_info=info)


@operation(
    "Upload a version without deploying it (the same body as PUT script).",
    tag=TAG,
    form=UPLOAD_FORM,
    result=VERSION,
    errors=UPLOAD_ERRORS,
)
def _post_version(
    request: ApiRequest,
    account_id: str,
    script_name: str,
    *,
    body: FormBody[UploadMetadata],
):
    uploaded = _upload(request, script_name, body, deploy=False)
    result = worker_version_json(uploaded.version)
    result["startup_time_ms"] = uploaded.version.startup_time_ms
    return envelope.success(result)


@operation("One version.", tag=TAG, result=VERSION)
def _get_version(
    request: ApiRequest, account_id: str, script_name: str, version_id: str
):
    version = workers.get_version(
        script=_script(request, script_name), version_id=version_id
    )
    return envelope.success(worker_version_json(version))


@operation(
    "Deployments, newest first ({deployments: [...]}, and {items} for the SDK).",
    tag=TAG,
    query=Paging,
    result=obj(deployments={"type": "array", "items": DEPLOYMENT}),
)
def _list_deployments(
    request: ApiRequest, account_id: str, script_name: str, *, query: Paging
):
    deployments = workers.list_deployments(script=_script(request, script_name))
    items, info = page_of(
        deployments, query.page(default_size=100), worker_deployment_json
    )
    # wrangler reads "deployments"; the official SDK pages through "items".
    return envelope.success({"deployments": items, "items": items}, result_info=info)


class VersionShare(Input):
    version_id = Text(required=True, max_length=64, description="A version's uuid.")
    percentage = Number(required=True, maximum=100)


class NewDeployment(Input):
    """Versions to serve by percentage (one or two, adding up to 100)."""

    unknown = "ignore"  # wrangler also sends code_update_strategy, which we ignore
    strategy = Text(choices=("percentage",), default="percentage")
    versions = ListOf(Nested(VersionShare), required=True, min_items=1, max_items=2)
    annotations = JSONObject(max_bytes=ANNOTATIONS_MAX_BYTES, default={})


@operation(
    "Deploy uploaded versions by percentage.",
    tag=TAG,
    body=NewDeployment,
    result=DEPLOYMENT,
)
def _post_deployment(
    request: ApiRequest, account_id: str, script_name: str, *, body: NewDeployment
):
    deployment = workers.create_deployment(
        account=request.cloud_account,
        script_name=script_name,
        versions=[
            workers.VersionShare(version_id=v.version_id, percentage=v.percentage)
            for v in body.versions
        ],
        annotations=body.annotations,
        now=timezone.now(),
        actor_label=_actor(request),
    )
    return envelope.success(worker_deployment_json(deployment))


def _script_settings(stored: dict[str, Any]) -> dict[str, Any]:
    return {**SCRIPT_SETTINGS_DEFAULTS, **stored}


class ScriptSettings(Input):
    """What ``wrangler deploy`` sends after an upload; kept and shown back."""

    observability = JSONObject(max_bytes=16 * 1024)
    tags = ListOf(Text(blank=True, max_length=100), max_items=100)
    logpush = Boolean()
    tail_consumers = ListOf(JSONObject(max_bytes=4096), max_items=100)


SCRIPT_SETTINGS = obj(
    observability={"type": "object"},
    tags={"type": "array", "items": STRING},
    logpush=BOOLEAN,
    tail_consumers={"type": "array", "items": {"type": "object"}},
)


@operation(
    "Observability, tags, logpush, tail consumers.",
    tag=TAG,
    result=SCRIPT_SETTINGS,
)
def _get_script_settings(request: ApiRequest, account_id: str, script_name: str):
    script = _script(request, script_name)
    return envelope.success(_script_settings(script.script_settings))


@operation(
    "Change observability, tags, logpush, tail consumers (those sent).",
    tag=TAG,
    body=ScriptSettings,
    result=SCRIPT_SETTINGS,
)
def _patch_script_settings(
    request: ApiRequest, account_id: str, script_name: str, *, body: ScriptSettings
):
    updated = workers.update_script_settings(
        account=request.cloud_account,
        script_name=script_name,
        **body.values(),
        now=timezone.now(),
    )
    return envelope.success(_script_settings(updated))


@operation(
    "The script settings with the current version's compatibility, placement, "
    "limits and resolved bindings (secrets by name only).",
    tag=TAG,
    result={"type": "object"},
)
def _get_settings(request: ApiRequest, account_id: str, script_name: str):
    script = _script(request, script_name)
    version = script.current_version
    metadata = version.metadata if version else {}
    return envelope.success(
        {
            **_script_settings(script.script_settings),
            "bindings": workers.settings_bindings(script=script),
            "compatibility_date": version.compatibility_date if version else None,
            "compatibility_flags": version.compatibility_flags if version else [],
            "placement": metadata.get("placement") or {},
            "limits": metadata.get("limits") or {},
            "usage_model": "standard",
        }
    )


@operation("Workers that bind to this one.", tag=TAG, result={"type": "object"})
def _get_references(request: ApiRequest, account_id: str, script_name: str):
    return envelope.success(workers.references(script=_script(request, script_name)))


# --- secrets -----------------------------------------------------------------------


def _secret_json(secret) -> dict[str, str]:
    return {"name": secret.name, "type": secret.type}


SECRET = obj(name=STRING, type=STRING)


def _secret_patch(**kwargs: Any) -> MapOf:
    return MapOf(
        Nested(SecretBinding),
        nullable=True,
        description="Secret name: its new value, or null to delete it.",
        **kwargs,
    )


def _secret_changes(
    patch: dict[str, SecretBinding | None],
) -> dict[str, workers.NewSecret | None]:
    return {
        name: None if binding is None else binding.new_secret()
        for name, binding in patch.items()
    }


@operation(
    "Secret names and types (values are write-only).",
    tag=TAG,
    result=SECRET,
    listing=True,
)
def _list_secrets(request: ApiRequest, account_id: str, script_name: str):
    script = _script(request, script_name)
    return envelope.success([_secret_json(s) for s in script.secrets.all()])


@operation(
    "Create or replace a secret, in a new version deployed at once.",
    tag=TAG,
    body=NamedSecret,
    result=SECRET,
)
def _put_secret(
    request: ApiRequest, account_id: str, script_name: str, *, body: NamedSecret
):
    _change_secrets(request, script_name, {body.name: body.new_secret()})
    return envelope.success({"name": body.name, "type": body.type})


def _change_secrets(
    request: ApiRequest,
    script_name: str,
    secrets: dict[str, workers.NewSecret | None],
):
    return workers.change_secrets(
        account=request.cloud_account,
        script_name=script_name,
        secrets=secrets,
        now=timezone.now(),
        actor_label=_actor(request),
    )


@operation("A secret's name and type.", tag=TAG, result=SECRET)
def _get_secret(request: ApiRequest, account_id: str, script_name: str, name: str):
    secret = _script(request, script_name).secrets.filter(name=name).first()
    if secret is None:
        raise NotFound(f"This Worker has no secret named {name[:100]!r}.", code=10056)
    return envelope.success(_secret_json(secret))


@operation("Delete a secret, in a new version deployed at once.", tag=TAG)
def _delete_secret(request: ApiRequest, account_id: str, script_name: str, name: str):
    _change_secrets(request, script_name, {name: None})
    return envelope.success({})


class BulkSecrets(Input):
    secrets = _secret_patch(required=True)


@operation(
    "Create, replace and delete secrets (a JSON merge patch: null deletes) in "
    "a new version, deployed at once (``wrangler secret bulk``).",
    tag=TAG,
    body=BulkSecrets,
    result=VERSION,
)
def _bulk_secrets(
    request: ApiRequest, account_id: str, script_name: str, *, body: BulkSecrets
):
    version = _change_secrets(request, script_name, _secret_changes(body.secrets))
    return envelope.success(worker_version_json(version))


class VersionAnnotations(Input):
    unknown = "ignore"  # Cloudflare's own annotations, which we do not keep
    message = Text(key="workers/message", blank=True, max_length=1000)
    tag = Text(key="workers/tag", blank=True, max_length=1000)


class LatestVersionPatch(Input):
    env = _secret_patch(default={})
    annotations = Nested(VersionAnnotations)


@operation(
    "A new version of the newest one with the secrets in 'env' changed "
    "(null deletes); not deployed (``wrangler versions secret``).",
    tag=TAG,
    body=LatestVersionPatch,
    result=VERSION,
)
def _patch_latest_version(
    request: ApiRequest,
    account_id: str,
    script_name: str,
    *,
    body: LatestVersionPatch,
):
    annotations = body.annotations
    version = workers.patch_latest_version(
        account=request.cloud_account,
        script_name=script_name,
        secrets=_secret_changes(body.env),
        message=annotations.message if annotations else None,
        tag=annotations.tag if annotations else None,
        now=timezone.now(),
        actor_label=_actor(request),
    )
    return envelope.success(worker_version_json(version))


# --- live logs (wrangler tail) -------------------------------------------------------


def _tail_json(tail, url: str | None = None) -> dict[str, Any]:
    result = {"id": str(tail.pk), "expires_at": iso(tail.expires_at)}
    return {**result, "url": url} if url else result


class HeaderFilter(Input):
    key = Text(required=True, max_length=256, description="The header's name.")
    query = Text(blank=True, max_length=1024, description="Text its value holds.")


class TailFilter(Input):
    """One filter (exactly one key), as ``wrangler tail``'s options make them."""

    sampling_rate = Number(maximum=1, description="More than 0, at most 1.")
    outcome = ListOf(
        Text(choices=tuple(sorted(tail_service.OUTCOMES))), min_items=1, max_items=100
    )
    method = ListOf(Text(max_length=256), min_items=1, max_items=100)
    client_ip = ListOf(
        Text(max_length=256), min_items=1, max_items=100, description="Or 'self'."
    )
    query = Text(max_length=1024, description="Text in a log line or exception.")
    script_version = Text(key="scriptVersion", max_length=1024)
    header = Nested(HeaderFilter)

    def as_filter(self) -> tail_service.TailFilter:
        values = self.values()
        header = values.pop("header")
        return tail_service.TailFilter(
            **values,
            header=header.key if header else None,
            header_query=(header.query or None) if header else None,
        )


class NewTail(Input):
    filters = ListOf(Nested(TailFilter), max_items=20, default=[])


TAIL = obj(id=STRING, url=STRING, expires_at=TIMESTAMP)


@operation(
    "Start a tail: its WebSocket URL (trace-v1) and expiry.",
    tag=TAG,
    body=NewTail,
    body_required=False,
    result=TAIL,
)
def _create_tail(
    request: ApiRequest, account_id: str, script_name: str, *, body: NewTail
):
    created = tail_service.create_tail(
        account=request.cloud_account,
        script_name=script_name,
        filters=[entry.as_filter() for entry in body.filters],
        client_ip=client_address(request),
        now=timezone.now(),
    )
    return envelope.success(_tail_json(created.tail, created.url))


@operation(
    "Open tails (live-log sessions) of the Worker.",
    tag=TAG,
    result=obj(id=STRING, expires_at=TIMESTAMP),
    listing=True,
)
def _list_tails(request: ApiRequest, account_id: str, script_name: str):
    found = tail_service.list_tails(
        account=request.cloud_account, script_name=script_name, now=timezone.now()
    )
    return envelope.success([_tail_json(t) for t in found])


@operation("Stop a tail.", tag=TAG, result={"type": "null"})
def _delete_tail(request: ApiRequest, account_id: str, script_name: str, tail_id: str):
    tail_service.delete_tail(
        account=request.cloud_account, script_name=script_name, tail_id=tail_id
    )
    return envelope.success(None)


# --- triggers and the workers.dev-style preview host ------------------------------


class Schedule(Input):
    cron = Text(required=True, max_length=100, description="Five cron fields.")


SCHEDULES_RESULT = {
    "type": "object",
    "properties": {"schedules": {"type": "array", "items": {"type": "object"}}},
}


@operation("The Worker's cron triggers.", tag=TAG, result=SCHEDULES_RESULT)
def _get_schedules(request: ApiRequest, account_id: str, script_name: str):
    schedules = _script(request, script_name).cron_schedules
    return envelope.success({"schedules": schedules})


@operation(
    "Replace the Worker's cron triggers (10074 past the limit).",
    tag=TAG,
    body=ListOf(Nested(Schedule), max_items=1000),
    result=SCHEDULES_RESULT,
)
def _put_schedules(
    request: ApiRequest, account_id: str, script_name: str, *, body: list[Schedule]
):
    schedules = workers.set_schedules(
        account=request.cloud_account,
        script_name=script_name,
        crons=[entry.cron for entry in body],
        now=timezone.now(),
    )
    return envelope.success({"schedules": schedules})


def _workers_dev_json(script) -> dict[str, bool]:
    return {
        "enabled": script.workers_dev_enabled,
        "previews_enabled": script.previews_enabled,
    }


class WorkersDev(Input):
    enabled = Boolean(required=True)
    previews_enabled = Boolean(description="Follows enabled when left out.")


WORKERS_DEV = {
    "type": "object",
    "properties": {
        "enabled": {"type": "boolean"},
        "previews_enabled": {"type": "boolean"},
    },
}


@operation("Whether the Worker's preview host is on.", tag=TAG, result=WORKERS_DEV)
def _get_script_subdomain(request: ApiRequest, account_id: str, script_name: str):
    return envelope.success(_workers_dev_json(_script(request, script_name)))


@operation(
    "Turn the Worker's preview host on or off.",
    tag=TAG,
    body=WorkersDev,
    result=WORKERS_DEV,
)
def _set_script_subdomain(
    request: ApiRequest, account_id: str, script_name: str, *, body: WorkersDev
):
    script = workers.set_workers_dev(
        account=request.cloud_account,
        script_name=script_name,
        enabled=body.enabled,
        previews=body.previews_enabled,
    )
    return envelope.success(_workers_dev_json(script))


@operation(
    "A Worker's preview host: subdomain.url.",
    tag=TAG,
    result=obj(
        id=STRING,
        name=STRING,
        subdomain=obj(enabled=BOOLEAN, previews_enabled=BOOLEAN, url=STRING),
    ),
)
def _get_worker(request: ApiRequest, account_id: str, script_name: str):
    """wrangler prints the hostname of ``subdomain.url`` instead of a
    workers.dev URL, so it shows the real preview host (spec 4.12)."""
    script = _script(request, script_name)
    url = preview_url(
        script_name=script.name, subdomain=request.cloud_account.subdomain
    )
    return envelope.success(
        {
            "id": script.name,
            "name": script.name,
            "subdomain": {**_workers_dev_json(script), "url": url},
            "created_on": worker_script_json(script)["created_on"],
            "updated_on": worker_script_json(script)["modified_on"],
        }
    )


class Subdomain(Input):
    subdomain = Text(required=True, max_length=63)


SUBDOMAIN = {"type": "object", "properties": {"subdomain": {"type": "string"}}}


@operation("The account's subdomain of the preview domain.", tag=TAG, result=SUBDOMAIN)
def _get_account_subdomain(request: ApiRequest, account_id: str):
    return envelope.success({"subdomain": request.cloud_account.subdomain})


@operation(
    "Move the account to another subdomain (10031 when taken).",
    tag=TAG,
    body=Subdomain,
    result=SUBDOMAIN,
)
def _put_account_subdomain(request: ApiRequest, account_id: str, *, body: Subdomain):
    account = workers.change_subdomain(
        account=request.cloud_account, subdomain=body.subdomain, now=timezone.now()
    )
    return envelope.success({"subdomain": account.subdomain})


@operation(
    "Availability: 404 code 10032 = available, 409 code 10031 = taken.",
    tag=TAG,
    result=SUBDOMAIN,
    errors={
        "404": "Code 10032: the subdomain is available.",
        "409": "Code 10031: the subdomain is taken or not valid.",
    },
)
def _subdomain_availability(request: ApiRequest, account_id: str, name: str):
    if name == request.cloud_account.subdomain:
        return envelope.success({"subdomain": name})
    if workers.subdomain_is_available(name=name):
        # wrangler reads this 404 as "available" (spec 4.6).
        return envelope.failure(
            code=10032,
            message="The subdomain is available.",
            status=HTTPStatus.NOT_FOUND,
        )
    raise Conflict("The subdomain is taken or not valid.", code=10031)


@operation(
    "Workers that send traces to this one.",
    tag=TAG,
    result=obj(service=STRING),
    listing=True,
)
def _tail_producers(request: ApiRequest, account_id: str, script_name: str):
    names = workers.tail_producers(account=request.cloud_account, consumer=script_name)
    return envelope.success([{"service": name} for name in names])


@operation(
    "Durable Object namespaces made by migrations.",
    tag=TAG,
    query=Paging,
    result={"type": "object"},
    listing=True,
)
def _durable_object_namespaces(request: ApiRequest, account_id: str, *, query: Paging):
    return paged_response(
        workers.durable_object_namespaces(account=request.cloud_account),
        query.page(),
        durable_object_namespace_json,
    )


scripts = endpoint()({"GET": _list_scripts})
service = endpoint()({"GET": _get_service, "DELETE": _delete_service})
script = endpoint()(
    {"GET": _get_script_content, "PUT": _put_script, "DELETE": _delete_service}
)
versions = endpoint()({"GET": _list_versions, "POST": _post_version})
version = endpoint()({"GET": _get_version})
deployments = endpoint()({"GET": _list_deployments, "POST": _post_deployment})
script_settings = endpoint()(
    {"GET": _get_script_settings, "PATCH": _patch_script_settings}
)
script_settings_all = endpoint()({"GET": _get_settings})
references = endpoint()({"GET": _get_references})
secrets = endpoint()({"GET": _list_secrets, "PUT": _put_secret})
secret = endpoint()({"GET": _get_secret, "DELETE": _delete_secret})
secrets_bulk = endpoint()({"PATCH": _bulk_secrets})
latest_version = endpoint()({"PATCH": _patch_latest_version})
tails = endpoint()({"GET": _list_tails, "POST": _create_tail})
tail = endpoint()({"DELETE": _delete_tail})
schedules = endpoint()({"GET": _get_schedules, "PUT": _put_schedules})
script_subdomain = endpoint()(
    {"GET": _get_script_subdomain, "POST": _set_script_subdomain}
)
worker = endpoint()({"GET": _get_worker})
account_subdomain = endpoint()(
    {"GET": _get_account_subdomain, "PUT": _put_account_subdomain}
)
subdomain_availability = endpoint()({"GET": _subdomain_availability})
tail_producers = endpoint()({"GET": _tail_producers})
durable_object_namespaces = endpoint()({"GET": _durable_object_namespaces})
