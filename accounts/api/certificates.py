"""mTLS certificate endpoints (``wrangler cert upload|list|delete``). The
private key goes in, never out."""

from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone

from accounts.exceptions import InvalidInput
from accounts.services import certificates

from . import envelope
from .inputs import Boolean, Input, Query, Schema, Text
from .kit import ApiRequest, endpoint, operation
from .openapi import ref
from .serializers import certificate_json

TAG = "certificates"
CERTIFICATE = ref("Certificate")


class PemText(Text):
    """PEM text. wrangler sends a file's contents as a Node Buffer, which JSON
    turns into ``{"type": "Buffer", "data": [bytes]}``; plain strings work too."""

    def clean(self, value: Any, *, path: str, text: bool = False) -> str:
        if isinstance(value, dict) and value.get("type") == "Buffer":
            data = value.get("data")
            if not isinstance(data, list) or not all(
                isinstance(b, int) and 0 <= b < 256 for b in data
            ):
                raise InvalidInput(f"'{path}' is not a valid byte buffer.")
            try:
                value = bytes(data).decode("ascii")
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"'{path}' must be PEM text.") from exc
        return super().clean(value, path=path, text=text)

    def schema(self) -> Schema:
        buffer = {
            "type": "object",
            "required": ["type", "data"],
            "properties": {
                "type": {"const": "Buffer"},
                "data": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 0, "maximum": 255},
                },
            },
        }
        return {"anyOf": [super().schema(), buffer]}

    def example(self) -> str:
        return "-----BEGIN CERTIFICATE-----"


def _pem_limit() -> int:
    return settings.CLAIMPORTAL_CERTIFICATE_MAX_BYTES


class Upload(Input):
    """A CA chain (``ca``), or an mTLS certificate with its private key."""

    certificates = PemText(
        required=True, max_length=_pem_limit, description="PEM chain."
    )
    private_key = PemText(
        max_length=_pem_limit,
        description="PEM key of an mTLS certificate; write-only.",
    )
    ca = Boolean(default=False)
    name = Text(max_length=255, blank=True, default="")


class Filter(Query):
    ca = Boolean(description="Only CAs (true) or only mTLS certificates (false).")
    name = Text(max_length=255, blank=True, default="")


@operation(
    "List certificates.", tag=TAG, query=Filter, result=CERTIFICATE, listing=True
)
def _list(request: ApiRequest, account_id: str, *, query: Filter) -> HttpResponse:
    rows = certificates.list_certificates(
        account=request.cloud_account, ca=query.ca, name=query.name
    )
    return envelope.success([certificate_json(c) for c in rows])


@operation(
    "Upload a certificate (the key is never shown back).",
    tag=TAG,
    body=Upload,
    result=CERTIFICATE,
)
def _upload(request: ApiRequest, account_id: str, *, body: Upload) -> HttpResponse:
    certificate = certificates.upload_certificate(
        account=request.cloud_account, now=timezone.now(), **body.values()
    )
    return envelope.success(certificate_json(certificate))


@operation("Get a certificate.", tag=TAG, result=CERTIFICATE)
def _get(request: ApiRequest, account_id: str, certificate_id: str) -> HttpResponse:
    certificate = certificates.get_certificate(
        account=request.cloud_account, certificate_id=certificate_id
    )
    return envelope.success(certificate_json(certificate))


@operation(
    "Delete a certificate no Hyperdrive config or Worker uses.",
    tag=TAG,
    result={"type": "object", "properties": {"id": {"type": "string"}}},
)
def _delete(request: ApiRequest, account_id: str, certificate_id: str) -> HttpResponse:
    certificates.delete_certificate(
        account=request.cloud_account, certificate_id=certificate_id
    )
    return envelope.success({"id": certificate_id})


collection = endpoint()({"GET": _list, "POST": _upload})
certificate = endpoint()({"GET": _get, "DELETE": _delete})
