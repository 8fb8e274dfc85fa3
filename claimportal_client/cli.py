"""``python -m claimportal_client``: create a temporary account, deploy a
wrangler project to it, and follow its claim, from a shell or a backend.

Notices go to stderr; results go to stdout, as one JSON document with --json.
Exit codes: 0 done, 1 error, 2 bad usage; ``status --wait`` exits 0 once
claimed, 3 if the account expired or was suspended, 4 if still pending at
``--timeout``.
"""

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from .client import (
    CLAIM_PROMPT,
    Client,
    TemporaryAccount,
    default_account_file,
)
from .errors import AuthenticationFailed, ClaimportalError, NotFound
from .project import load_project

DEFAULT_BASE_URL = "http://localhost:8000"
EXIT_ERROR, EXIT_SETTLED_UNCLAIMED, EXIT_STILL_PENDING = 1, 3, 4


def wait_exit_code(state: str) -> int:
    """How a wait for a claim ends, for ``status --wait`` and ``bin/demo --wait``
    alike: 0 claimed, 3 expired or suspended, 4 still pending."""
    if state == "claimed":
        return 0
    return EXIT_STILL_PENDING if state == "pending" else EXIT_SETTLED_UNCLAIMED


def claim_within(deadline: datetime, now: datetime | None = None) -> str:
    """A rough, human distance to the deadline, as wrangler prints it."""
    minutes = round(((deadline - (now or datetime.now(UTC))).total_seconds()) / 60)
    if minutes <= 90:
        return f"{max(minutes, 0)} minute{'' if minutes == 1 else 's'}"
    if minutes <= 48 * 60:
        return f"{round(minutes / 60)} hours"
    return f"{round(minutes / 1440)} days"


def box(lines: Sequence[str]) -> str:
    """Lines framed so the claim URL stands out in a scrolling terminal."""
    width = max(len(line) for line in lines)
    rows = [f"│ {line.ljust(width)} │" for line in lines]
    return "\n".join([f"╭{'─' * (width + 2)}╮", *rows, f"╰{'─' * (width + 2)}╯"])


def account_lines(account: TemporaryAccount, how: str) -> list[str]:
    return [
        "Temporary account ready:",
        f"\tAccount: {account.name} ({how})",
        f"\tClaim within: {claim_within(account.claim_expires_at)}",
        f"\tClaim URL: {account.claim_url}",
    ]


