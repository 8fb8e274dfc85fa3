"""D1 endpoints (spec 4.17): databases, SQL over ``/query`` and ``/raw``, and the
import and export flows of ``wrangler d1 execute --file`` and ``d1 export``."""

import secrets

from django.http import FileResponse, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from accounts.exceptions import InvalidInput
from accounts.models import D1Database
from accounts.services import d1
from accounts.services.validation import clean_text

from . import envelope
from .kit import endpoint, json_body, json_object
from .paging import page_request, paged_response
from .serializers import d1_database_json
from .wire import Queries


def _list(request: HttpRequest, account_id: str) -> HttpResponse:
    page = page_request(request, default_size=1000, max_size=10000)
    rows = d1.list_databases(
        account=request.cloud_account, name=request.GET.get("name", "")
    )
    return paged_response(rows, page, d1_database_json)


def _create(request: HttpRequest, account_id: str) -> HttpResponse:
    body = json_object(request)
    if body.get("jurisdiction") or body.get("primary_location_hint"):
        raise InvalidInput(
            "Temporary accounts have one location: leave out 'jurisdiction' and "
            "the location hint."
        )
    database = d1.create_database(
        account=request.cloud_account, name=body.get("name"), now=timezone.now()
    )
    return envelope.success(d1_database_json(database))


QUERIES = Queries()


def _database(request: HttpRequest, database_id: str) -> D1Database:
    return d1.get_database(account=request.cloud_account, id_or_name=database_id)


def _get(request: HttpRequest, account_id: str, database_id: str) -> HttpResponse:
    return envelope.success(d1_database_json(_database(request, database_id)))


def _delete(request: HttpRequest, account_id: str, database_id: str) -> HttpResponse:
    d1.delete_database(account=request.cloud_account, id_or_name=database_id)
    return envelope.success(None)


def _query(request: HttpRequest, account_id: str, database_id: str) -> HttpResponse:
    database = _database(request, database_id)
    results = d1.run_queries(
        database=database, queries=QUERIES.clean(json_body(request), path="")
    )
    return envelope.success([result.as_objects() for result in results])


def _raw(request: HttpRequest, account_id: str, database_id: str) -> HttpResponse:
    database = _database(request, database_id)
    results = d1.run_queries(
        database=database, queries=QUERIES.clean(json_body(request), path="")
    )
    return envelope.success([result.as_raw() for result in results])


def _import(request: HttpRequest, account_id: str, database_id: str) -> HttpResponse:
    """init -> (PUT the file to upload_url) -> ingest; the file runs at ingest, as
    one transaction, so no poll is ever needed."""
    database = _database(request, database_id)
    body = json_object(request)
    action = body.get("action")
    etag = clean_text(body.get("etag"), field="etag", max_length=32, required=False)
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
    raise InvalidInput("'action' must be one of init, ingest or poll.")


def _import_status(status: str, bookmark: str, errors: list[str]) -> dict:
    return {
        "success": True,
        "status": status,
        "at_bookmark": bookmark,
        "messages": [],
        "errors": errors,
        "type": "import",
    }


def _link(request: HttpRequest, view: str, database: D1Database, token: str) -> str:
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


def _hide_token(request: HttpRequest) -> None:
    """From here on, a log line about this request (a 4xx is logged with its
    path) shows the link without its token."""
    request.path = request.path_info = request.path.rsplit("/", 1)[0] + "/<token>"


def _upload(
    request: HttpRequest, account_id: str, database_id: str, token: str
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


def _export(request: HttpRequest, account_id: str, database_id: str) -> HttpResponse:
    database = _database(request, database_id)
    body = json_object(request, required=False)
    options = body.get("dump_options") or {}
    if not isinstance(options, dict):
        raise InvalidInput("'dump_options' must be an object.")
    tables = options.get("tables") or []
    if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables):
        raise InvalidInput("'dump_options.tables' must be a list of table names.")
    token = d1.sign_link(
        database=database,
        purpose="export",
        now=timezone.now(),
        tables=tables,
        no_schema=options.get("no_schema") is True,
        no_data=options.get("no_data") is True,
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


def _download(
    request: HttpRequest, account_id: str, database_id: str, token: str
) -> HttpResponse:
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
