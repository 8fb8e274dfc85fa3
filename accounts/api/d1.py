"""D1 endpoints (spec 4.17): databases, SQL over ``/query`` and ``/raw``, and the
import and export flows of ``wrangler d1 execute --file`` and ``d1 export``."""

import secrets

from django.http import FileResponse, HttpResponse
from django.urls import reverse
from django.utils import timezone

from accounts.exceptions import InvalidInput
from accounts.models import D1Database
from accounts.services import d1

from . import envelope
from .inputs import Boolean, Input, Integer, ListOf, Nested, Text
from .kit import ApiRequest, endpoint, operation
from .openapi import ref
from .paging import Paging, paged_response
from .serializers import d1_database_json
from .wire import Queries

TAG = "d1"
DATABASE = ref("D1Database")
TRANSFER = ref("D1Transfer")


class Listing(Paging):
    name = Text(blank=True, max_length=255, default="", description="Only this one.")
    per_page = Integer(minimum=1, maximum=10_000)


class NewDatabase(Input):
    name = Text(required=True, max_length=255)
    jurisdiction = Text(blank=True, max_length=32, description="Refused if given.")
    primary_location_hint = Text(blank=True, max_length=32, description="Refused.")


class Import(Input):
    """One step of an import: init (get an upload URL), ingest, poll."""

    action = Text(required=True, choices=("init", "ingest", "poll"))
    etag = Text(blank=True, max_length=32, default="", description="MD5, hex.")
    filename = Text(blank=True, max_length=255)
    current_bookmark = Text(blank=True, max_length=255)


class DumpOptions(Input):
    no_schema = Boolean(default=False)
    no_data = Boolean(default=False)
    tables = ListOf(Text(max_length=255), max_items=1000, default=[])


class Export(Input):
    output_format = Text(blank=True, max_length=32)
    dump_options = Nested(DumpOptions)
    current_bookmark = Text(blank=True, max_length=255)


@operation(
    "List databases (a page past the end is empty).",
    tag=TAG,
    query=Listing,
    result=DATABASE,
    listing=True,
)
def _list(request: ApiRequest, account_id: str, *, query: Listing) -> HttpResponse:
    rows = d1.list_databases(account=request.cloud_account, name=query.name)
    return paged_response(rows, query.page(default_size=1000), d1_database_json)


@operation(
    "Create a database (7502 when the name is taken, 7406 at the limit).",
    tag=TAG,
    body=NewDatabase,
    result=DATABASE,
)
def _create(request: ApiRequest, account_id: str, *, body: NewDatabase) -> HttpResponse:
    if body.jurisdiction or body.primary_location_hint:
        raise InvalidInput(
            "Temporary accounts have one location: leave out 'jurisdiction' and "
            "the location hint."
        )
    database = d1.create_database(
        account=request.cloud_account, name=body.name, now=timezone.now()
    )
    return envelope.success(d1_database_json(database))


def _database(request: ApiRequest, database_id: str) -> D1Database:
    return d1.get_database(account=request.cloud_account, id_or_name=database_id)


@operation(
    "One database, by uuid or name (7404 when missing).", tag=TAG, result=DATABASE
)
def _get(request: ApiRequest, account_id: str, database_id: str) -> HttpResponse:
    return envelope.success(d1_database_json(_database(request, database_id)))


@operation("Delete a database and its file.", tag=TAG)
def _delete(request: ApiRequest, account_id: str, database_id: str) -> HttpResponse:
    d1.delete_database(account=request.cloud_account, id_or_name=database_id)
    return envelope.success(None)


@operation(
    "Run SQL as one transaction; rows as objects, one result per statement "
    "(7500 with SQLite's message on failure).",
    tag=TAG,
    body=Queries(),
    result=ref("D1Result"),
    listing=True,
)
def _query(
    request: ApiRequest, account_id: str, database_id: str, *, body: list[d1.Query]
) -> HttpResponse:
    database = _database(request, database_id)
    results = d1.run_queries(database=database, queries=body)
    return envelope.success([result.as_objects() for result in results])


@operation(
    "Run SQL as one transaction; rows as arrays with the column names.",
    tag=TAG,
    body=Queries(),
    result=ref("D1Result"),
    listing=True,
)
def _raw(
    request: ApiRequest, account_id: str, database_id: str, *, body: list[d1.Query]
) -> HttpResponse:
    database = _database(request, database_id)
    results = d1.run_queries(database=database, queries=body)
    return envelope.success([result.as_raw() for result in results])


