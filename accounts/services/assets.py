"""Static assets: upload sessions, content-addressed blobs and their manifests.

wrangler announces a manifest (path -> hash and size), we answer with the hashes
we still lack, it uploads them in buckets with an upload token, and the request
that completes the set gets a completion token, which the script upload then
presents to attach the manifest to a Worker version (spec 4.15).

Tokens are random and opaque (wrangler ignores a payload it cannot decode) and
stored only as hashes. Blob bytes live in default storage under
``accounts/<account id>/assets/`` so that a purge finds them by prefix.
"""

import base64
import binascii
import hmac
import posixpath
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from blake3 import blake3
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from accounts import tokens
from accounts.exceptions import AuthenticationRequired, InvalidInput, PayloadTooLarge
from accounts.models import (
    AssetBlob,
    AssetUploadSession,
    CloudAccount,
    account_storage_prefix,
)
from accounts.services.locking import lock_live_account
from accounts.services.multipart import Part

ASSET_TOKEN_PREFIX = "cpa_"  # noqa: S105 (a label, not a secret)
BUCKET_MAX_FILES = 100
_HASH = re.compile(r"^[0-9a-f]{32}$")
ASSETS_CONFIG_CHOICES = {
    "html_handling": {
        "auto-trailing-slash",
        "force-trailing-slash",
        "drop-trailing-slash",
        "none",
    },
    "not_found_handling": {"single-page-application", "404-page", "none"},
}
MAX_ASSETS_CONFIG_TEXT = 100_000  # _headers, _redirects: Cloudflare caps the rules


class AssetsInvalid(InvalidInput):
    code = 10021  # wrangler prints the message of a script-upload validation error


@dataclass(frozen=True)
class AssetFile:
    """One file of a manifest: the hash of its content (32 hex) and its size."""

    hash: str
    size: int


@dataclass(frozen=True)
class OpenedSession:
    token: str  # the upload token, or the completion token if nothing is missing
    buckets: list[list[str]]


def storage_prefix(account_id: str) -> str:
    return f"{account_storage_prefix(account_id)}/assets/"


def asset_hash(data: bytes, *, path: str) -> str:
    """wrangler's hash: BLAKE3 of the base64 text and the extension, 32 hex."""
    extension = posixpath.splitext(path)[1][1:]
    text = base64.b64encode(data) + extension.encode()
    return blake3(text).hexdigest()[:32]


MAX_PATH_COMPONENT_BYTES = 255  # what Linux filesystems allow in one name


def _check_writable(manifest: dict[str, Any]) -> None:
    """Refuse a manifest whose files cannot all exist on one disk: the preview
    writes each asset as a file named by its path (on a filesystem that may
    ignore case)."""
    files = {path.casefold(): path for path in manifest}
    folders: dict[str, str] = {}
    for path in manifest:
        parts = path.split("/")[1:]
        if any(not part for part in parts):
            raise AssetsInvalid(f"Asset path {path[:200]!r} has an empty part.")
        for part in parts:
            if len(part.encode()) > MAX_PATH_COMPONENT_BYTES:
                raise AssetsInvalid(
                    f"Asset path {path[:200]!r} has a part longer than "
                    f"{MAX_PATH_COMPONENT_BYTES} bytes."
                )
        for depth in range(1, len(parts)):
            folder = "/" + "/".join(parts[:depth])
            folders.setdefault(folder.casefold(), folder)
    for key, folder in folders.items():
        if key in files:
            raise AssetsInvalid(
                f"Asset {files[key][:200]!r} is a file, and a folder of "
                f"{folder[:200]!r} as well."
            )
    if len(files) < len(manifest):
        seen: dict[str, str] = {}
        for path in manifest:
            if path.casefold() in seen:
                raise AssetsInvalid(
                    f"Asset paths {seen[path.casefold()][:200]!r} and "
                    f"{path[:200]!r} differ only by case."
                )
            seen[path.casefold()] = path


