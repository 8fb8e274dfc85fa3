"""Each account's Workers in a cell of their own, attacked the way a hostile
Worker (or a process that escaped one) would: other accounts' files, sockets,
Durable Object data and credentials, memory, CPU, and uploads that cannot be
written to disk. Real workerd, as root, with the sandbox on."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from accounts.models import (
    AssetBlob,
    CloudAccount,
    DurableObjectNamespace,
    PreviewIdentity,
)
from accounts.services import kv
from accounts.services.assets import asset_hash, storage_prefix
from preview_runtime.services.specs import (
    WorkerStartupFailed,
    binding_token,
    check_version_starts,
)
from tests import preview_runtime
from tests.conftest import ROOT
from tests.preview_runtime import host_of, make_worker
from tests.test_assets_api import HOSTILE_MANIFESTS

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("previews"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root"),
]

CPU_PERCENT = 20
STORAGE_MB = 8
RUNTIME_ENV = {
    "CLAIMPORTAL_PREVIEW_SANDBOX": "on",
    "CLAIMPORTAL_PREVIEW_CPU_PERCENT": str(CPU_PERCENT),
    "CLAIMPORTAL_PREVIEW_CPU_PINNED_SECONDS": "6",
    "CLAIMPORTAL_PREVIEW_STORAGE_MB": str(STORAGE_MB),
}
runtime = preview_runtime.runtime
preview_settings = preview_runtime.preview_settings
_media_root = preview_runtime._media_root

WORKER = """
export class Vault {
  constructor(state) { this.state = state; }
  async alarm() {
    const end = Date.now() + 60000;
    while (Date.now() < end) {}
  }
  async fetch(request) {
    if (new URL(request.url).pathname === "/fill") {
      this.state.storage.sql.exec("CREATE TABLE IF NOT EXISTS t (v TEXT)");
      this.state.storage.sql.exec("INSERT INTO t VALUES (?)", "x".repeat(1 << 20));
      return new Response("stored a MiB");
    }
    if (new URL(request.url).pathname === "/alarm") {
      await this.state.storage.setAlarm(Date.now() + 100);
      return new Response("alarm set");
    }
    await this.state.storage.put("secret", "the vault of " + this.state.id);
    return new Response("stored");
  }
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/vault" || url.pathname === "/alarm") {
      return env.VAULT.get(env.VAULT.idFromName("x")).fetch(request);
    }
    if (url.pathname === "/fill") {  // a new object each time: no file grows
      return env.VAULT.get(env.VAULT.newUniqueId()).fetch(request);
    }
    if (url.pathname === "/log") {
      const line = "y".repeat(10000);
      for (let i = 0; i < 500; i++) console.log(line);  // 5 MB
      return new Response("logged");
    }
    if (url.pathname === "/hoard") {
      const big = new Uint8Array(1024 * 1024 * 1024);
      for (let i = 0; i < big.length; i += 4096) big[i] = 1;
      return new Response("survived " + big.length);
    }
    if (url.pathname === "/burn") {
      ctx.waitUntil((async () => {
        await new Promise((resolve) => setTimeout(resolve, 50));  // answer first
        const end = Date.now() + Number(url.searchParams.get("ms"));
        while (Date.now() < end) {}
      })());
      return new Response("burning after the answer");
    }
    return new Response("fine");
  },
};
"""


@pytest.fixture
def account(provision, preview_settings) -> CloudAccount:
    return provision().account


def live(runtime, account, name: str = "cell") -> object:
    script = make_worker(
        account,
        name,
        WORKER,
        bindings=[
            {"name": "VAULT", "type": "durable_object_namespace", "class_name": "Vault"}
        ],
    )
    DurableObjectNamespace.objects.create(
        account=account, script=script, class_name="Vault"
    )
    applied = runtime.apply(script)
    assert applied["state"] == "running", (applied, runtime.log())
    return script


def cell_pid(runtime, script) -> int:
    """The pid we hold for the Worker: the cell's outermost process."""
    return runtime.command("GET", "/status")["workers"][str(script.pk)]["pid"]


