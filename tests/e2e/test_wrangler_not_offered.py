"""Every wrangler command for a product temporary accounts do not carry (R2,
Turnstile, Containers) that takes ``--temporary`` says so, with the real
wrangler 4.164.0 against a live server; and ``wrangler delete`` gives no false
container warning.

A few commands print text of wrangler's own whatever the server answers (they
stop before any API call, or need Docker first): ``FIXED_TEXT`` names them and
what they print, and docs/wrangler-commands.md lists them.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest

from accounts.models import CloudAccount

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

B = "files"
R2 = [
    ("r2", "object", "get", f"{B}/a.txt", "--remote", "--pipe"),
    ("r2", "object", "put", f"{B}/a.txt", "--file", "a.txt", "--remote"),
    ("r2", "object", "delete", f"{B}/a.txt", "--remote"),
    ("r2", "bucket", "create", B),
    ("r2", "bucket", "update", "storage-class", B, "-s", "InfrequentAccess"),
    ("r2", "bucket", "list"),
    ("r2", "bucket", "info", B),
    ("r2", "bucket", "delete", B),
    ("r2", "bucket", "notification", "list", B),
    (
        "r2",
        "bucket",
        "notification",
        "create",
        B,
        "--event-types",
        "object-create",
        "--queue",
        "jobs",
    ),
    ("r2", "bucket", "notification", "delete", B, "--queue", "jobs"),
    ("r2", "bucket", "dev-url", "get", B),
    ("r2", "bucket", "dev-url", "enable", B, "-y"),
    ("r2", "bucket", "dev-url", "disable", B, "-y"),
    ("r2", "bucket", "local-uploads", "get", B),
    ("r2", "bucket", "local-uploads", "enable", B, "-y"),
    ("r2", "bucket", "local-uploads", "disable", B, "-y"),
    ("r2", "bucket", "lifecycle", "list", B),
    (
        "r2",
        "bucket",
        "lifecycle",
        "add",
        B,
        "--name",
        "old",
        "--prefix",
        "tmp/",
        "--expire-days",
        "1",
        "-y",
    ),
    ("r2", "bucket", "lifecycle", "remove", B, "--name", "old"),
    ("r2", "bucket", "lifecycle", "set", B, "--file", "rules.json", "-y"),
    ("r2", "bucket", "cors", "delete", B, "-y"),
    ("r2", "bucket", "cors", "list", B),
    ("r2", "bucket", "cors", "set", B, "--file", "rules.json", "-y"),
    ("r2", "bucket", "lock", "list", B),
    (
        "r2",
        "bucket",
        "lock",
        "add",
        B,
        "--name",
        "keep",
        "--prefix",
        "logs/",
        "--retention-days",
        "1",
        "-y",
    ),
    ("r2", "bucket", "lock", "remove", B, "--name", "keep"),
    ("r2", "bucket", "lock", "set", B, "--file", "rules.json", "-y"),
    ("r2", "bulk", "put", B, "--filename", "bulk.json", "--remote"),
]
TURNSTILE = [
    (
        "turnstile",
        "widget",
        "create",
        "w",
        "--domain",
        "example.com",
        "--mode",
        "managed",
    ),
    ("turnstile", "widget", "delete", "0x4AAAAAAA", "-y"),
    ("turnstile", "widget", "get", "0x4AAAAAAA"),
    ("turnstile", "widget", "list"),
    ("turnstile", "widget", "update", "0x4AAAAAAA", "--name", "w2"),
]
APP = "0195fd1e-35a1-7d3a-9a66-4f1b3a9f9a01"
CONTAINERS = [
    ("containers", "list"),
    ("containers", "info", APP),
    ("containers", "instances", APP),
    ("containers", "delete", APP),
    ("containers", "ssh", "0123456789abcdef"),
    ("containers", "build", ".", "-t", "app:1"),
    ("containers", "push", "app:1"),
    ("containers", "registries", "credentials", "registry.cloudflare.com", "--pull"),
    ("containers", "images", "list"),
    ("containers", "images", "delete", "app:1"),
]
COMMANDS = R2 + TURNSTILE + CONTAINERS

# What wrangler prints of its own, whatever claimportal answers: its container
# client prints a fixed text per HTTP status, and a build needs a Dockerfile
# (then Docker) before any call.
CONTAINER_STATUS_TEXT = (
    "Bad Request that contains a specific constant code and details object"
)
FIXED_TEXT = {
    ("containers", "info", APP): "Bad Request",
    ("containers", "build", "."): "Missing file or directory: Dockerfile",
    ("containers", "push", "app:1"): CONTAINER_STATUS_TEXT,
    ("containers", "registries", "credentials"): CONTAINER_STATUS_TEXT,
    ("containers", "images", "list"): CONTAINER_STATUS_TEXT,
    ("containers", "images", "delete"): CONTAINER_STATUS_TEXT,
}

NAMES = {"r2": "R2", "turnstile": "Turnstile", "containers": "Containers"}


def test_every_out_of_scope_command_names_the_product_as_not_offered(
    wrangler, tmp_path
):
    assert len(COMMANDS) == 44
    work = tmp_path / "project"
    work.mkdir()
    (work / "a.txt").write_text("a")
    (work / "rules.json").write_text('{"rules": []}')
    (work / "bulk.json").write_text('[{"key": "a", "file": "a.txt"}]')
    # A queue, so the R2 notification commands get as far as the R2 call.
    first = wrangler("queues", "create", "jobs", "--temporary", cwd=work)
    assert first.returncode == 0, first.output
    assert CloudAccount.objects.count() == 1

    def run(args):
        return args, wrangler(*args, "--temporary", cwd=work, timeout=180)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, COMMANDS))
    failures = []
    for args, result in results:
        if result.returncode == 0:
            failures.append((" ".join(args), "exited 0"))
        expected = FIXED_TEXT.get(args[:3]) or (
            f"{NAMES[args[0]]} is not available on temporary accounts"
        )
        if expected not in result.output:
            failures.append((" ".join(args), result.output[-600:]))
    assert failures == []
