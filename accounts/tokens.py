"""Secrets: how they are made, and the only form in which they are stored.

API tokens and claim keys carry 256 random bits, so a fast unsalted SHA-256 is
enough to make the stored form useless to whoever reads the database, and it
lets a lookup be one indexed equality.
"""

import hashlib
import hmac
import secrets

API_TOKEN_PREFIX = "cpt_"  # noqa: S105 (a label, not a secret)
VISIBLE_PREFIX_LENGTH = 12  # "cpt_" and 8 random characters: enough to tell apart


def new_account_id() -> str:
    """A Cloudflare-shaped account id: 32 lowercase hex characters."""
    return secrets.token_hex(16)


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_claim_key() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def visible_prefix(token: str) -> str:
    return token[:VISIBLE_PREFIX_LENGTH]


def keyed_origin_hash(address: str, *, key: str) -> str:
    """Where a request came from, recognisable but not reversible."""
    return hmac.new(key.encode(), address.encode(), hashlib.sha256).hexdigest()
