"""The proof of work that buys a temporary account (the protocol's section 5).

From a 32-byte seed S: c[0] = SHA-256(S), and each of the k segments applies
SHA-256 g times to the previous checkpoint's raw digest. The answer is the
standard base64 of c[0] || ... || c[k]. The work is sequential by design.
"""

import base64
import binascii
import hashlib

from .errors import ChallengeUnsupported

SEED_BYTES = 32
# The ceiling wrangler applies: a larger challenge would freeze the client.
MAX_ITERATIONS = 64_000_000


def decode_seed(seed: str) -> bytes:
    """The seed's bytes: base64url, or standard base64 with padding."""
    if not isinstance(seed, str):
        raise ChallengeUnsupported("The challenge seed is not a string.")
    padded = seed + "=" * (-len(seed) % 4)
    try:
        raw = base64.b64decode(
            padded.replace("-", "+").replace("_", "/"), validate=True
        )
    except (binascii.Error, ValueError) as exc:
        raise ChallengeUnsupported("The challenge seed is not base64.") from exc
    if len(raw) != SEED_BYTES:
        raise ChallengeUnsupported(
            f"The challenge seed is {len(raw)} bytes; it must be {SEED_BYTES}."
        )
    return raw


def check_difficulty(k: object, g: object) -> tuple[int, int]:
    """k and g as wrangler accepts them: JSON integers > 0, k*g <= the ceiling."""
    for name, value in (("k", k), ("g", g)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ChallengeUnsupported(
                f"The challenge's {name} must be an integer > 0."
            )
    assert isinstance(k, int) and isinstance(g, int)
    if k * g > MAX_ITERATIONS:
        raise ChallengeUnsupported(
            f"The challenge asks for {k * g:,} hashes; the ceiling is "
            f"{MAX_ITERATIONS:,}."
        )
    return k, g


def solve(*, seed: str, k: object, g: object) -> str:
    """The checkpoints for a challenge, as the previews call expects them."""
    k, g = check_difficulty(k, g)
    digest = hashlib.sha256(decode_seed(seed)).digest()
    chain = [digest]
    for _ in range(k):
        for _ in range(g):
            digest = hashlib.sha256(digest).digest()
        chain.append(digest)
    return base64.b64encode(b"".join(chain)).decode("ascii")
