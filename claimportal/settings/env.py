"""The one place where claimportal reads its environment.

Every setting that comes from outside goes through these helpers, so the list of
knobs is this module's callers and nothing else.
"""

import os
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured


def text(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def required(name: str) -> str:
    value = text(name)
    if value is None:
        raise ImproperlyConfigured(
            f"{name} must be set in the environment for these settings."
        )
    return value


def integer(name: str, default: int) -> int:
    raw = text(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"{name} must be a whole number, not {raw!r}."
        ) from exc


def boolean(name: str, default: bool) -> bool:
    raw = text(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def strings(name: str, default: list[str]) -> list[str]:
    raw = text(name)
    if raw is None:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


def minutes(name: str, default: int) -> timedelta:
    return timedelta(minutes=integer(name, default))