def cgroup_dir(pid: int, controller: str) -> Path:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _number, names, path = line.split(":", 2)
        if controller in names.split(","):
            return Path("/sys/fs/cgroup") / controller / path.lstrip("/")
    raise AssertionError(f"{pid} has no {controller} cgroup")


def workerd_pid(runtime, script) -> int:
    """workerd itself: the process of the cell that is not root."""
    procs = cgroup_dir(cell_pid(runtime, script), "pids") / "cgroup.procs"
    for pid in procs.read_text().split():
        if Path(f"/proc/{pid}").stat().st_uid != 0:
            return int(pid)
    raise AssertionError("no workerd in the cell")


def run_as(uid: int, code: str) -> dict:
    """Run Python as ``uid`` (no groups), as a process that escaped a cell."""
    done = subprocess.run(
        [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "/usr/bin/python3",  # the system's: any UID may run it
            "-I",
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


PROBE = """
import json, socket, sys
out = {}
for path in sys.argv[1:] if False else PATHS:
    try:
        if path.endswith(".sock"):
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            out[path] = "connected"
        elif path.endswith("/"):
            import os
            out[path] = "listed " + ",".join(os.listdir(path))
        else:
            open(path, "rb").read(1)
            out[path] = "read"
    except OSError as error:
        out[path] = type(error).__name__
print(json.dumps(out))
"""


def test_each_account_runs_as_its_own_uid_without_network(runtime, account, provision):
    other = provision().account
    mine, theirs = live(runtime, account, "mine"), live(runtime, other, "theirs")
    uids = {}
    for acc, script in ((account, mine), (other, theirs)):
        pid = workerd_pid(runtime, script)
        status = Path(f"/proc/{pid}/status").read_text()
        uid = int(re.search(r"^Uid:\s+(\d+)\s", status, re.M).group(1))
        gid = int(re.search(r"^Gid:\s+(\d+)\s", status, re.M).group(1))
        assert re.search(r"^Groups:\s*$", status, re.M)  # no supplementary groups
        assert re.search(r"^CapEff:\s+0+$", status, re.M)
        assert re.search(r"^NoNewPrivs:\s+1$", status, re.M)
        assert uid == gid == PreviewIdentity.objects.get(account=acc).uid
        assert 200000 <= uid <= 299999
        for namespace in ("net", "mnt", "pid", "ipc"):
            ours = os.readlink(f"/proc/self/ns/{namespace}")
            assert os.readlink(f"/proc/{pid}/ns/{namespace}") != ours
        uids[acc.pk] = uid
    assert uids[account.pk] != uids[other.pk]
    # A second Worker of the same account shares its identity; a restart keeps it.
    again = live(runtime, account, "again")
    pid = workerd_pid(runtime, again)
    assert Path(f"/proc/{pid}").stat().st_uid == uids[account.pk]


def test_a_cell_shows_only_its_own_files_and_nothing_of_the_checkout(
    runtime, account, provision
):
    other = provision().account
    mine, theirs = live(runtime, account, "mine"), live(runtime, other, "theirs")
    assert runtime.get(host_of(theirs), "/vault").text == "stored"
    pid = workerd_pid(runtime, mine)
    root = Path(f"/proc/{pid}/root")
    seen = sorted(
        "/" + str(p.relative_to(root))
        for p in root.rglob("*")
        if not str(p.relative_to(root)).startswith(("proc", "dev", "sys"))
    )
    version = f"v-{mine.current_version_id}"
    assert "/w/config.capnp" in seen and "/bin/workerd" in seen
    # Nothing of the other account, of the state folder or of the checkout.
    assert not [p for p in seen if other.pk in p]
    assert not [p for p in seen if str(runtime.state_dir) in p or str(ROOT) in p]
    allowed = ("/bin", "/lib", "/lib64", "/usr", "/w", "/do", "/run", "/tmp")
    assert all(p.startswith(allowed) for p in seen), seen
    # The host folder behind /w is the state folder's, the Worker's own (0600).
    files = runtime.worker_dir(mine) / version
    stats = [(p, p.stat()) for p in [files, *files.rglob("*")]]
    uid = PreviewIdentity.objects.get(account=account).uid
    assert all(s.st_uid == uid for _p, s in stats)
    assert all(s.st_mode & 0o077 == 0 for _p, s in stats)
    # workerd was given no path in the checkout: its arguments name the cell's.
    argv = Path(f"/proc/{cell_pid(runtime, mine)}/cmdline").read_bytes().split(b"\0")
    assert not [a for a in argv if str(ROOT).encode() in a]


def test_an_escaped_process_cannot_open_another_accounts_files_or_sockets(
    runtime, account, provision
):
    other = provision().account
    mine, theirs = live(runtime, account, "mine"), live(runtime, other, "theirs")
    assert runtime.get(host_of(theirs), "/vault").text == "stored"
    their_dir = runtime.worker_dir(theirs)
    version = their_dir / f"v-{theirs.current_version_id}"
    targets = [
        str(version / "config.capnp"),
        str(version / "modules" / "0"),
        str(version) + "/",
        str(their_dir / "do") + "/",
        str(their_dir / "log"),
        str(their_dir / "http.sock"),
        str(their_dir / "admin.sock"),
        str(runtime.state_dir / "supervisor.sock"),
        str(runtime.state_dir / "accounts") + "/",
    ]
    uid = PreviewIdentity.objects.get(account=account).uid
    seen = run_as(uid, f"PATHS = {targets!r}\n" + PROBE)
    assert seen == dict.fromkeys(targets, "PermissionError"), seen
    # Its own cell's files are no easier to reach from outside the cell.
    own = runtime.worker_dir(mine) / f"v-{mine.current_version_id}" / "config.capnp"
    assert run_as(uid, f"PATHS = {[str(own)]!r}\n" + PROBE)[str(own)] == (
        "PermissionError"
    )


def test_a_worker_holds_no_credential_of_another_account(
    runtime, account, provision, now
):
    other = provision().account
    scripts = []
    for owner in (account, other):
        namespace = kv.create_namespace(account=owner, title="cache", now=now)
        binding = {"name": "KV", "type": "kv_namespace", "namespace_id": namespace.pk}
        scripts.append(make_worker(owner, "keys", WORKER, bindings=[binding]))
        assert runtime.apply(scripts[-1])["state"] == "running"
    for script in scripts:
        folder = runtime.worker_dir(script) / f"v-{script.current_version_id}"
        config = (folder / "config.capnp").read_text()
        tokens = set(re.findall(r'\\"token\\":\\"([^\\"]+)\\"', config))
        assert tokens == {
            binding_token(
                account_id=script.account_id,
                version_id=str(script.current_version_id),
            )
        }


def test_a_gigabyte_array_buffer_is_502_for_that_worker_alone(
    runtime, account, provision
):
    hoarder = live(runtime, account, "hoarder")
    bystander = live(runtime, provision().account, "bystander")
    answer = runtime.get(host_of(hoarder), "/hoard", timeout=60)
    assert answer.status == 502, answer.text
    assert answer.headers["x-claimportal-preview"] == "crashed"
    assert runtime.get(host_of(bystander)).text == "fine"
    status = runtime.command("GET", "/status")["workers"][str(hoarder.pk)]
    assert "256 MiB of memory" in status["exit_reason"]
    runtime.wait_for(
        lambda: runtime.get(host_of(hoarder)).text == "fine", what="the restart"
    )


def test_cpu_burnt_after_the_answer_stays_within_the_quota_and_is_stopped(
    runtime, account, provision
):
    burner = live(runtime, account, "burner")
    bystander = live(runtime, provision().account, "bystander")
    usage = cgroup_dir(cell_pid(runtime, burner), "cpuacct") / "cpuacct.usage"
    answer = runtime.get(host_of(burner), "/burn?ms=60000")
    assert answer.text == "burning after the answer"
    before, began = int(usage.read_text()), time.monotonic()
    time.sleep(3)
    used = (int(usage.read_text()) - before) / 1e9
    elapsed = time.monotonic() - began
    assert used > 0.3 * elapsed * CPU_PERCENT / 100  # it does burn ...
    assert used <= 1.2 * elapsed * CPU_PERCENT / 100  # ... but within its quota
    assert runtime.get(host_of(bystander)).text == "fine"
    # Pinned at the quota for long: stopped, and the status says why.
    stopped = runtime.wait_for(
        lambda: (
            (w := runtime.command("GET", "/status")["workers"][str(burner.pk)])["state"]
            == "stopped"
            and w
        ),
        timeout=30,
        what="the pinned Worker to stop",
    )
    assert "whole CPU quota" in stopped["exit_reason"]
    assert runtime.get(host_of(burner)).text == "fine"  # a visit starts it again


def _hostile_worker(account, number: int, manifest: dict) -> object:
    """A Worker whose stored manifest was never checked (as if from before the
    check), with every blob it names present."""
    for path in manifest:
        data = path.encode("utf-8", "replace")[:64]
        digest = asset_hash(data, path="/x")
        manifest[path] = {"hash": digest, "size": len(data)}
        name = f"{storage_prefix(account.pk)}{digest}"
        if not default_storage.exists(name):
            default_storage.save(name, ContentFile(data))
        AssetBlob.objects.get_or_create(
            account=account,
            hash=digest,
            defaults={"size": len(data), "storage_name": name},
        )
    return make_worker(
        account,
        f"hostile{number}",
        'export default { fetch() { return new Response("hi") } }',
        assets={"manifest": manifest, "config": {}},
    )


def test_hostile_manifests_never_stop_the_runtime(
    runtime, account, provision, live_server, _media_root
):
    bystander = live(runtime, provision().account, "bystander")
    # (PostgreSQL cannot even store a NUL in JSON: that one never gets this far.)
    corpus = [m for m, _said in HOSTILE_MANIFESTS if "\x00" not in "".join(m)]
    for number, manifest in enumerate(corpus):
        script = _hostile_worker(account, number, dict(manifest))
        applied = runtime.apply(script)
        assert applied["state"] in ("failed", "running"), applied
        answer = runtime.get(host_of(script))
        assert answer.status in (200, 502), answer.status
        if applied["state"] == "failed":
            assert answer.headers["x-claimportal-preview"] == "failed"
            assert applied["error"]
        assert runtime.process.poll() is None, runtime.log()
        assert runtime.get(host_of(bystander)).text == "fine"
        portal = live_server.url + "/"
        with urllib.request.urlopen(portal, timeout=30) as page:  # noqa: S310
            assert page.status == 200


def test_previews_work_from_a_checkout_no_other_user_can_enter(
    account, preview_settings
):
    """CI may clone the project into a folder only root can enter (mode 0700):
    a copy of this checkout there, with its state folder inside it, still runs
    Workers, since every file workerd reads is in the state folder and its
    cell, bound in by root."""
    closed = Path(tempfile.mkdtemp(prefix="cp7-"))
    try:
        assert closed.stat().st_mode & 0o777 == 0o700
        checkout = closed / "c"
        shutil.copytree(
            ROOT,
            checkout,
            ignore=shutil.ignore_patterns(
                ".git", ".venv", "var", "__pycache__", "*.pyc", ".*_cache"
            ),
        )
        state = checkout / "s"
        state.mkdir()
        (state / "media").mkdir()
        copy = preview_runtime.Runtime(state, state / "media", root=checkout)
        copy.start(**RUNTIME_ENV)
        try:
            script = live(copy, account, "closed")
            assert copy.command("GET", "/status")["sandbox"] is True
            assert copy.get(host_of(script)).text == "fine"
            assert copy.get(host_of(script), "/vault").text == "stored"
            uid = PreviewIdentity.objects.get(account=account).uid
            # workerd's UID cannot even reach the checkout, yet it runs.
            probe = run_as(uid, f"PATHS = {[str(checkout) + '/']!r}\n" + PROBE)
            assert probe == {str(checkout) + "/": "PermissionError"}
        finally:
            copy.stop()
    finally:
        shutil.rmtree(closed, ignore_errors=True)


def test_the_deploy_check_runs_in_the_same_cell_with_the_same_limits(account):
    """A top level that touches 1 GiB starts fine without limits (the heap cap
    does not cover ArrayBuffers): refused here, the cell's memory cap held."""
    hoarder = make_worker(
        account,
        "top-hoarder",
        "const big = new Uint8Array(1024 * 1024 * 1024);\n"
        "for (let i = 0; i < big.length; i += 4096) big[i] = 1;\n"
        "export default { fetch() { return new Response(String(big[0])); } };\n",
    )
    with pytest.raises(WorkerStartupFailed) as caught:
        check_version_starts(version=hoarder.current_version)
    assert "256 MiB of memory while starting" in caught.value.message
    fine = make_worker(account, "fine", WORKER)
    assert check_version_starts(version=fine.current_version) > 0
    # The account's identity was recorded on the way, for its Workers to come.
    assert PreviewIdentity.objects.filter(account=account).exists()


def test_a_durable_object_alarm_burning_cpu_stays_within_the_quota(
    runtime, account, provision
):
    alarmed = live(runtime, account, "alarmed")
    bystander = live(runtime, provision().account, "bystander")
    usage = cgroup_dir(cell_pid(runtime, alarmed), "cpuacct") / "cpuacct.usage"
    assert runtime.get(host_of(alarmed), "/alarm").text == "alarm set"
    time.sleep(1)  # no visitor from here on: the alarm runs on its own
    before, began = int(usage.read_text()), time.monotonic()
    time.sleep(3)
    used = (int(usage.read_text()) - before) / 1e9
    elapsed = time.monotonic() - began
    assert used > 0.3 * elapsed * CPU_PERCENT / 100
    assert used <= 1.2 * elapsed * CPU_PERCENT / 100
    assert runtime.get(host_of(bystander)).text == "fine"


def test_durable_objects_past_the_storage_limit_stop_their_worker_for_good(
    runtime, account, provision
):
    """A Worker's Durable Objects wrote to the runtime's disk without limit
    (146 MB in 5 s from one account): now, past CLAIMPORTAL_PREVIEW_STORAGE_MB,
    it is stopped within about a second, and no visit starts it again."""
    filler = live(runtime, account, "filler")
    bystander = live(runtime, provision().account, "bystander")
    host, answered = host_of(filler), []  # (when, status)
    deadline = time.monotonic() + 60
    while not answered or answered[-1][1] == 200:
        assert time.monotonic() < deadline, f"never stopped: {len(answered)} MiB"
        answered.append((time.monotonic(), runtime.get(host, "/fill").status))
    stopped_at = answered[-1][0]
    stored_late = sum(1 for at, _ in answered[:-1] if at > stopped_at - 2)
    used = sum(f.stat().st_size for f in (runtime.worker_dir(filler) / "do").rglob("*"))
    # Past the limit by what it wrote in the seconds the runtime takes to look.
    assert STORAGE_MB << 20 < used <= (STORAGE_MB + stored_late + 1) << 20
    status = runtime.command("GET", "/status")["workers"][str(filler.pk)]
    assert status["state"] == "failed", status
    assert f"more than {STORAGE_MB} MiB" in status["error"]
    time.sleep(1.5)
    assert runtime.get(host).status != 200  # a visit does not start it
    assert runtime.get(host_of(bystander)).text == "fine"


def test_a_worker_that_logs_megabytes_keeps_a_short_log(runtime, account):
    """What a Worker logs went to its log file without end; past a MiB the
    file keeps only its last 256 KiB (its events keep what was logged)."""
    chatty = live(runtime, account, "chatty")
    log = runtime.worker_dir(chatty) / "log"
    assert runtime.get(host_of(chatty), "/log").text == "logged"
    runtime.wait_for(
        lambda: log.stat().st_size < 300 << 10, timeout=5, what="the log to be cut"
    )
    assert runtime.get(host_of(chatty)).text == "fine"
