"""What the client reads from a wrangler project and computes before any call:
config files, asset manifests and the proof of work, checked against the
server's own rules where the server has them."""

import base64
import hashlib
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.services import assets as server_assets
from accounts.services import pow as server_pow
from claimportal_client import ChallengeUnsupported, ProjectError, load_project
from claimportal_client import pow as client_pow
from claimportal_client.assets import collect
from claimportal_client.project import strip_jsonc
from tests.conftest import ROOT

SAMPLE = ROOT / "examples" / "agent-demo"


def test_jsonc_keeps_strings_and_drops_comments_and_trailing_commas():
    text = """{
      // a comment with "quotes"
      "url": "https://example.test/*not a comment*/", /* block */
      "glob": ["/api/*",],
      "escaped": "a \\"quoted // slash\\"",
    }"""
    assert json.loads(strip_jsonc(text)) == {
        "url": "https://example.test/*not a comment*/",
        "glob": ["/api/*"],
        "escaped": 'a "quoted // slash"',
    }


def test_the_sample_reads_the_same_from_jsonc_and_toml(tmp_path):
    jsonc = load_project(SAMPLE)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "index.js").write_bytes((SAMPLE / "src/index.js").read_bytes())
    (tmp_path / "public").mkdir()
    for file in (SAMPLE / "public").iterdir():
        (tmp_path / "public" / file.name).write_bytes(file.read_bytes())
    (tmp_path / "wrangler.toml").write_text(
        """
name = "agent-demo"
main = "src/index.js"
compatibility_date = "2026-06-01"
vars = { GREETING = "Hello from an agent's deploy" }
assets = { directory = "public", binding = "ASSETS", run_worker_first = ["/api/*"] }
kv_namespaces = [{ binding = "CACHE" }]
d1_databases = [{ binding = "DB", database_name = "agent-demo-notes" }]
durable_objects = { bindings = [{ name = "COUNTER", class_name = "Counter" }] }
migrations = [{ tag = "v1", new_sqlite_classes = ["Counter"] }]

[queues]
producers = [{ binding = "JOBS", queue = "agent-demo-jobs" }]
consumers = [{ queue = "agent-demo-jobs", max_batch_size = 5, max_batch_timeout = 2 }]
"""
    )
    toml = load_project(tmp_path)
    for field in (
        "name",
        "compatibility_date",
        "modules",
        "vars",
        "kv_namespaces",
        "d1_databases",
        "durable_objects",
        "migrations",
        "queue_producers",
        "queue_consumers",
        "assets_binding",
        "assets_config",
    ):
        assert getattr(toml, field) == getattr(jsonc, field), field
    assert toml.assets.manifest == jsonc.assets.manifest
    assert jsonc.queue_consumers[0].settings == {
        "batch_size": 5,
        "max_wait_time_ms": 2000,
    }
    assert jsonc.kv_namespaces[0].title == "agent-demo-cache"  # wrangler's default


def test_assets_skip_ignored_files_and_carry_headers_and_redirects(tmp_path):
    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "logo.png").write_bytes(b"\x89PNG fake")
    (tmp_path / "drafts").mkdir()
    (tmp_path / "drafts" / "wip.html").write_text("no")
    (tmp_path / "notes.md").write_text("no")
    (tmp_path / ".assetsignore").write_text("# comment\ndrafts\n*.md\n")
    (tmp_path / "_headers").write_text("/*\n  X-Frame-Options: DENY\n")
    (tmp_path / "_redirects").write_text("/old /new 301\n")
    bundle = collect(tmp_path)
    assert set(bundle.manifest) == {"/index.html", "/img/logo.png"}
    assert bundle.rules == {
        "_headers": "/*\n  X-Frame-Options: DENY\n",
        "_redirects": "/old /new 301\n",
    }
    for file in bundle.files:
        # The server recomputes every hash it is sent; ours must agree.
        data = file.file.read_bytes()
        assert file.hash == server_assets.asset_hash(data, path=file.path)
        assert file.size == len(data)
    with pytest.raises(ProjectError, match="does not exist"):
        collect(tmp_path / "missing")


def test_identical_files_share_a_hash_only_with_the_same_extension(tmp_path):
    for name in ("a.txt", "b.txt", "c.css"):
        (tmp_path / name).write_text("same")
    hashes = {f.path: f.hash for f in collect(tmp_path).files}
    assert hashes["/a.txt"] == hashes["/b.txt"] != hashes["/c.css"]


def test_the_solution_passes_the_servers_full_check():
    challenge = server_pow.issue_challenge(
        now=timezone.now(), k=12, g=200, ttl=timedelta(minutes=1)
    )
    checkpoints = client_pow.solve(seed=challenge.seed, k=12, g=200)
    chain = server_pow.decode_checkpoints(checkpoints, k=12)
    seed = server_pow.decode_seed(challenge.seed)
    # Every segment checked, not a sample: the whole chain is right.
    assert server_pow.verify_chain(seed=seed, chain=chain, g=200, samples=12)
    assert base64.b64decode(checkpoints)[:32] == hashlib.sha256(seed).digest()


@pytest.mark.parametrize(
    ("k", "g", "problem"),
    [
        (0, 10, "k must be an integer"),
        (10, -1, "g must be an integer"),
        (True, 10, "k must be an integer"),
        ("16", 10, "k must be an integer"),
        (1.5, 10, "k must be an integer"),
        (64, 1_000_001, "ceiling"),
    ],
)
def test_challenges_wrangler_would_refuse_are_refused_before_any_work(k, g, problem):
    seed = base64.urlsafe_b64encode(bytes(32)).decode()
    with pytest.raises(ChallengeUnsupported, match=problem):
        client_pow.solve(seed=seed, k=k, g=g)


def test_seeds_are_base64url_or_padded_base64_of_32_bytes():
    raw = bytes(range(200, 232))
    assert (
        client_pow.decode_seed(base64.urlsafe_b64encode(raw).decode().rstrip("="))
        == raw
    )
    assert client_pow.decode_seed(base64.b64encode(raw).decode()) == raw
    with pytest.raises(ChallengeUnsupported, match="31 bytes"):
        client_pow.decode_seed(base64.b64encode(raw[:31]).decode())
    with pytest.raises(ChallengeUnsupported, match="not base64"):
        client_pow.decode_seed("not base64 at all!")
    # The largest challenge wrangler accepts is still accepted.
    assert client_pow.check_difficulty(64, 1_000_000) == (64, 1_000_000)
