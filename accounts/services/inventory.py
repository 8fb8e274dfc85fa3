"""The version an account's inventory is cached under.

Pages keep an account's rendered inventory in the shared cache under a random
token per account. Every write that changes what the inventory shows calls
``inventory_changed`` after making its change, and the token is replaced: no
page shows the inventory as it was before. A lost replacement (the cache was
unreachable at that moment) is bounded by how long pages keep what they cached.
"""

import functools
import secrets
from collections.abc import Callable
from typing import Any

from django.core.cache import caches

from claimportal.cache import now_and_after_commit

_KEY = "inventory:version:{}"
# Outlives any page's cached copy; a token that expired is simply drawn anew.
_TOKEN_SECONDS = 24 * 3600


def inventory_versions(*, account_ids: list[str]) -> dict[str, str]:
    """Each account's current token, drawn for accounts that have none yet.
    Accounts are left out while the cache cannot be reached: nothing may be
    read from or kept in it for them then."""
    cache = caches["default"]
    keys = {_KEY.format(account_id): account_id for account_id in account_ids}
    found = cache.get_many(list(keys))
    for key in keys.keys() - found.keys():
        cache.add(key, secrets.token_hex(8), timeout=_TOKEN_SECONDS)
    if len(found) < len(keys):
        found.update(cache.get_many([key for key in keys if key not in found]))
    return {keys[key]: token for key, token in found.items()}


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
