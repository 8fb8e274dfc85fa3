"""Hyperdrive configs: how a Worker reaches a database. The password is stored
for the runtime and never shown back; nothing here connects to the origin."""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from accounts.exceptions import Conflict, DomainError, InvalidInput, NotFound
from accounts.models import Certificate, CloudAccount, HyperdriveConfig
from accounts.services.locking import lock_live_account
from accounts.services.validation import is_hex_id

SCHEMES = ("postgres", "postgresql", "mysql")
SSLMODES = {
    "postgres": {"require", "verify-ca", "verify-full"},
    "mysql": {"REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"},
}


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


def _mtls(
    mtls: dict[str, str], *, account: CloudAccount, scheme: str
) -> dict[str, str]:
    """Certificate ids must name this account's certificates of the right kind,
    and the sslmode must be one of the scheme's."""
    for key, kind in (
        ("ca_certificate_id", Certificate.Kind.CA),
        ("mtls_certificate_id", Certificate.Kind.MTLS),
    ):
        cert_id = mtls.get(key)
        if cert_id and not account.certificates.filter(pk=cert_id, kind=kind).exists():
            raise InvalidInput(
                f"'mtls.{key}' is not the id of a {kind.label} of this account "
                "(wrangler cert list shows them)."
            )
    sslmode = mtls.get("sslmode")
    if sslmode is not None:
        allowed = SSLMODES["mysql" if scheme == "mysql" else "postgres"]
        if sslmode not in allowed:
            raise InvalidInput(
                f"'mtls.sslmode' must be one of {', '.join(sorted(allowed))}."
            )
    return mtls


def create_config(
    *,
    account: CloudAccount,
    name: str,
    origin: dict[str, Any],
    password: str,
    now: datetime,
    caching: dict[str, Any] | None = None,
    mtls: dict[str, str] | None = None,
    origin_connection_limit: int | None = None,
) -> HyperdriveConfig:
    """Store a config. ``origin`` is the whole origin (scheme, host, port,
    database, user) without the password, which is stored apart and never
    shown. Raises InvalidInput (mtls), Conflict (name taken), TooManyConfigs."""
    config = HyperdriveConfig(
        account=account,
        name=name,
        origin=origin,
        password=password,
        caching=caching or {},
        mtls=_mtls(mtls or {}, account=account, scheme=origin["scheme"]),
        origin_connection_limit=origin_connection_limit,
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


def update_config(
    *,
    account: CloudAccount,
    config_id: str,
    now: datetime,
    replace: bool = False,
    name: str | None = None,
    origin: dict[str, Any] | None = None,
    password: str | None = None,
    caching: dict[str, Any] | None = None,
    mtls: dict[str, str] | None = None,
    origin_connection_limit: int | None = None,
) -> HyperdriveConfig:
    """Change what is given (None: keep it); a partial ``origin`` merges into
    the stored one, and no ``password`` keeps the old one. ``replace`` (PUT)
    sets every part, so it takes a whole config. Raises HyperdriveNotFound,
    InvalidInput, Conflict."""
    with transaction.atomic():
        lock_live_account(account_id=account.pk, now=now)
        config = _configs(account, config_id).select_for_update().first()
        if config is None:
            raise HyperdriveNotFound()
        if name is not None:
            config.name = name
        if origin is not None:
            config.origin = origin if replace else {**config.origin, **origin}
        if password is not None:
            config.password = password
        if replace or caching is not None:
            config.caching = caching or {}
        if replace or mtls is not None:
            config.mtls = _mtls(
                mtls or {}, account=account, scheme=config.origin["scheme"]
            )
        if replace or origin_connection_limit is not None:
            config.origin_connection_limit = origin_connection_limit
        config.modified_at = now
        try:
            with transaction.atomic():
                config.save()
        except IntegrityError as exc:
            raise Conflict(
                f"A Hyperdrive config named '{config.name}' already exists."
            ) from exc
    return config


def delete_config(*, account: CloudAccount, config_id: str) -> None:
    with transaction.atomic():
        lock_live_account(account_id=account.pk)
        deleted, _ = _configs(account, config_id).delete()
    if not deleted:
        raise HyperdriveNotFound()