def clean_manifest(manifest: dict[str, AssetFile]) -> dict[str, dict[str, Any]]:
    """A manifest checked against the limits, as a session stores it.

    Raises AssetsInvalid and PayloadTooLarge.
    """
    if not manifest:
        raise AssetsInvalid(
            "'manifest' must be a non-empty object of path: {hash, size}."
        )
    if len(manifest) > settings.CLAIMPORTAL_MAX_ASSET_FILES:
        raise PayloadTooLarge(
            f"A Worker may have {settings.CLAIMPORTAL_MAX_ASSET_FILES} asset files; "
            f"this upload has {len(manifest)}."
        )
    total = 0
    clean = {}
    for path, entry in manifest.items():
        if not path.startswith("/"):
            raise AssetsInvalid(f"Asset path {path[:200]!r} must start with '/'.")
        if len(path) > 4096 or "\x00" in path:
            raise AssetsInvalid(
                f"Asset path {path[:200]!r} is longer than 4096 characters or "
                "holds a NUL character."
            )
        if {".", ".."} & set(path.split("/")):
            # A URL never asks for these, and the preview writes files by path.
            raise AssetsInvalid(f"Asset path {path[:200]!r} has '.' or '..' in it.")
        if not _HASH.match(entry.hash):
            raise AssetsInvalid(
                f"Asset {path!r} has no valid hash (32 hex characters)."
            )
        if entry.size < 0:
            raise AssetsInvalid(f"Asset {path!r} has no valid size.")
        if entry.size > settings.CLAIMPORTAL_MAX_ASSET_BYTES:
            raise PayloadTooLarge(
                f"Asset {path!r} is {entry.size} bytes; the limit is "
                f"{settings.CLAIMPORTAL_MAX_ASSET_BYTES} bytes per file."
            )
        total += entry.size
        clean[path] = {"hash": entry.hash, "size": entry.size}
    _check_writable(clean)
    if total > settings.CLAIMPORTAL_MAX_ASSETS_TOTAL_BYTES:
        raise PayloadTooLarge(
            f"The assets add up to {total} bytes; the limit is "
            f"{settings.CLAIMPORTAL_MAX_ASSETS_TOTAL_BYTES} bytes."
        )
    return clean