@operation(
    "Import a SQL file: init (get upload_url), PUT the file, ingest.",
    tag=TAG,
    body=Import,
    result=TRANSFER,
)
def _import(
    request: ApiRequest, account_id: str, database_id: str, *, body: Import
) -> HttpResponse:
    """init -> (PUT the file to upload_url) -> ingest; the file runs at ingest, as
    one transaction, so no poll is ever needed."""
    database = _database(request, database_id)
    action, etag = body.action, body.etag
    if action == "init":
        if len(etag) != 32:
            raise InvalidInput("'etag' must be the MD5 of the file, in hex.")
        token = d1.sign_link(
            database=database, purpose="import", now=timezone.now(), etag=etag
        )
        url = _link(request, "api-d1-import-upload", database, token)
        return envelope.success({"upload_url": url, "filename": f"{etag}.sql"})
    bookmark = secrets.token_hex(8)
    if action == "ingest":
        try:
            results = d1.ingest_import(database=database, etag=etag)
        except d1.QueryError as error:
            return envelope.success(_import_status("error", bookmark, [error.message]))
        status = _import_status("complete", bookmark, [])
        status["messages"] = [f"Processed {len(results)} queries."]
        status["result"] = {
            "num_queries": len(results),
            "final_bookmark": bookmark,
            "meta": d1.summarize(results),
        }
        return envelope.success(status)
    if action == "poll":
        return envelope.success(
            _import_status(
                "error", bookmark, ["No import is running: ingest it again."]
            )
        )
    raise AssertionError(action)  # the declared choices are all answered above


def _import_status(status: str, bookmark: str, errors: list[str]) -> dict:
    return {
        "success": True,
        "status": status,
        "at_bookmark": bookmark,
        "messages": [],
        "errors": errors,
        "type": "import",
    }


def _link(request: ApiRequest, view: str, database: D1Database, token: str) -> str:
    """An absolute URL on the origin wrangler called, for its unauthenticated leg."""
    kwargs = {
        "account_id": database.account_id,
        "database_id": database.uuid,
        "token": token,
    }
    return request.build_absolute_uri(reverse(view, kwargs=kwargs))


def _opened(
    token: str, purpose: str, account_id: str, database_id: str
) -> tuple[D1Database, dict]:
    """The database a signed link names, which must be the one in its URL. A
    download link works once."""
    database, claims = d1.open_link(
        token=token, purpose=purpose, single_use=purpose == "export"
    )
    if str(database.uuid) != database_id or database.account_id != account_id:
        raise InvalidInput("This link belongs to another database.")
    return database, claims


def _hide_token(request: ApiRequest) -> None:
    """From here on, a log line about this request (a 4xx is logged with its
    path) shows the link without its token."""
    request.path = request.path_info = request.path.rsplit("/", 1)[0] + "/<token>"


@operation(
    "The SQL file's bytes; the signed URL from init is the permission. "
    "Answers with the file's MD5 as ETag.",
    tag=TAG,
    raw_body={"application/octet-stream": {"schema": {"type": "string"}}},
)
def _upload(
    request: ApiRequest, account_id: str, database_id: str, token: str
) -> HttpResponse:
    """The unauthenticated PUT of the SQL file; the signed URL is the permission."""
    _hide_token(request)
    database, claims = _opened(token, "import", account_id, database_id)
    digest = d1.receive_import(
        database=database, etag=claims["etag"], data=request.body
    )
    response = envelope.success({})
    response["ETag"] = f'"{digest}"'
    return response


@operation(
    "Export as SQL: answers with a signed download URL.",
    tag=TAG,
    body=Export,
    body_required=False,
    result=TRANSFER,
)
def _export(
    request: ApiRequest, account_id: str, database_id: str, *, body: Export
) -> HttpResponse:
    database = _database(request, database_id)
    options = body.dump_options or DumpOptions.parse({})
    token = d1.sign_link(
        database=database,
        purpose="export",
        now=timezone.now(),
        tables=options.tables,
        no_schema=options.no_schema,
        no_data=options.no_data,
    )
    url = _link(request, "api-d1-export-download", database, token)
    bookmark = secrets.token_hex(8)
    return envelope.success(
        {
            "success": True,
            "status": "complete",
            "at_bookmark": bookmark,
            "messages": [],
            "error": None,
            "type": "export",
            "result": {
                "filename": f"{database.name}.sql",
                "signed_url": url,
            },
        }
    )


@operation(
    "The SQL dump (signed URL from export, valid for an hour).",
    tag=TAG,
    raw={"application/sql": {"schema": {"type": "string"}}},
)
def _download(
    request: ApiRequest, account_id: str, database_id: str, token: str
) -> FileResponse:
    _hide_token(request)
    database, claims = _opened(token, "export", account_id, database_id)
    dump = d1.export_file(
        database=database,
        tables=claims.get("tables") or None,
        no_schema=bool(claims.get("no_schema")),
        no_data=bool(claims.get("no_data")),
    )
    # Streamed from the file in blocks; the response closes it when done.
    return FileResponse(dump, content_type="application/sql; charset=utf-8")


databases = endpoint()({"GET": _list, "POST": _create})
database = endpoint()({"GET": _get, "DELETE": _delete})
query = endpoint()({"POST": _query})
raw = endpoint()({"POST": _raw})
import_sql = endpoint()({"POST": _import})
import_upload = endpoint(auth=False)({"PUT": _upload})
export_sql = endpoint()({"POST": _export})
export_download = endpoint(auth=False)({"GET": _download})
