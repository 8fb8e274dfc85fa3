"""API tokens: issuing them, and deciding whether a presented one opens an account."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from accounts import tokens
from accounts.exceptions import AccountNotFound, AuthenticationRequired, TokenRevoked
from accounts.models import ApiToken, CloudAccount

# last_used_at is a hint, not a log: writing it at most once a minute keeps the
# hot path to a single indexed read.
LAST_USED_GRANULARITY = timedelta(minutes=1)

_LOGOUT_HINT = "Run `wrangler logout` to forget the old temporary account."
# Keyed by the stored reason, a RevokedBecause value.
REVOKED_MESSAGES: dict[str, str] = {
    ApiToken.RevokedBecause.CLAIMED: (
        "This temporary account has been claimed by its owner, so its temporary "
        "token no longer works. " + _LOGOUT_HINT
    ),
    ApiToken.RevokedBecause.EXPIRED: (
        "This temporary account expired and its deployment was deleted. "
        + _LOGOUT_HINT
        + " Then deploy again with --temporary for a new account."
    ),
    ApiToken.RevokedBecause.SUSPENDED: (
        "This account was suspended by a moderator. " + _LOGOUT_HINT
    ),
    ApiToken.RevokedBecause.MODERATOR: (
        "This API token was revoked by a moderator. " + _LOGOUT_HINT
    ),
    ApiToken.RevokedBecause.OWNER: "This API token was revoked by the account owner.",
}
EXPIRED_TOKEN_MESSAGE = "This API token has expired. " + _LOGOUT_HINT


def revoked_message(token: ApiToken) -> str:
    # A token revoked by hand in the admin may carry no reason.
    return REVOKED_MESSAGES.get(
        token.revoked_because, "This API token was revoked. " + _LOGOUT_HINT
    )


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def issue_token(
    *,
    account: CloudAccount,
    kind: ApiToken.Kind,
    now: datetime,
    expires_at: datetime | None = None,
    name: str = "",
) -> IssuedToken:
    secret = tokens.new_api_token()
    token = ApiToken.objects.create(
        account=account,
        kind=kind,
        name=name,
        prefix=tokens.visible_prefix(secret),
        secret_hash=tokens.hash_secret(secret),
        created_at=now,
        expires_at=expires_at,
    )
    return IssuedToken(token=token, secret=secret)


def _find_token(*, raw_token: str | None, account_id: str | None) -> ApiToken:
    if not raw_token:
        raise AuthenticationRequired()
    token = (
        ApiToken.objects.select_related("account")
        .filter(secret_hash=tokens.hash_secret(raw_token))
        .first()
    )
    if token is None:
        raise AuthenticationRequired("Invalid API token.")
    if account_id is not None and token.account_id != account_id:
        raise AccountNotFound()
    return token


def authenticate_token(
    *, raw_token: str | None, account_id: str | None, now: datetime
) -> ApiToken:
    """The usable token for ``account_id``, or a domain error that says why not.

    Raises AuthenticationRequired (no or unknown token), TokenRevoked (revoked,
    expired, or its account expired or was suspended), AccountNotFound (the token
    belongs to another account: answered as if the account did not exist).
    """
    token = _find_token(raw_token=raw_token, account_id=account_id)
    if token.revoked_at is not None:
        raise TokenRevoked(revoked_message(token))
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenRevoked(EXPIRED_TOKEN_MESSAGE)
    account = token.account
    if account.is_ended(now):
        raise TokenRevoked(REVOKED_MESSAGES[ApiToken.RevokedBecause.EXPIRED])
    if account.state == CloudAccount.State.SUSPENDED:
        raise TokenRevoked(REVOKED_MESSAGES[ApiToken.RevokedBecause.SUSPENDED])
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


# What happened to an account is no secret from the token it was made with:
# claim, expiry and suspension leave that token able to read its account's status.
STATUS_READABLE_AFTER = {
    ApiToken.RevokedBecause.CLAIMED,
    ApiToken.RevokedBecause.EXPIRED,
    ApiToken.RevokedBecause.SUSPENDED,
}


def token_for_status(*, raw_token: str | None, account_id: str) -> ApiToken:
    """The token for ``account_id`` for a status read only: unlike
    authenticate_token it also accepts a token that has run out of time or was
    revoked by the account's claim, expiry or suspension.

    Raises AuthenticationRequired, AccountNotFound, and TokenRevoked for a token
    that a person (moderator or owner) revoked.
    """
    token = _find_token(raw_token=raw_token, account_id=account_id)
    revoked = token.revoked_at is not None
    if revoked and token.revoked_because not in STATUS_READABLE_AFTER:
        raise TokenRevoked(revoked_message(token))
    return token


def revoke_tokens(
    *,
    account: CloudAccount,
    because: ApiToken.RevokedBecause,
    now: datetime,
    kinds: list[ApiToken.Kind] | None = None,
) -> int:
    tokens_qs = account.tokens.filter(revoked_at__isnull=True)
    if kinds is not None:
        tokens_qs = tokens_qs.filter(kind__in=kinds)
    return tokens_qs.update(revoked_at=now, revoked_because=because)
