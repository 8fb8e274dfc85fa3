"""Hyperdrive configs: how a Worker reaches a database. The password is stored
for the runtime and never shown back; nothing here connects to the origin."""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from accounts.exceptions import Conflict, DomainError, InvalidInput, NotFound
from accounts.models import Certificate, CloudAccount, HyperdriveConfig
from accounts.services.inventory import changes_inventory
from accounts.services.locking import lock_live_account
from accounts.services.validation import clean_text, is_hex_id, whole_number

SCHEMES = {"postgres", "postgresql", "mysql"}
SSLMODES = {
    "postgres": {"require", "verify-ca", "verify-full"},
    "mysql": {"REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"},
}
ORIGIN_TEXT = {"host": 253, "database": 255, "user": 255}


class HyperdriveNotFound(NotFound):
    code = 2002
    message = "Hyperdrive config not found."


class TooManyConfigs(DomainError):
    code = 2003
    message = "This account has as many Hyperdrive configs as it may have."


def list_configs(*, account: CloudAccount) -> QuerySet[HyperdriveConfig]:
    return account.hyperdrive_configs.order_by("created_at", "name")


def get_config(*, account: CloudAccount, config_id: str) -> HyperdriveConfig:
    config = _configs(account, config_id).first()
    if config is None:
        raise HyperdriveNotFound()
    return config


def _configs(account: CloudAccount, config_id: str) -> QuerySet[HyperdriveConfig]:
    if not is_hex_id(config_id):
        return account.hyperdrive_configs.none()
    return account.hyperdrive_configs.filter(pk=config_id)


def _origin(raw: Any, *, current: dict[str, Any] | None) -> tuple[dict, str | None]:
    """The origin to store and the new password (None: keep the old one).

    ``current`` is the stored origin a partial update merges into; None asks for
    a complete origin.
    """
    if not isinstance(raw, dict):
        raise InvalidInput("'origin' must be an object.")
    unsupported = {"service_id", "access_client_id", "access_client_secret"} & set(raw)
    if unsupported:
        raise InvalidInput(
            "Temporary accounts connect Hyperdrive to a host and port only "
            f"(not {', '.join(sorted(unsupported))})."
        )
    merged = {**(current or {}), **{k: v for k, v in raw.items() if k != "password"}}
    origin: dict[str, Any] = {}
    scheme = merged.get("scheme")
    if scheme not in SCHEMES:
        raise InvalidInput("'origin.scheme' must be postgres, postgresql or mysql.")
    origin["scheme"] = scheme
    for key, limit in ORIGIN_TEXT.items():
        origin[key] = clean_text(
            merged.get(key), field=f"origin.{key}", max_length=limit
        )
    origin["port"] = whole_number(
        merged.get("port"), field="origin.port", minimum=1, maximum=65535
    )
    password = raw.get("password")
    if password is not None or current is None:
        password = clean_text(password, field="origin.password", max_length=1024)
    return origin, password


def _caching(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidInput("'caching' must be an object.")
    caching: dict[str, Any] = {}
    if raw.get("disabled") is not None:
        if not isinstance(raw["disabled"], bool):
            raise InvalidInput("'caching.disabled' must be true or false.")
        caching["disabled"] = raw["disabled"]
    for key in ("max_age", "stale_while_revalidate"):
        if raw.get(key) is not None:
            caching[key] = whole_number(raw[key], field=f"caching.{key}", maximum=3600)
    return caching


def _mtls(raw: Any, *, account: CloudAccount, scheme: str) -> dict[str, Any]:
    """Certificate ids must name this account's certificates of the right kind."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidInput("'mtls' must be an object.")
    mtls: dict[str, Any] = {}
    for key, kind in (
        ("ca_certificate_id", Certificate.Kind.CA),
        ("mtls_certificate_id", Certificate.Kind.MTLS),
    ):
        if raw.get(key) is None:
            continue
        cert_id = clean_text(raw[key], field=f"mtls.{key}", max_length=32)
        if not account.certificates.filter(pk=cert_id, kind=kind).exists():
            raise InvalidInput(
                f"'mtls.{key}' is not the id of a {kind.label} of this account "
                "(wrangler cert list shows them)."
            )
        mtls[key] = cert_id
    if raw.get("sslmode") is not None:
        family = "mysql" if scheme == "mysql" else "postgres"
        if raw["sslmode"] not in SSLMODES[family]:
            raise InvalidInput(
                f"'mtls.sslmode' must be one of {', '.join(sorted(SSLMODES[family]))}."
            )
        mtls["sslmode"] = raw["sslmode"]
    return mtls


def _limit(raw: Any) -> int | None:
    if raw is None:
        return None
    return whole_number(raw, field="origin_connection_limit", minimum=1, maximum=100)


@changes_inventory
def create_config(
    *, account: CloudAccount, body: dict[str, Any], now: datetime
) -> HyperdriveConfig:
    """Raises InvalidInput, Conflict (name taken), TooManyConfigs."""
    name = clean_text(body.get("name"), field="name", max_length=255)
    origin, password = _origin(body.get("origin"), current=None)
    config = HyperdriveConfig(
        account=account,
        name=name,
        origin=origin,
        password=password or "",
        caching=_caching(body.get("caching")),
        mtls=_mtls(body.get("mtls"), account=account, scheme=origin["scheme"]),
        origin_connection_limit=_limit(body.get("origin_connection_limit")),
        created_at=now,
        modified_at=now,
    )
    try:
        with transaction.atomic():
            lock_live_account(account_id=account.pk, now=now)
            limit = settings.CLAIMPORTAL_HYPERDRIVE_MAX_CONFIGS
            if account.hyperdrive_configs.count() >= limit:
                raise TooManyConfigs(
                    f"An account may have {limit} Hyperdrive configs; delete one first."
                )
            config.save()
    except IntegrityError as exc:
        raise Conflict(f"A Hyperdrive config named '{name}' already exists.") from exc
    return config


@changes_inventory
def update_config(
    *,
    account: CloudAccount,
    config_id: str,
    body: dict[str, Any],
    now: datetime,
    replace: bool = False,
) -> HyperdriveConfig:
    """PATCH changes what ``body`` names (an origin without a password keeps the
    old one); PUT (``replace``) needs a whole config. Raises HyperdriveNotFound,
    InvalidInput, Conflict."""
    with transaction.atomic():
        lock_live_account(account_id=account.pk, now=now)
        config = _configs(account, config_id).select_for_update().first()
        if config is None:
            raise HyperdriveNotFound()
        if replace or body.get("name") is not None:
            config.name = clean_text(body.get("name"), field="name", max_length=255)
        if replace or body.get("origin") is not None:
            config.origin, password = _origin(
                body.get("origin"), current=None if replace else config.origin
            )
            if password is not None:
                config.password = password
        if replace or body.get("caching") is not None:
            config.caching = _caching(body.get("caching"))
        if replace or body.get("mtls") is not None:
            config.mtls = _mtls(
                body.get("mtls"), account=account, scheme=config.origin["scheme"]
            )
        if replace or body.get("origin_connection_limit") is not None:
            config.origin_connection_limit = _limit(body.get("origin_connection_limit"))
        config.modified_at = now
        try:
            with transaction.atomic():
                config.save()
        except IntegrityError as exc:
            raise Conflict(
                f"A Hyperdrive config named '{config.name}' already exists."
            ) from exc
    return config


@changes_inventory
def delete_config(*, account: CloudAccount, config_id: str) -> None:
    with transaction.atomic():
        lock_live_account(account_id=account.pk)
        deleted, _ = _configs(account, config_id).delete()
    if not deleted:
        raise HyperdriveNotFound()
