"""Load through the edge to gunicorn + PostgreSQL + Redis over loopback: many
clients at once provision accounts, deploy Workers, open claim links and race
to claim.

No answer may be a 5xx or a dropped connection; the only refusals allowed are
the provisioning rate limit's 429s; every account ends with at most one owner
and one claim in its trail. The CI form is short; ``bench/bench_load.py`` runs
it longer and with more clients (CLAIMPORTAL_LOAD_SECONDS, _CLIENTS).
"""

import os
import random
import re
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

import pytest
import requests
from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import AuditEvent, CloudAccount
from tests.test_faults import gunicorn, provision_over_http
from tests.workerupload import script_form

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("faults")]

SECONDS = float(os.environ.get("CLAIMPORTAL_LOAD_SECONDS", "12"))
CLIENTS = int(os.environ.get("CLAIMPORTAL_LOAD_CLIENTS", "40"))
CLAIMERS_PER_ACCOUNT = 3
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
METADATA = {"main_module": "index.js", "compatibility_date": "2026-11-01"}


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    errors: list[str] = field(default_factory=list)
    claims_won: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, kind: str, call: Callable[[], requests.Response]):
        started = time.perf_counter()
        try:
            response = call()
        except requests.RequestException as exc:
            with self.lock:
                self.errors.append(f"{kind}: {exc!r}")
            return None
        elapsed = time.perf_counter() - started
        with self.lock:
            self.latencies[kind].append(elapsed)
            self.statuses[kind][response.status_code] += 1
            if response.status_code >= 500:
                # Which 5xx it was: the edge's page or our envelope's code.
                self.errors.append(
                    f"{kind}: {response.status_code} {response.text[:300]!r}"
                )
        return response

    def p99(self, kind: str) -> float:
        values = sorted(self.latencies[kind])
        return values[min(len(values) - 1, int(len(values) * 0.99))] if values else 0

    def summary(self) -> str:
        lines = []
        for kind in sorted(self.latencies):
            values = self.latencies[kind]
            p50, p99 = statistics.median(values) * 1000, self.p99(kind) * 1000
            lines.append(
                f"{kind:10} n={len(values):5}  p50={p50:7.1f} ms  p99={p99:7.1f} ms"
                f"  statuses={dict(self.statuses[kind])}"
            )
        return "\n".join(lines)