def clean_assets_config(config: Any) -> dict[str, Any]:
    """The assets ``config`` of a script upload (html_handling, _headers, ...)."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise AssetsInvalid("'assets.config' must be an object.")
    for key, allowed in ASSETS_CONFIG_CHOICES.items():
        if key in config and config[key] not in allowed:
            raise AssetsInvalid(
                f"'assets.config.{key}' must be one of {', '.join(sorted(allowed))}."
            )
    for key in ("_headers", "_redirects"):
        value = config.get(key)
        if value is not None and (
            not isinstance(value, str) or len(value) > MAX_ASSETS_CONFIG_TEXT
        ):
            raise AssetsInvalid(f"'assets.config.{key}' must be text of a sane size.")
    first = config.get("run_worker_first")
    if first is not None and not (
        isinstance(first, bool)
        or (isinstance(first, list) and all(isinstance(r, str) for r in first))
    ):
        raise AssetsInvalid("'assets.config.run_worker_first' must be a bool or rules.")
    return config


def _missing_hashes(*, account_id: str, hashes: set[str]) -> set[str]:
    present = AssetBlob.objects.filter(account_id=account_id, hash__in=hashes)
    return hashes - set(present.values_list("hash", flat=True))


def _buckets(manifest: dict[str, dict[str, Any]], missing: set[str]) -> list[list[str]]:
    """Missing hashes in upload batches that each fit in one request."""
    max_bytes = settings.CLAIMPORTAL_MAX_REQUEST_BYTES // 2  # base64 grows by 4/3
    buckets: list[list[str]] = []
    current: list[str] = []
    current_bytes = 0
    seen: set[str] = set()
    for entry in manifest.values():
        digest = entry["hash"]
        if digest not in missing or digest in seen:
            continue
        seen.add(digest)
        if current and (
            len(current) >= BUCKET_MAX_FILES
            or current_bytes + entry["size"] > max_bytes
        ):
            buckets.append(current)
            current, current_bytes = [], 0
        current.append(digest)
        current_bytes += entry["size"]
    if current:
        buckets.append(current)
    return buckets


def _new_token() -> str:
    return ASSET_TOKEN_PREFIX + secrets.token_urlsafe(32)


def _completion_token(upload_token: str) -> str:
    """Derived from the upload token, so every request that completes a session
    (parallel buckets, retries) hands out the same one without storing it."""
    mac = hmac.new(
        settings.SECRET_KEY.encode(),
        b"assets-complete:" + upload_token.encode(),
        "sha256",
    )
    return ASSET_TOKEN_PREFIX + base64.urlsafe_b64encode(mac.digest()).decode().rstrip(
        "="
    )


def open_upload_session(
    *,
    account: CloudAccount,
    script_name: str,
    manifest: dict[str, AssetFile],
    now: datetime,
) -> OpenedSession:
    """Start an upload: the buckets of hashes still missing, and a token.

    When nothing is missing the token is already the completion token, so
    wrangler goes straight to the script upload. Raises AssetsInvalid and
    PayloadTooLarge.
    """
    if not 0 < len(script_name) <= 63:
        raise AssetsInvalid("A Worker name has 1 to 63 characters.")
    clean = clean_manifest(manifest)
    upload_token = _new_token()
    completion_token = _completion_token(upload_token)
    with transaction.atomic():
        lock_live_account(account_id=account.pk, now=now)
        AssetUploadSession.objects.create(
            account=account,
            script_name=script_name,
            manifest=clean,
            upload_token_hash=tokens.hash_secret(upload_token),
            completion_token_hash=tokens.hash_secret(completion_token),
            created_at=now,
            expires_at=now + settings.CLAIMPORTAL_ASSET_UPLOAD_TTL,
        )
    hashes = {entry["hash"] for entry in clean.values()}
    missing = _missing_hashes(account_id=account.pk, hashes=hashes)
    if not missing:
        return OpenedSession(token=completion_token, buckets=[])
    return OpenedSession(token=upload_token, buckets=_buckets(clean, missing))


def end_upload_sessions(*, account: CloudAccount, by: datetime) -> int:
    """Asset uploads opened so far end by ``by`` at the latest, with their
    upload and completion tokens; how many were cut short."""
    return account.asset_upload_sessions.filter(expires_at__gt=by).update(expires_at=by)


def _session_for_upload(
    *, account_id: str, upload_token: str | None, now: datetime
) -> AssetUploadSession:
    session = (
        AssetUploadSession.objects.select_related("account")
        .filter(
            upload_token_hash=tokens.hash_secret(upload_token or ""),
            account_id=account_id,
            expires_at__gt=now,
        )
        .first()
    )
    if not upload_token or session is None or not session.account.is_live(now):
        raise AuthenticationRequired(
            "The asset upload token is not valid for this account, or it expired. "
            "Run the deploy again to start a new upload."
        )
    return session


def _decode(part: Part, *, is_base64: bool) -> bytes:
    if not is_base64:
        return part.data
    try:
        return base64.b64decode(part.data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AssetsInvalid(f"Asset {part.name} is not valid base64.") from exc


def upload_blobs(
    *,
    account_id: str,
    upload_token: str | None,
    parts: list[Part],
    is_base64: bool,
    now: datetime,
) -> str | None:
    """Store the uploaded blobs of a session; the completion token once the
    session has every blob, else None.

    Each part is named by its hash, which is checked against the bytes (spec
    8.8) and the manifest. Bytes are written before the rows, so a failure leaves
    at most an unreferenced file (the purge removes those), never a row without
    bytes. Raises AuthenticationRequired and AssetsInvalid.
    """
    session = _session_for_upload(
        account_id=account_id, upload_token=upload_token, now=now
    )
    path_of = {entry["hash"]: path for path, entry in session.manifest.items()}
    size_of = {entry["hash"]: entry["size"] for entry in session.manifest.values()}
    blobs: dict[str, tuple[bytes, str]] = {}
    for part in parts:
        if part.name not in path_of:
            raise AssetsInvalid(
                f"Asset {part.name[:64]!r} is not in this upload's manifest."
            )
        data = _decode(part, is_base64=is_base64)
        if len(data) != size_of[part.name]:
            raise AssetsInvalid(
                f"Asset {part.name} is {len(data)} bytes; the manifest said "
                f"{size_of[part.name]}."
            )
        if asset_hash(data, path=path_of[part.name]) != part.name:
            raise AssetsInvalid(f"Asset {part.name} does not match its hash.")
        blobs[part.name] = (data, part.content_type[:100])

    new = _missing_hashes(account_id=account_id, hashes=set(blobs))
    rows = [
        AssetBlob(
            account_id=account_id,
            hash=digest,
            size=len(blobs[digest][0]),
            content_type=blobs[digest][1],
            storage_name=default_storage.save(
                storage_prefix(account_id) + digest, ContentFile(blobs[digest][0])
            ),
            created_at=now,
        )
        for digest in sorted(new)
    ]
    with transaction.atomic():
        lock_live_account(account_id=account_id, now=now)
        AssetBlob.objects.bulk_create(rows, ignore_conflicts=True)
        # Serialise the completion check: of parallel buckets, the last to take
        # this lock sees every other bucket's committed rows.
        AssetUploadSession.objects.select_for_update().filter(pk=session.pk).first()
        missing = _missing_hashes(account_id=account_id, hashes=set(path_of))
    return None if missing else _completion_token(upload_token or "")


def completed_manifest(
    *, account: CloudAccount, completion_token: Any, now: datetime
) -> dict[str, dict[str, Any]]:
    """The manifest a completion token stands for, once every blob is stored.

    Raises AssetsInvalid for an unknown, expired or incomplete upload.
    """
    session = None
    if isinstance(completion_token, str) and completion_token:
        session = AssetUploadSession.objects.filter(
            account=account,
            completion_token_hash=tokens.hash_secret(completion_token),
            expires_at__gt=now,
        ).first()
    if session is None:
        raise AssetsInvalid(
            "The assets completion token is unknown or expired; run the deploy again."
        )
    hashes = {entry["hash"] for entry in session.manifest.values()}
    if _missing_hashes(account_id=account.pk, hashes=hashes):
        raise AssetsInvalid("The asset upload is not complete; run the deploy again.")
    return session.manifest


def read_blob(*, blob: AssetBlob) -> bytes:
    with default_storage.open(blob.storage_name, "rb") as handle:
        return handle.read()
