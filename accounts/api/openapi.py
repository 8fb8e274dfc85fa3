"""The OpenAPI 3.1 description of client/v4, served at /client/v4/openapi.json.

The document is generated: it walks accounts/api/urls.py and describes each
handler from its ``kit.operation`` declaration (its body and query inputs, its
result, which reuses a shape from SCHEMAS). A handler not declared yet is
described by its entry in UNDECLARED, written by hand; tests/test_openapi.py
fails while a route is described by neither, and checks every declared body
against what the code accepts.
"""

import re
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from .inputs import INVALID_INPUT_CODE
from .kit import Operation, declared, endpoint

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: list[str] | None = None, **properties: Schema) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
TIMESTAMP: Schema = {"type": "string", "format": "date-time"}
HEX_ID: Schema = {"type": "string", "pattern": "^[0-9a-f]{32}$"}


def param(name: str, description: str, schema: Schema = STRING) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def query(name: str, description: str, schema: Schema = STRING) -> Schema:
    return {"name": name, "in": "query", "description": description, "schema": schema}


ACCOUNT_ID = param("account_id", "The account's 32-hex id.", HEX_ID)
NAMESPACE_ID = param("namespace_id", "The KV namespace's id.", HEX_ID)
KV_KEY = param("key", "The key, percent-encoded.")

ERROR_STATUSES = {
    "400": "Bad input (a JSON body is parsed whatever its Content-Type).",
    "401": "No token, an unknown one, or a revoked one (the message says why).",
    "404": "Not found; code 7003 for an account the token does not open.",
}


def operation(
    summary: str,
    *,
    tag: str,
    result: Schema | None = None,
    body: Schema | None = None,
    auth: bool = True,
    listing: bool = False,
    parameters: list[Schema] | None = None,
    errors: dict[str, str] | None = None,
    raw: Schema | None = None,
) -> Schema:
    """One operation answering in the v4 envelope around ``result`` (a list of
    them with ``listing``), or with ``raw`` content when it is not enveloped."""
    if raw is not None:
        success = {"description": "OK", "content": raw}
    else:
        result_schema = {"type": "array", "items": result} if listing else result
        envelope = {"allOf": [ref("Envelope"), obj(result=result_schema or {})]}
        success = {
            "description": "OK",
            "content": {"application/json": {"schema": envelope}},
        }
    failure = {"content": {"application/json": {"schema": ref("Envelope")}}}
    responses = {"200": success}
    for status, text in (errors or ERROR_STATUSES).items():
        responses[status] = {"description": text, **failure}
    op: Schema = {"summary": summary, "tags": [tag], "responses": responses}
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    if not auth:
        op["security"] = []
    return op