def run_load(
    *, origin: str, seconds: float, clients: int, agents: list, claims: list, seed: int
) -> Tally:
    """``clients`` threads for ``seconds``. ``agents``: (account id, token,
    claim key) to deploy to and view (never claimed); ``claims``: (claim key,
    account id, [session ids]) to race for. Baseline: GET /auth.md, a page
    that touches neither database nor cache."""
    tally = Tally()
    deadline = time.monotonic() + seconds
    claim_jobs = [
        (key, account_id, session)
        for key, account_id, sessions in claims
        for session in sessions
    ]
    random.Random(seed).shuffle(claim_jobs)
    jobs_lock = threading.Lock()
    body, content_type = script_form(METADATA)

    def deploy(rng, http):
        account_id, token, _ = rng.choice(agents)
        tally.timed(
            "deploy",
            lambda: http.put(
                f"{origin}/client/v4/accounts/{account_id}/workers/scripts/w{rng.randrange(3)}",
                data=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": content_type,
                },
                timeout=60,
            ),
        )

    def view(rng, http):
        key = rng.choice(agents)[2]
        tally.timed("view", lambda: requests.get(f"{origin}/claim/{key}/", timeout=60))

    def claim(rng, http):
        with jobs_lock:
            if not claim_jobs:
                return view(rng, http)
            key, account_id, session = claim_jobs.pop()
        person = requests.Session()
        person.cookies.set(settings.SESSION_COOKIE_NAME, session)
        page = tally.timed(
            "claim", lambda: person.get(f"{origin}/claim/{key}/", timeout=60)
        )
        if page is None or page.status_code != HTTPStatus.OK:
            return
        token = CSRF.search(page.text)
        if token is None:  # someone else already has it: the page says so
            return
        done = tally.timed(
            "claim",
            lambda: person.post(
                f"{origin}/claim/",
                data={"account": account_id, "csrfmiddlewaretoken": token[1]},
                allow_redirects=False,
                timeout=60,
            ),
        )
        if done is not None and done.headers.get("Location", "").startswith("/mine/"):
            with tally.lock:
                tally.claims_won[account_id] += 1

    def provision(rng, http):
        started = time.perf_counter()
        response = provision_over_http(origin)
        with tally.lock:
            tally.latencies["provision"].append(time.perf_counter() - started)
            tally.statuses["provision"][response.status_code] += 1
            if response.status_code not in (
                HTTPStatus.OK,
                HTTPStatus.TOO_MANY_REQUESTS,
            ):
                tally.errors.append(f"provision: {response.status_code}")

    def baseline(rng, http):
        tally.timed("baseline", lambda: http.get(f"{origin}/auth.md", timeout=60))

    actions = [(deploy, 3), (view, 3), (claim, 2), (provision, 1), (baseline, 2)]

    def client(number: int) -> None:
        rng = random.Random(seed + number)
        # A connection per request, as many separate agents would make; a
        # kept-alive one can be closed by the server as the next request leaves.
        http = requests
        while time.monotonic() < deadline:
            (action,) = rng.choices(
                [a for a, _ in actions], weights=[w for _, w in actions]
            )
            try:
                action(rng, http)
            except requests.RequestException as exc:
                with tally.lock:
                    tally.errors.append(f"{action.__name__}: {exc!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally


def signed_in_session(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.mark.django_db(transaction=True)
def test_mixed_load_holds_with_no_errors_and_no_double_claims(provision):
    agents = [provision() for _ in range(10)]
    targets = [provision() for _ in range(max(10, CLIENTS // 2))]
    users = []
    for n in range(CLAIMERS_PER_ACCOUNT * 4):
        user = get_user_model().objects.create_user(
            username=f"person{n}", email=f"person{n}@example.com", password="x" * 12
        )
        EmailAddress.objects.create(
            user=user, email=user.email, verified=True, primary=True
        )
        users.append(signed_in_session(user))
    rng = random.Random(7)
    claims = [
        (made.claim_key, made.account.id, rng.sample(users, CLAIMERS_PER_ACCOUNT))
        for made in targets
    ]
    with gunicorn() as origin:
        tally = run_load(
            origin=origin,
            seconds=SECONDS,
            clients=CLIENTS,
            agents=[(m.account.id, m.api_token, m.claim_key) for m in agents],
            claims=claims,
            seed=20261128,
        )
    print(f"\n{CLIENTS} clients for {SECONDS:.0f} s\n{tally.summary()}")
    base = tally.p99("baseline")
    for kind in sorted(tally.latencies):
        print(f"p99 {kind} / p99 baseline = {tally.p99(kind) / base:.1f}")

    assert tally.errors == []
    # Pending accounts' links always open; provisioning is refused only by
    # its rate limit.
    assert set(tally.statuses["view"]) == {HTTPStatus.OK}
    assert set(tally.statuses["provision"]) <= {200, 429}
    for kind in ("deploy", "view", "claim", "provision", "baseline"):
        assert tally.latencies[kind], f"no {kind} ran"
    # Each account was claimed by at most one person, once.
    assert set(tally.claims_won.values()) <= {1}
    assert tally.claims_won, "no claim went through"
    for made in targets:
        account = CloudAccount.objects.get(pk=made.account.pk)
        claims_recorded = AuditEvent.objects.filter(
            account_ref=account.pk, kind=AuditEvent.Kind.CLAIMED
        ).count()
        won = tally.claims_won.get(account.pk, 0)
        assert claims_recorded == won == (account.owner_id is not None)
