"""Static-asset uploads (spec 4.15): the session wrangler opens with the account
token, and the blob buckets it sends with the session's upload token."""

from http import HTTPStatus

from django.http import HttpRequest
from django.utils import timezone

from accounts.services import assets

from . import envelope
from .kit import ApiRequest, bearer_token, endpoint, json_object
from .workers import multipart_parts


def _open_session(request: ApiRequest, account_id: str, script_name: str):
    opened = assets.open_upload_session(
        account=request.cloud_account,
        script_name=script_name,
        manifest=json_object(request).get("manifest"),
        now=timezone.now(),
    )
    return envelope.success({"jwt": opened.token, "buckets": opened.buckets})


def _upload(request: HttpRequest, account_id: str):
    completion = assets.upload_blobs(
        account_id=account_id,
        upload_token=bearer_token(request),
        parts=multipart_parts(request),
        is_base64=request.GET.get("base64") == "true",
        now=timezone.now(),
    )
    if completion is None:
        return envelope.success({}, status=HTTPStatus.ACCEPTED)
    return envelope.success({"jwt": completion}, status=HTTPStatus.CREATED)


upload_session = endpoint()({"POST": _open_session})
# Authenticated by the session's upload token, not by an account token.
upload = endpoint(auth=False)({"POST": _upload})