SCHEMAS: dict[str, Schema] = {
    "EventSubscription": obj(
        id=STRING,
        name=STRING,
        enabled=BOOLEAN,
        source=obj(["type"], type=STRING),
        destination=obj(["queue_id"], type=STRING, queue_id=STRING),
        events={"type": "array", "items": STRING},
        created_at=TIMESTAMP,
        modified_at=TIMESTAMP,
    ),
    "Error": obj(["code", "message"], code=INTEGER, message=STRING),
    "ResultInfo": obj(
        page=INTEGER,
        per_page=INTEGER,
        count=INTEGER,
        total_count=INTEGER,
        total_pages=INTEGER,
        cursor=STRING,
    ),
    "Envelope": obj(
        ["success", "errors", "messages", "result"],
        success=BOOLEAN,
        errors={"type": "array", "items": ref("Error")},
        messages={"type": "array", "items": {}},
        result={},
        result_info=ref("ResultInfo"),
    ),
    "Account": obj(
        ["id", "name", "type"],
        id=HEX_ID,
        name=STRING,
        type=STRING,
        created_on=TIMESTAMP,
        settings={"type": "object"},
    ),
    "Challenge": obj(
        ["challengeToken", "seed", "k", "g"],
        challengeToken=STRING,
        seed={**STRING, "description": "32 random bytes, base64url."},
        k={**INTEGER, "description": "Checkpoints (segments) to compute."},
        g={**INTEGER, "description": "Chained SHA-256 calls per segment."},
        expiresAt=TIMESTAMP,
    ),
    "PreviewRequest": obj(
        ["acceptTermsOfService", "challengeToken", "solution"],
        acceptTermsOfService={"const": "yes"},
        termsOfService={**STRING, "format": "uri"},
        privacyPolicy={**STRING, "format": "uri"},
        challengeToken=STRING,
        solution=obj(
            ["checkpoints"],
            checkpoints={
                **STRING,
                "description": "Standard base64 of the k+1 32-byte checkpoints.",
            },
        ),
        eventCode=STRING,
    ),
    "PreviewAccount": obj(
        ["account", "claim"],
        account=obj(
            ["id", "name", "apiToken", "expiresAt"],
            id=HEX_ID,
            name=STRING,
            type=STRING,
            apiToken={**STRING, "description": "Shown once; stored only hashed."},
            tokenId=STRING,
            expiresAt=TIMESTAMP,
        ),
        claim=obj(
            ["url", "expiresAt"], url={**STRING, "format": "uri"}, expiresAt=TIMESTAMP
        ),
        eventCodeAccepted={
            **BOOLEAN,
            "description": "Present, and true, when an event code was sent.",
        },
    ),
    "PreviewStatus": obj(
        ["id", "state", "expiresAt", "claim"],
        id=HEX_ID,
        name=STRING,
        state={"enum": ["pending", "claimed", "expired", "suspended"]},
        expiresAt=TIMESTAMP,
        claim=obj(
            ["expiresAt"],
            expiresAt=TIMESTAMP,
            claimedAt={"type": ["string", "null"], "format": "date-time"},
        ),
    ),
    "KVNamespace": obj(
        ["id", "title"],
        id=HEX_ID,
        title=STRING,
        supports_url_encoding=BOOLEAN,
    ),
    "KVKey": obj(["name"], name=STRING, expiration=INTEGER, metadata={}),
    "KVWrite": obj(
        ["key", "value"],
        key=STRING,
        value=STRING,
        base64=BOOLEAN,
        expiration=INTEGER,
        expiration_ttl=INTEGER,
        metadata={},
    ),
    "D1Database": obj(
        ["uuid", "name"],
        uuid={**STRING, "format": "uuid"},
        name=STRING,
        created_at=TIMESTAMP,
        version=STRING,
        num_tables=INTEGER,
        file_size=INTEGER,
    ),
    "D1Query": obj(
        ["sql"],
        sql={**STRING, "description": "One or more statements; one result each."},
        params={"type": "array", "description": "For a single statement."},
        batch={"type": "array", "items": obj(["sql"], sql=STRING, params={})},
    ),
    "D1Result": obj(
        ["results", "success", "meta"],
        results={
            "description": "Rows as objects (/query) or {columns, rows} (/raw).",
        },
        success=BOOLEAN,
        meta=obj(
            duration={"type": "number"},
            changes=INTEGER,
            last_row_id=INTEGER,
            rows_read=INTEGER,
            rows_written=INTEGER,
            size_after=INTEGER,
            changed_db=BOOLEAN,
        ),
    ),
    "D1Transfer": obj(
        ["success", "status"],
        success=BOOLEAN,
        status={"enum": ["complete", "error"]},
        at_bookmark=STRING,
        messages={"type": "array", "items": STRING},
        errors={"type": "array", "items": STRING},
        upload_url={**STRING, "description": "init: where to PUT the SQL file."},
        filename=STRING,
        result={
            "type": "object",
            "description": "Import: num_queries, final_bookmark, meta. "
            "Export: signed_url, filename.",
        },
    ),
    "Queue": obj(
        ["queue_id", "queue_name", "consumers"],
        queue_id=HEX_ID,
        queue_name=STRING,
        created_on=TIMESTAMP,
        modified_on=TIMESTAMP,
        settings={"type": "object"},
        producers={"type": "array", "items": obj(type=STRING, script=STRING)},
        producers_total_count=INTEGER,
        consumers={"type": "array", "items": ref("QueueConsumer")},
        consumers_total_count=INTEGER,
    ),
    "QueueConsumer": obj(
        ["consumer_id", "type"],
        consumer_id=HEX_ID,
        type={"enum": ["worker", "http_pull"]},
        script=STRING,
        script_name=STRING,
        queue_name=STRING,
        dead_letter_queue=STRING,
        settings=obj(
            batch_size=INTEGER,
            max_retries=INTEGER,
            max_wait_time_ms=INTEGER,
            max_concurrency=INTEGER,
            retry_delay=INTEGER,
            visibility_timeout_ms=INTEGER,
        ),
        created_on=TIMESTAMP,
    ),
    "QueueMessage": obj(
        ["body"],
        body={"description": "JSON value, text, or base64 for bytes and v8."},
        content_type={"enum": ["json", "text", "bytes", "v8"]},
        delay_seconds=INTEGER,
    ),
    "Hyperdrive": obj(
        ["id", "name", "origin"],
        id=HEX_ID,
        name=STRING,
        origin=obj(
            scheme={"enum": ["postgres", "postgresql", "mysql"]},
            host=STRING,
            port=INTEGER,
            database=STRING,
            user=STRING,
            password={
                **STRING,
                "writeOnly": True,
                "description": "Sent on create or update, never returned.",
            },
        ),
        caching=obj(disabled=BOOLEAN, max_age=INTEGER, stale_while_revalidate=INTEGER),
        mtls=obj(ca_certificate_id=HEX_ID, mtls_certificate_id=HEX_ID, sslmode=STRING),
        origin_connection_limit=INTEGER,
        created_on=TIMESTAMP,
        modified_on=TIMESTAMP,
    ),
    "Certificate": obj(
        ["id", "ca", "certificates"],
        id=HEX_ID,
        name=STRING,
        ca=BOOLEAN,
        certificates={**STRING, "description": "PEM chain."},
        private_key={
            **STRING,
            "writeOnly": True,
            "description": "PEM key of an mTLS certificate; never returned.",
        },
        issuer=STRING,
        serial_number=STRING,
        signature=STRING,
        expires_on=TIMESTAMP,
        uploaded_on=TIMESTAMP,
    ),
    "WorkerScript": obj(
        ["id", "tag", "etag"],
        id=STRING,
        tag=STRING,
        etag=STRING,
        migration_tag={"type": ["string", "null"]},
        deployment_id={**STRING, "description": "The new version's id (PUT only)."},
        compatibility_date=STRING,
        created_on=TIMESTAMP,
        modified_on=TIMESTAMP,
    ),
    "WorkerVersion": obj(
        ["id", "number", "resources"],
        id=STRING,
        number=INTEGER,
        metadata={"type": "object"},
        annotations={"type": "object"},
        resources=obj(
            ["script"],
            script=obj(["etag"], etag=STRING),
            bindings={"type": "array", "items": {"type": "object"}},
        ),
    ),
    "WorkerDeployment": obj(
        ["id", "versions"],
        id=STRING,
        created_on=TIMESTAMP,
        strategy=STRING,
        versions={
            "type": "array",
            "items": obj(version_id=STRING, percentage={"type": "number"}),
        },
        annotations={"type": "object"},
    ),
}

