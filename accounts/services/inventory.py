"""The version an account's inventory is cached under.

Pages keep an account's rendered inventory in the shared cache, with the
random token per account that was current when they read it. Every write
that changes what the inventory shows calls ``inventory_changed`` after making
its change, and the token is replaced: no page shows the inventory as it was
before. A lost replacement (the cache was unreachable at that moment) is
bounded by how long pages keep what they cached.
"""

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches

from claimportal.cache import now_and_after_commit

_KEY = "inventory:version:{}"
_KEPT = "inventory:kept:{}"
# Outlives any page's cached copy; a token that expired is simply drawn anew.
_TOKEN_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Kept:
    """An account's current token, and what a page kept under it (None: nothing)."""

    version: str
    value: Any = None


def kept_inventories(*, account_ids: list[str]) -> dict[str, Kept]:
    """Each account's current token and what pages kept under it, in one round
    trip to the cache (two more for an account that has no token yet, which
    gets one). Accounts are left out while the cache cannot be reached:
    nothing may be read from or kept in it for them then."""
    cache = caches["default"]
    versions = {_KEY.format(account_id): account_id for account_id in account_ids}
    kept_keys = {account_id: _KEPT.format(account_id) for account_id in account_ids}
    found = cache.get_many([*versions, *kept_keys.values()])
    drawn = [key for key in versions if key not in found]
    for key in drawn:
        cache.add(key, secrets.token_hex(8), timeout=_TOKEN_SECONDS)
    if drawn:
        found.update(cache.get_many(drawn))
    result = {}
    for key, account_id in versions.items():
        if key in found:
            version, kept = found[key], found.get(kept_keys[account_id])
            # Kept under an older token: from before the latest change.
            fresh = isinstance(kept, tuple) and len(kept) == 2 and kept[0] == version
            result[account_id] = Kept(version, kept[1] if fresh and kept else None)
    return result


def keep_inventories(*, kept: dict[str, Kept], seconds: int) -> None:
    """Keep each account's value under the token it was read with: once that
    token is replaced, kept_inventories no longer hands it out."""
    if kept:
        caches["default"].set_many(
            {_KEPT.format(a): (k.version, k.value) for a, k in kept.items()},
            seconds,
        )


def inventory_changed(*, account_id: str) -> None:
    """Call after changing what the account's inventory shows: the token is
    replaced (now and after commit)."""

    def replace() -> None:
        caches["default"].set(
            _KEY.format(account_id), secrets.token_hex(8), timeout=_TOKEN_SECONDS
        )

    now_and_after_commit(replace)


def changes_inventory[T](write: Callable[..., T]) -> Callable[..., T]:
    """Marks a service function whose success changes what an account's
    inventory shows. Its keyword arguments name the account, or a resource of
    it (a namespace, database, queue or script)."""

    @functools.wraps(write)
    def wrapper(**kwargs: Any) -> T:
        result = write(**kwargs)
        inventory_changed(account_id=_account_id(kwargs))
        return result

    return wrapper


def _account_id(kwargs: dict[str, Any]) -> str:
    if "account" in kwargs:
        return kwargs["account"].pk
    for name in ("namespace", "database", "queue", "script"):
        if name in kwargs:
            return kwargs[name].account_id
    raise TypeError("changes_inventory needs an account or a resource of it")
