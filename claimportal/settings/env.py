"""The one place where claimportal reads its environment.

Every setting that comes from outside goes through these helpers, so the list of
knobs is this module's callers and nothing else.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import overload

from django.core.exceptions import ImproperlyConfigured


@overload
def text(name: str) -> str | None: ...
@overload
def text(name: str, default: str) -> str: ...
@overload
def text(name: str, default: str | None) -> str | None: ...
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


def missing(*names: str | tuple[str, ...]) -> list[str]:
    """The names (or groups of alternatives, any one of which will do) that the
    environment leaves unset, as a person should read them."""
    unset = []
    for name in names:
        group = name if isinstance(name, tuple) else (name,)
        if all(text(one) is None for one in group):
            unset.append(" or ".join(group))
    return unset


def install_secret(path: Path) -> str:
    """A secret of this install: read from ``path``, or made there on first
    use, readable by its owner only. Processes that race to make it all end up
    with the one that was written first."""
    try:
        return path.read_text().strip() or _refuse_empty(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(50) + "\n")
    try:
        os.link(draft, path)  # fails if another process got there first
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()


def _refuse_empty(path: Path) -> str:
    raise ImproperlyConfigured(
        f"{path} is empty: delete it to have a new secret key made, or set SECRET_KEY."
    )


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
