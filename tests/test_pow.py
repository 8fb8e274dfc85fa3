"""Proof of work: wrangler's checkpoint chain, signed single-use challenges, and
spot-check verification."""

import base64
import hashlib
from datetime import timedelta

import pytest
from django.core import signing

from accounts.services import pow
from tests.conftest import run_concurrently

TTL = timedelta(minutes=5)


def issue(now, k=8, g=50):
    return pow.issue_challenge(now=now, k=k, g=g, ttl=TTL)


def redeem(challenge, checkpoints, now, spot_checks=3):
    pow.redeem_challenge(
        token=challenge.token, checkpoints=checkpoints, now=now, spot_checks=spot_checks
    )


def chain_of(checkpoints: str) -> list[bytes]:
    raw = base64.b64decode(checkpoints)
    return [raw[i : i + 32] for i in range(0, len(raw), 32)]


def encode(chain: list[bytes]) -> str:
    return base64.b64encode(b"".join(chain)).decode()


def test_the_solution_is_wranglers_chain_of_sha256():
    # The algorithm of spec 5.1 written out independently of pow.solve.
    seed = base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()
    h = hashlib.sha256(bytes(range(32))).digest()
    expected = [h]
    for _ in range(3):
        for _ in range(5):
            h = hashlib.sha256(h).digest()
        expected.append(h)
    assert pow.solve(seed=seed, k=3, g=5) == encode(expected)


def test_a_challenge_has_wranglers_shape(now):
    challenge = issue(now, k=64, g=9000)
    assert len(base64.urlsafe_b64decode(challenge.seed + "=")) == 32
    assert (challenge.k, challenge.g) == (64, 9000)
    assert challenge.expires_at == now + TTL
    assert all(ord(c) <= 255 for c in challenge.token)


def test_difficulty_wrangler_would_refuse_is_not_issued(now):
    with pytest.raises(ValueError, match="outside"):
        issue(now, k=64, g=1_000_001)
    with pytest.raises(ValueError, match="outside"):
        issue(now, k=0, g=10)


def test_an_honest_solution_is_accepted_once(now):
    challenge = issue(now)
    solution = pow.solve(seed=challenge.seed, k=challenge.k, g=challenge.g)
    redeem(challenge, solution, now)
    with pytest.raises(pow.ChallengeReplayed):
        redeem(challenge, solution, now)


def test_a_failed_attempt_uses_the_challenge_up(now):
    # Otherwise a partial solution could be resent until the spot checks miss.
    challenge = issue(now)
    chain = chain_of(pow.solve(seed=challenge.seed, k=challenge.k, g=challenge.g))
    chain[5] = hashlib.sha256(b"garbage").digest()
    with pytest.raises(pow.SolutionWrong):
        redeem(challenge, encode(chain), now, spot_checks=challenge.k)
    honest = pow.solve(seed=challenge.seed, k=challenge.k, g=challenge.g)
    with pytest.raises(pow.ChallengeReplayed):
        redeem(challenge, honest, now)


def test_an_expired_challenge_is_refused(now):
    challenge = issue(now)
    solution = pow.solve(seed=challenge.seed, k=challenge.k, g=challenge.g)
    with pytest.raises(pow.ChallengeExpired):
        redeem(challenge, solution, now + TTL + timedelta(seconds=1))


@pytest.mark.parametrize(
    "token",
    ["", "not-a-token", "chl_" + "A" * 40],
    ids=["empty", "garbage", "prefix-only"],
)
def test_a_forged_token_is_refused(now, token):
    with pytest.raises(pow.ChallengeForged):
        pow.redeem_challenge(token=token, checkpoints="", now=now, spot_checks=3)


def test_a_token_signed_with_another_key_or_tampered_is_refused(now):
    challenge = issue(now, k=1, g=1)
    payload = signing.loads(challenge.token, salt="claimportal.pow.challenge")
    easier = signing.dumps({**payload, "g": 1}, key="another-key" * 5)
    with pytest.raises(pow.ChallengeForged):
        pow.redeem_challenge(token=easier, checkpoints="", now=now, spot_checks=3)
    body, _, signature = challenge.token.rpartition(":")
    flipped = body[:-1] + ("A" if body[-1] != "A" else "B") + ":" + signature
    with pytest.raises(pow.ChallengeForged):
        pow.redeem_challenge(token=flipped, checkpoints="", now=now, spot_checks=3)


@pytest.mark.parametrize("count", [8, 10, 0])
def test_a_wrong_checkpoint_count_is_refused(now, count):
    challenge = issue(now)
    chain = chain_of(pow.solve(seed=challenge.seed, k=challenge.k, g=challenge.g))
    chain = (chain + chain)[:count]
    with pytest.raises(pow.SolutionMalformed):
        redeem(challenge, encode(chain), now)


def test_checkpoints_that_are_not_base64_are_refused(now):
    challenge = issue(now)
    with pytest.raises(pow.SolutionMalformed):
        redeem(challenge, "!!not base64!!", now)
    # The right size, but a character no base64 has, where a check reads.
    other = issue(now)
    solution = pow.solve(seed=other.seed, k=other.k, g=other.g)
    broken = solution[:100] + "!" + solution[101:]
    with pytest.raises(pow.SolutionMalformed):
        redeem(other, broken, now, spot_checks=other.k)


@pytest.mark.parametrize("segment", [0, 1, 4, 8])
def test_a_tampered_segment_is_caught_when_checked(now, segment):
    challenge = issue(now)
    chain = chain_of(pow.solve(seed=challenge.seed, k=challenge.k, g=challenge.g))
    chain[segment] = bytes(32)
    # Checking every segment makes the catch certain; in production s random
    # segments catch it with probability s/k per tampered link, every attempt.
    with pytest.raises(pow.SolutionWrong):
        redeem(challenge, encode(chain), now, spot_checks=challenge.k)


def test_spot_checks_catch_a_half_done_solution_nearly_always(now):
    # Half the segments are garbage: 3 random checks of 8 miss them all with
    # probability C(4,3)/C(8,3) = 1/14. Over 40 attempts, most must be caught.
    caught = 0
    for _ in range(40):
        challenge = issue(now)
        chain = chain_of(pow.solve(seed=challenge.seed, k=challenge.k, g=challenge.g))
        for j in range(5, 9):
            chain[j] = hashlib.sha256(b"skipped" + chain[j]).digest()
        try:
            redeem(challenge, encode(chain), now)
        except pow.SolutionWrong:
            caught += 1
    assert caught >= 30


def test_concurrent_redeems_of_one_challenge_have_one_winner(now):
    challenge = issue(now, k=8, g=2000)
    solution = pow.solve(seed=challenge.seed, k=8, g=2000)

    def attempt() -> str:
        try:
            redeem(challenge, solution, now)
        except pow.ChallengeReplayed:
            return "replayed"
        return "won"

    outcomes = run_concurrently(attempt, 6)
    assert sorted(outcomes) == ["replayed"] * 5 + ["won"]