PROVISIONING_ERRORS = {
    "400": "Bad input: terms not accepted, malformed solution or event code (1035).",
    "403": "Credentials sent, origin blocked, forged challenge or wrong solution; "
    "event disabled (1039) or not started (1037).",
    "404": "Event code not found (1036).",
    "409": "Challenge already used; event has no accounts left (1040).",
    "410": "Challenge expired; event has ended (1038).",
    "429": "Rate limited; see Retry-After.",
    "503": "The event account could not be prepared (1041).",
}
SCRIPT_NAME = param("script_name", "The Worker's name.")
TAIL_ID = param("tail_id", "The tail's id.")
ACCOUNT_PATH = "/accounts/{account_id}"
DATABASE_ID = param("database_id", "The database's uuid, or its name.")
D1_TOKEN = param("token", "The signed token from the import or export call.")
QUEUE_ID = param("queue_id", "The queue's id.", HEX_ID)
CONSUMER_ID = param("consumer_id", "The consumer's id.", HEX_ID)
CONFIG_ID = param("config_id", "The Hyperdrive config's id.", HEX_ID)
CERTIFICATE_ID = param("certificate_id", "The certificate's id.", HEX_ID)
ALL_METHODS = ["get", "head", "post", "put", "patch", "delete"]


def not_offered(product: str, path: str, note: str = "") -> Schema:
    """A refusal of a product temporary accounts do not carry (code 10064)."""
    parameters = [ACCOUNT_ID]
    if "{rest}" in path:
        parameters.append(param("rest", f"Any {product} path."))
    return operation(
        f"Refused: {product} is not a product of temporary accounts (400, code "
        f"10064, the reason in the status line too).{note}",
        tag="not offered",
        parameters=parameters,
        errors={"400": f"Always: {product} is not available on temporary accounts."},
    )


R2 = ACCOUNT_PATH + "/r2/{rest}"
R2_REFUSED = operation(
    "Refused: R2 is not a product of temporary accounts (400, code 10042).",
    tag="r2",
    parameters=[ACCOUNT_ID, param("rest", "Any R2 path.")],
    errors={"400": "Always: R2 is not available on temporary accounts."},
)

