"""mTLS certificate endpoints (``wrangler cert upload|list|delete``). The
private key goes in, never out."""

from django.http import HttpResponse
from django.utils import timezone

from accounts.services import certificates

from . import envelope
from .kit import ApiRequest, endpoint, json_object
from .serializers import certificate_json

FLAGS = {"true": True, "false": False}


def _list(request: ApiRequest, account_id: str) -> HttpResponse:
    rows = certificates.list_certificates(
        account=request.cloud_account,
        ca=FLAGS.get(request.GET.get("ca", "").lower()),
        name=request.GET.get("name", ""),
    )
    return envelope.success([certificate_json(c) for c in rows])


def _upload(request: ApiRequest, account_id: str) -> HttpResponse:
    certificate = certificates.upload_certificate(
        account=request.cloud_account, body=json_object(request), now=timezone.now()
    )
    return envelope.success(certificate_json(certificate))


def _get(request: ApiRequest, account_id: str, certificate_id: str) -> HttpResponse:
    certificate = certificates.get_certificate(
        account=request.cloud_account, certificate_id=certificate_id
    )
    return envelope.success(certificate_json(certificate))


def _delete(request: ApiRequest, account_id: str, certificate_id: str) -> HttpResponse:
    certificates.delete_certificate(
        account=request.cloud_account, certificate_id=certificate_id
    )
    return envelope.success({"id": certificate_id})


collection = endpoint()({"GET": _list, "POST": _upload})
certificate = endpoint()({"GET": _get, "DELETE": _delete})
