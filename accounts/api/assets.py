"""Static-asset uploads (spec 4.15): the session wrangler opens with the account
token, and the blob buckets it sends with the session's upload token."""

from http import HTTPStatus

from django.http import HttpRequest
from django.utils import timezone

from accounts.services import assets

from . import envelope
from .inputs import HEX_ID, Boolean, Input, Integer, MapOf, Nested, Query, Text
from .kit import ApiRequest, bearer_token, endpoint, multipart_parts, operation
from .openapi import STRING, obj

TAG = "workers"


class AssetFile(Input):
    hash = Text(required=True, pattern=HEX_ID, description="32 hex of BLAKE3.")
    size = Integer(required=True, description="Bytes.")


class UploadSession(Input):
    """The asset manifest of a deploy: each file's path, hash and size."""

    manifest = MapOf(
        Nested(AssetFile),
        required=True,
        # The service's limits (file count, path rules) answer with their own
        # codes: 413, and 10021 that wrangler prints.
        max_items=1_000_000,
        keys=Text(storable=False, blank=True, max_length=4096),
        description="'/'-rooted path: the file's hash and size.",
    )


@operation(
    "Announce an asset manifest; get the buckets still missing and a token.",
    tag=TAG,
    body=UploadSession,
    result=obj(jwt=STRING, buckets={"type": "array", "items": {"type": "array"}}),
)
def _open_session(
    request: ApiRequest, account_id: str, script_name: str, *, body: UploadSession
):
    opened = assets.open_upload_session(
        account=request.cloud_account,
        script_name=script_name,
        manifest={
            path: assets.AssetFile(hash=entry.hash, size=entry.size)
            for path, entry in body.manifest.items()
        },
        now=timezone.now(),
    )
    return envelope.success({"jwt": opened.token, "buckets": opened.buckets})


class BlobUpload(Query):
    base64 = Boolean(default=False, description="true: part bodies are base64.")


@operation(
    "Upload a bucket of asset blobs (parts named by hash) with the session's "
    "upload token as bearer; the completion token once every blob is in.",
    tag=TAG,
    query=BlobUpload,
    raw_body={"multipart/form-data": {"schema": {"type": "object"}}},
    result=obj(jwt=STRING),
    errors={"413": "Larger than the configured limits."},
    auth=True,  # the session's upload token, not an account token
)
def _upload(request: HttpRequest, account_id: str, *, query: BlobUpload):
    completion = assets.upload_blobs(
        account_id=account_id,
        upload_token=bearer_token(request),
        parts=multipart_parts(request),
        is_base64=query.base64,
        now=timezone.now(),
    )
    if completion is None:
        return envelope.success({}, status=HTTPStatus.ACCEPTED)
    return envelope.success({"jwt": completion}, status=HTTPStatus.CREATED)


upload_session = endpoint()({"POST": _open_session})
# Authenticated by the session's upload token, not by an account token.
upload = endpoint(auth=False)({"POST": _upload})