UNDECLARED: dict[str, Schema] = {
    "/openapi.json": {
        "get": operation(
            "This document.",
            tag="meta",
            auth=False,
            errors={},
            raw={"application/json": {"schema": {"type": "object"}}},
        )
    },
    # R2 is not offered: every call is a 400 with code 10042 and the reason.
    R2: dict.fromkeys(["get", "head", "post", "put", "patch", "delete"], R2_REFUSED),
    **{
        ACCOUNT_PATH + path: dict.fromkeys(
            ALL_METHODS, not_offered(product, path, note)
        )
        for path, product, note in (
            ("/challenges/widgets", "Turnstile", ""),
            ("/challenges/widgets/{rest}", "Turnstile", ""),
            ("/containers", "Containers", ""),
            (
                "/containers/{rest}",
                "Containers",
                " GET containers/applications answers an empty list.",
            ),
            ("/cloudchamber/{rest}", "Containers", ""),
        )
    },
    ACCOUNT_PATH + "/event_notifications/r2/{rest}": dict.fromkeys(
        ["get", "head", "post", "put", "patch", "delete"], R2_REFUSED
    ),
}


PATH_PARAMETERS = {
    p["name"]: p
    for p in (
        ACCOUNT_ID,
        NAMESPACE_ID,
        KV_KEY,
        SCRIPT_NAME,
        TAIL_ID,
        DATABASE_ID,
        D1_TOKEN,
        QUEUE_ID,
        CONSUMER_ID,
        CONFIG_ID,
        CERTIFICATE_ID,
        param("subscription_id", "The event subscription's id.", HEX_ID),
        param("version_id", "A version's uuid."),
    )
}
BAD_INPUT = (
    f"Bad input: code {INVALID_INPUT_CODE}, the message names the field "
    "(a JSON body is parsed whatever its Content-Type)."
)


def describe(op: Operation, *, path: str, auth: bool) -> Schema:
    """The OpenAPI operation of one declared handler."""
    names = re.findall(r"\{(\w+)\}", path)
    parameters = [
        PATH_PARAMETERS.get(name) or param(name, f"The {name}.") for name in names
    ]
    if op.query is not None:
        parameters += list(op.query.query_parameters())
    described = operation(
        op.summary,
        tag=op.tag,
        result=op.result,
        listing=op.listing,
        raw=op.raw,
        auth=auth,
        parameters=parameters,
        errors={**ERROR_STATUSES, **op.errors},
    )
    if op.body is not None or op.query is not None or op.form is not None:
        bad = described["responses"].setdefault("400", {})
        if op.form is not None:  # its own code, and its own words for it
            bad.update({"x-error-codes": [op.form.error_code]})
        else:
            bad.update(
                {"description": BAD_INPUT, "x-error-codes": [INVALID_INPUT_CODE]}
            )
        bad.setdefault("content", {"application/json": {"schema": ref("Envelope")}})
    if op.body is not None:
        described["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": op.body.schema()}},
        }
    elif op.form is not None:
        described["requestBody"] = {"required": True, "content": op.form.content()}
    elif op.raw_body is not None:
        described["requestBody"] = {"required": True, "content": op.raw_body}
    return described


def _routes(patterns: list, prefix: str = "") -> list[tuple[str, Any]]:
    from django.urls import URLResolver

    found = []
    for entry in patterns:
        text = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found += _routes(entry.url_patterns, text)
        elif entry.name != "api-unknown":
            found.append((text, entry.callback))
    return found


def openapi_path(route: str) -> str:
    """``accounts/<str:account_id>/x`` (or a regex) -> ``/accounts/{account_id}/x``."""
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route)
    route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
    return "/" + route.lstrip("^").rstrip("$")


def paths() -> dict[str, Schema]:
    """Every route of client/v4, each method from its declaration (or, not
    declared yet, from UNDECLARED)."""
    from . import urls

    found: dict[str, Schema] = {}
    for route, view in _routes(urls.urlpatterns):
        path = openapi_path(route)
        item = found.setdefault(path, {})
        for method, handler in view.handlers.items():
            op = declared(handler)
            if op is not None:
                auth = getattr(view, "auth", True) if op.auth is None else op.auth
                item[method.lower()] = describe(op, path=path, auth=auth)
            elif method.lower() in UNDECLARED.get(path, {}):
                item[method.lower()] = UNDECLARED[path][method.lower()]
    return found


def document() -> Schema:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "claimportal client/v4",
            "version": "4",
            "description": (
                "The Cloudflare-v4-compatible API that wrangler --temporary and "
                "platform backends talk to. Every answer (but raw KV values and "
                "this document) is the v4 envelope."
            ),
        },
        "servers": [{"url": f"{settings.PUBLIC_BASE_URL}/client/v4"}],
        "security": [{"bearer": []}],
        "paths": paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _openapi(request: HttpRequest) -> HttpResponse:
    return JsonResponse(document())


openapi_json = endpoint(auth=False)({"GET": _openapi})
