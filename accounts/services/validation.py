"""Checks on values that come from clients before they reach a row.

PostgreSQL refuses NUL characters (and lone surrogates) in text and JSON, so a
value carrying one would turn into a database error; these checks turn it into a
clear 400 instead.
"""

import contextlib
import json
from typing import Any

from accounts.exceptions import InvalidInput


def clean_text(
    value: Any, *, field: str, max_length: int, required: bool = True
) -> str:
    """A string fit to store, or InvalidInput naming ``field``."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"'{field}' must be a string.")
    if required and not value.strip():
        raise InvalidInput(f"'{field}' is required and may not be empty.")
    if not _storable(value):
        raise InvalidInput(
            f"'{field}' may not contain NUL characters or lone surrogates."
        )
    if len(value) > max_length:
        raise InvalidInput(f"'{field}' is longer than {max_length} characters.")
    return value


def clean_json(value: Any, *, field: str, max_bytes: int) -> Any:
    """A JSON value fit for a JSONField, at most ``max_bytes`` once serialized."""
    try:
        size = len(json.dumps(value, separators=(",", ":")).encode())
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"'{field}' must be JSON.") from exc
    if size > max_bytes:
        raise InvalidInput(f"'{field}' is larger than {max_bytes} bytes.")
    if not _storable_json(value):
        raise InvalidInput(
            f"'{field}' may not contain NUL characters or lone surrogates."
        )
    return value


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _storable_json(value: Any) -> bool:
    if isinstance(value, str):
        return _storable(value)
    if isinstance(value, dict):
        return all(_storable(k) and _storable_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable_json(v) for v in value)
    return True


def whole_number(
    value: Any, *, field: str, minimum: int = 0, maximum: int = 2**53
) -> int:
    """An integer (JSON number or decimal text) within [minimum, maximum]."""
    if isinstance(value, str) and value.strip().isascii():
        with contextlib.suppress(ValueError):
            value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"'{field}' must be a whole number.")
    if not minimum <= value <= maximum:
        raise InvalidInput(f"'{field}' must be between {minimum} and {maximum}.")
    return value


def is_hex_id(value: str) -> bool:
    """Whether ``value`` could be one of our 32-hex ids; anything else names
    nothing, so a look-up can answer "not found" without asking the database."""
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)
