"""More than one runtime: where an account's Workers run is a row, written
by the runtime that takes it, and the edge sends each preview host to the
runtime that holds it. Two runtimes on this machine, each with its own name
and state folder, share one HAProxy edge and serve disjoint accounts."""

import shutil
import tempfile
from pathlib import Path

import pytest

from accounts.models import PreviewPlacement, PreviewRuntime
from preview_runtime.services import placement
from tests.preview_runtime import Runtime, host_of, make_worker

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("previews")]

NAMES = ("alpha", "beta")
HELLO = """
export default {
  async fetch(request) {
    return new Response("hello from NAME", {headers: {"content-type": "text/plain"}});
  },
};
"""


@pytest.fixture(scope="module")
def two_runtimes(django_db_setup, django_db_blocker):
    """alpha and beta, each with its own state folder, behind one edge whose
    folder they share (CLAIMPORTAL_EDGE_DIR)."""
    root = Path(tempfile.mkdtemp(prefix="cp-pl-"))
    root.chmod(0o755)
    media = root / "media"
    media.mkdir()
    shared = {
        "CLAIMPORTAL_EDGE_DIR": str(root / "edge"),
        "CLAIMPORTAL_EDGE_RUNTIMES": ",".join(NAMES),
    }
    runtimes = []
    try:
        for name in NAMES:
            state = root / name
            state.mkdir()
            state.chmod(0o755)
            runtime = Runtime(state, media)
            if runtimes:  # the first one started the edge
                runtime.edge, runtime.port = runtimes[0].edge, runtimes[0].port
            runtime.start(CLAIMPORTAL_PREVIEW_RUNTIME_NAME=name, **shared)
            runtimes.append(runtime)
        yield runtimes
    finally:
        for runtime in reversed(runtimes):
            if runtime is not runtimes[0]:
                runtime.edge = None  # the first one stops it
            runtime.stop()
        shutil.rmtree(root, ignore_errors=True)


def placed_on(account) -> str | None:
    return (
        PreviewPlacement.objects.filter(account=account)
        .values_list("runtime_id", flat=True)
        .first()
    )


def test_two_runtimes_serve_disjoint_accounts_behind_one_edge(
    two_runtimes, provision, transactional_db, settings
):
    alpha, beta = two_runtimes
    by_name = dict(zip(NAMES, two_runtimes, strict=True))
    settings.MEDIA_ROOT = alpha.media_root
    alpha.wait_for(
        lambda: (
            set(PreviewRuntime.objects.values_list("name", flat=True)) == set(NAMES)
        ),
        what="both runtimes to report in",
    )
    assert {
        Path(d) for d in PreviewRuntime.objects.values_list("state_dir", flat=True)
    } == {
        alpha.state_dir,
        beta.state_dir,
    }

    # Each new account goes to the least loaded runtime: the first to alpha
    # (a tie goes to the first name), the second to beta.
    scripts = []
    for name in ("one", "two"):
        account = provision().account
        scripts.append(make_worker(account, name, HELLO.replace("NAME", name)))
        alpha.wait_for(lambda a=account: placed_on(a), what=f"{name} placed")
    holders = [placed_on(script.account) for script in scripts]
    assert holders == ["alpha", "beta"]

    for script, holder in zip(scripts, holders, strict=True):
        runtime = by_name[holder]
        other = beta if runtime is alpha else alpha
        answer = runtime.wait_for(
            lambda s=script, r=runtime: (a := r.get(host_of(s))).status == 200 and a,
            what=f"{script.name} through the edge",
        )
        assert answer.text == f"hello from {script.name}"
        # Its files, Durable Object folder included, are under its account's
        # folder in the holder's state folder, and nowhere in the other's.
        account_dir = runtime.state_dir / "accounts" / script.account_id
        assert (account_dir / str(script.pk) / "do").is_dir()
        assert not (other.state_dir / "accounts" / script.account_id).exists()
        assert placement.state_dir_of(account_id=script.account_id) == (
            runtime.state_dir
        )
        # Each runtime serves only what it holds.
        assert str(script.pk) in runtime.command("GET", "/status")["workers"]
        assert str(script.pk) not in other.command("GET", "/status")["workers"]

    # A host no runtime holds: the shared pages (either runtime's) answer it.
    assert alpha.get("nothing.preview-00000000.preview.localhost").status == 404