class Cli:
    def __init__(self, args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
        self.args = args
        self.out, self.err = out, err
        self.client = Client(args.base_url)
        self.account_file = Path(args.account_file)

    def note(self, message: str) -> None:
        print(message, file=self.err, flush=True)

    def emit(self, data: dict[str, Any], text: str) -> None:
        print(json.dumps(data, indent=2) if self.args.json else text, file=self.out)

    def saved_account(self) -> TemporaryAccount | None:
        account = TemporaryAccount.load(self.account_file)
        if account is None or account.base_url != self.client.base_url:
            return None  # an account from another server is never offered here
        return account

    def new_account(self) -> TemporaryAccount:
        self.note("Creating a temporary account means you accept this service's terms.")
        account = self.client.create_account(
            event_code=self.args.event_code, progress=self.note
        )
        account.save(self.account_file)
        for line in account_lines(account, "created"):
            self.note(line)
        return account

    def usable_account(self) -> TemporaryAccount:
        account = None if self.args.new_account else self.saved_account()
        if account is not None and account.is_usable() and self.still_ours(account):
            for line in account_lines(account, "reused"):
                self.note(line)
            return account
        return self.new_account()

    def still_ours(self, account: TemporaryAccount) -> bool:
        """Unlike wrangler's cache, never reuse an account that was claimed
        (unless its owner let the agent keep deploying) or that is gone."""
        try:
            state = self.client.status(account).state
            if state == "claimed":
                self.client.call(
                    "GET",
                    f"accounts/{account.id}/workers/subdomain",
                    token=account.api_token,
                )
        except (AuthenticationFailed, NotFound):
            state = "gone"
        if state not in ("pending", "claimed"):
            self.note(f"The saved account is {state}; creating a new one.")
            return False
        return True

    def required_account(self) -> TemporaryAccount:
        account = self.saved_account()
        if account is None:
            raise ClaimportalError(
                f"No temporary account for {self.client.base_url} in "
                f"{self.account_file}. Run `create` or `deploy` first."
            )
        return account

    # --- commands ------------------------------------------------------------

    def create(self) -> int:
        account = self.new_account()
        self.emit(account.to_dict(), account.claim_url)
        return 0

    def deploy(self) -> int:
        project = load_project(self.args.directory)
        account = self.usable_account()
        deployment = self.client.deploy(account, project, progress=self.note)
        text = "\n".join(
            [
                f"Deployed {deployment.worker}",
                f"  {deployment.url}",
                *(f"  Producer/consumer for {q}" for q in deployment.queues),
                f"Current Version ID: {deployment.version_id}",
                "",
                box(
                    [
                        f"{CLAIM_PROMPT}:",
                        account.claim_url,
                        f"(claim within {claim_within(account.claim_expires_at)})",
                    ]
                ),
            ]
        )
        self.emit(
            {"deployment": deployment.to_dict(), **account.to_dict()},
            text,
        )
        return 0

    def status(self) -> int:
        account = self.required_account()
        if self.args.wait:
            status = self.client.wait_for_claim(
                account,
                interval=self.args.interval,
                timeout=self.args.timeout,
                on_poll=lambda s: self.note(f"{datetime.now(UTC):%H:%M:%S} {s.state}"),
            )
        else:
            status = self.client.status(account)
        lines = [f"{status.name} ({status.id}): {status.state}"]
        if status.state == "pending":
            lines.append(
                f"Claim within {claim_within(status.claim_expires_at)}: "
                f"{account.claim_url}"
            )
        elif status.claimed_at:
            lines.append(f"Claimed at {status.claimed_at:%Y-%m-%d %H:%M:%S} UTC")
        self.emit(status.to_dict(), "\n".join(lines))
        return wait_exit_code(status.state) if self.args.wait else 0

    def d1_execute(self) -> int:
        account = self.required_account()
        sql = self.args.sql
        if self.args.file:
            sql = Path(self.args.file).read_text()
        database = self.args.database
        try:
            found = self.client.call(
                "GET",
                f"accounts/{account.id}/d1/database/{database}",
                token=account.api_token,
            )
            database = found["uuid"]
        except NotFound as exc:
            raise ClaimportalError(f"There is no D1 database {database}.") from exc
        results = self.client.d1_query(account, database, sql)
        rows = [row for result in results for row in result.get("results") or []]
        self.emit(
            {"results": results},
            f"Executed {len(results)} command(s)"
            + "".join(f"\n  {json.dumps(row)}" for row in rows),
        )
        return 0


def common_options(*, with_defaults: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after the command's name.

    Only the top-level parser sets defaults: a subcommand's default would
    overwrite a value given before the command (``--base-url URL deploy``)."""

    def default(value: object) -> object:
        return value if with_defaults else argparse.SUPPRESS

    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--base-url",
        default=default(os.environ.get("CLAIMPORTAL_URL", DEFAULT_BASE_URL)),
        help=f"the claimportal origin (env CLAIMPORTAL_URL; {DEFAULT_BASE_URL})",
    )
    options.add_argument(
        "--account-file",
        default=default(
            os.environ.get("CLAIMPORTAL_ACCOUNT_FILE") or default_account_file()
        ),
        help="where the temporary account is kept (env CLAIMPORTAL_ACCOUNT_FILE)",
    )
    options.add_argument(
        "--json", action="store_true", default=default(False), help="print JSON"
    )
    return options


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="python -m claimportal_client",
        description="Temporary accounts on a claimportal server, for agents and "
        "platform backends.",
        parents=[common_options(with_defaults=True)],
    )
    parent = common_options(with_defaults=False)
    commands = main.add_subparsers(dest="action", required=True)
    create = commands.add_parser(
        "create", parents=[parent], help="create a temporary account (solves the PoW)"
    )
    create.add_argument("--event-code")
    deploy = commands.add_parser(
        "deploy",
        parents=[parent],
        help="deploy a wrangler project, creating an account if needed",
    )
    deploy.add_argument("directory", nargs="?", default=".")
    deploy.add_argument("--new-account", action="store_true")
    deploy.add_argument("--event-code")
    status = commands.add_parser(
        "status", parents=[parent], help="pending, claimed, expired or suspended"
    )
    status.add_argument("--wait", action="store_true", help="poll until settled")
    status.add_argument("--interval", type=float, default=5)
    status.add_argument("--timeout", type=float, default=None)
    d1 = commands.add_parser(
        "d1-execute", parents=[parent], help="run SQL on a D1 database"
    )
    d1.add_argument("database", help="the database's name or id")
    source = d1.add_mutually_exclusive_group(required=True)
    source.add_argument("--command", dest="sql", help="the SQL to run")
    source.add_argument("--file", help="a file of SQL to run")
    return main


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    args = parser().parse_args(argv)
    out, err = out or sys.stdout, err or sys.stderr
    try:
        cli = Cli(args, out, err)
        return getattr(cli, args.action.replace("-", "_"))()
    except (ClaimportalError, ValueError, OSError) as error:
        if isinstance(error, ClaimportalError):
            details = error.to_dict()
        else:
            details = {"error": type(error).__name__, "message": str(error)}
        if args.json:
            print(json.dumps(details, indent=2), file=out)
        print(f"✘ {details['message']}", file=err)
        return EXIT_ERROR
