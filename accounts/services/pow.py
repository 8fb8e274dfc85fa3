"""Proof of work for unauthenticated provisioning, as wrangler solves it.

A challenge is a random 32-byte seed and a difficulty (k segments of g chained
SHA-256 calls each). The client sends back the k+1 checkpoints of the chain; the
server recomputes only a few random segments, so checking costs s*g hashes
against the client's k*g.

Challenge tokens are signed, not stored: the token carries seed, k, g and its
expiry under Django's signing key. Redeeming one records its id in the shared
cache until it expires, and only the first redeemer wins, so a token works once.
"""

import base64
import binascii
import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus

from django.core import signing
from django.core.cache import caches

from accounts.exceptions import DomainError, ServiceUnavailable
from claimportal.cache import CACHE_DOWN

SEED_BYTES = 32
DIGEST_BYTES = 32
# wrangler refuses a challenge above this many hashes before doing any work.
MAX_ITERATIONS = 64_000_000
_SALT = "claimportal.pow.challenge"
_USED_KEY = "pow:used:{}"
_random = secrets.SystemRandom()


class ChallengeRefused(DomainError):
    """The challenge token or its solution is not acceptable."""

    code = 1100
    status = HTTPStatus.FORBIDDEN


class ChallengeForged(ChallengeRefused):
    code = 1101
    message = "The challenge token is not one this server issued."


class ChallengeExpired(ChallengeRefused):
    code = 1102
    status = HTTPStatus.GONE
    message = "The challenge has expired. Request a new one."


class ChallengeReplayed(ChallengeRefused):
    code = 1103
    status = HTTPStatus.CONFLICT
    message = "The challenge was already used. Request a new one."


class SolutionMalformed(ChallengeRefused):
    code = 1104
    status = HTTPStatus.BAD_REQUEST
    message = "The solution must carry k+1 checkpoints of 32 bytes, in base64."


class SolutionWrong(ChallengeRefused):
    code = 1105
    message = "The proof of work is not correct."


@dataclass(frozen=True)
class Challenge:
    token: str
    seed: str  # base64url, no padding
    k: int
    g: int
    expires_at: datetime


def issue_challenge(*, now: datetime, k: int, g: int, ttl: timedelta) -> Challenge:
    """A fresh signed challenge that expires ``ttl`` after ``now``."""
    if k <= 0 or g <= 0 or k * g > MAX_ITERATIONS:
        raise ValueError(f"Difficulty k={k}, g={g} is outside what wrangler solves.")
    seed = (
        base64.urlsafe_b64encode(secrets.token_bytes(SEED_BYTES)).rstrip(b"=").decode()
    )
    expires_at = now + ttl
    payload = {
        "id": secrets.token_hex(16),
        "seed": seed,
        "k": k,
        "g": g,
        "exp": math.ceil(expires_at.timestamp()),
    }
    return Challenge(
        token=signing.dumps(payload, salt=_SALT, compress=False),
        seed=seed,
        k=k,
        g=g,
        expires_at=expires_at,
    )


def redeem_challenge(
    *, token: str, checkpoints: str, now: datetime, spot_checks: int
) -> None:
    """Accept a solution to a challenge this server issued, once.

    The challenge is used up by this call whatever the verdict on the solution,
    so a partial solution cannot be retried until the random spot checks miss
    its gaps. Raises ChallengeForged, ChallengeExpired, ChallengeReplayed,
    SolutionMalformed or SolutionWrong.
    """
    try:
        payload = signing.loads(token, salt=_SALT)
        challenge_id, seed = str(payload["id"]), str(payload["seed"])
        k, g, expires = int(payload["k"]), int(payload["g"]), int(payload["exp"])
    except (
        signing.BadSignature,
        AttributeError,
        KeyError,
        TypeError,
        ValueError,
    ) as exc:
        raise ChallengeForged() from exc
    remaining = expires - now.timestamp()
    if remaining <= 0:
        raise ChallengeExpired()
    # add() is atomic in the shared cache: of two concurrent redeemers, one wins.
    # Without the cache a token could be redeemed again and again: refuse.
    try:
        fresh = caches["strict"].add(
            _USED_KEY.format(challenge_id), 1, timeout=math.ceil(remaining)
        )
    except CACHE_DOWN as exc:
        raise ServiceUnavailable() from exc
    if not fresh:
        raise ChallengeReplayed()
    chain = decode_checkpoints(checkpoints, k=k)
    if not verify_chain(seed=decode_seed(seed), chain=chain, g=g, samples=spot_checks):
        raise SolutionWrong()


def decode_seed(seed: str) -> bytes:
    return base64.urlsafe_b64decode(seed + "=" * (-len(seed) % 4))


@dataclass(frozen=True)
class Checkpoints:
    """A solution's k+1 digests, read out of its base64 text one at a time:
    checking s segments decodes a few dozen characters per checkpoint, not the
    whole text. A character that is not base64 in an unread place is garbage
    like any wrong digest, and caught as often."""

    text: str
    k: int

    def __getitem__(self, j: int) -> bytes:
        start = DIGEST_BYTES * j
        first, end = start // 3, math.ceil((start + DIGEST_BYTES) / 3)  # 3-byte groups
        try:
            raw = base64.b64decode(self.text[4 * first : 4 * end], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SolutionMalformed() from exc
        digest = raw[start - 3 * first : start - 3 * first + DIGEST_BYTES]
        if len(digest) != DIGEST_BYTES:
            raise SolutionMalformed()
        return digest


def decode_checkpoints(text: str, *, k: int) -> Checkpoints:
    """Raises SolutionMalformed unless the text has the size of k+1 digests."""
    if not isinstance(text, str):
        raise SolutionMalformed()
    if len(text) != 4 * math.ceil(DIGEST_BYTES * (k + 1) / 3):
        raise SolutionMalformed(
            f"The solution has {len(text) * 3 // 4 // DIGEST_BYTES} "
            f"checkpoints; this challenge needs {k + 1}."
        )
    return Checkpoints(text=text, k=k)


def run_segment(start: bytes, g: int) -> bytes:
    sha256 = hashlib.sha256
    digest = start
    for _ in range(g):
        digest = sha256(digest).digest()
    return digest


def verify_chain(*, seed: bytes, chain: Checkpoints, g: int, samples: int) -> bool:
    """Check the first link and ``samples`` random segments of the chain.
    Raises SolutionMalformed for a checkpoint that is not base64."""
    if not secrets.compare_digest(chain[0], hashlib.sha256(seed).digest()):
        return False
    for j in _random.sample(range(chain.k), min(samples, chain.k)):
        if not secrets.compare_digest(run_segment(chain[j], g), chain[j + 1]):
            return False
    return True


def solve(*, seed: str, k: int, g: int) -> str:
    """The honest solution (what wrangler computes): all k segments, in order."""
    chain = [hashlib.sha256(decode_seed(seed)).digest()]
    for _ in range(k):
        chain.append(run_segment(chain[-1], g))
    return base64.b64encode(b"".join(chain)).decode()
