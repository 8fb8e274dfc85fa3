"""``manage.py preview_runtime``: serve every live Worker on its preview host."""

import grp
import signal
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.previews.supervisor import Supervisor
from accounts.services.previews import process


def _edge_gid() -> int | None:
    """The group of the edge (CLAIMPORTAL_PREVIEW_EDGE_GROUP: a name or gid)."""
    wanted = settings.CLAIMPORTAL_PREVIEW_EDGE_GROUP
    if not wanted:
        return None
    if wanted.isdigit():
        return int(wanted)
    try:
        return grp.getgrnam(wanted).gr_gid
    except KeyError:
        raise CommandError(
            f"CLAIMPORTAL_PREVIEW_EDGE_GROUP names {wanted!r}, no such group."
        ) from None


class Command(BaseCommand):
    help = (
        "Run every deployed Worker in workerd, one process each, and tell the "
        "edge (manage.py edge) where each preview host goes."
    )

    def handle(self, *args, **options) -> None:
        try:
            binary = process.workerd_binary()
            version = process.check_workerd_version(binary)
        except process.RuntimeUnavailable as error:
            raise CommandError(error.message) from error
        state_dir = Path(settings.CLAIMPORTAL_PREVIEW_STATE_DIR)
        state_dir.mkdir(parents=True, exist_ok=True)
        sandbox = self._sandbox()
        supervisor = Supervisor(
            edge_gid=_edge_gid(),
            state_dir=state_dir,
            sandbox=sandbox,
            binary=binary,
            log=lambda line: self.stdout.write(line),
        )

        def stop(_signum, _frame) -> None:
            supervisor.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        supervisor.start()
        how = (
            "sandboxed: a UID, cgroup and mount namespace per account, no network"
            if sandbox
            else "not sandboxed"
        )
        self.stdout.write(
            f"Preview runtime ({version}, {how}) "
            f"serving {len(supervisor.slots)} Workers behind the edge."
        )
        try:
            supervisor.run()
        finally:
            supervisor.stop()
            self.stdout.write("Preview runtime stopped.")

    def _sandbox(self) -> bool:
        try:
            sandboxed = process.wanted_sandbox()
        except process.RuntimeUnavailable as error:  # =on, and it cannot
            raise CommandError(error.message) from error
        if not sandboxed:
            problem = process.sandbox_problem()
            why = problem or "CLAIMPORTAL_PREVIEW_SANDBOX=off"
            self.stderr.write(
                f"Workers run without the sandbox ({why}): no own UID, no "
                "cgroup limits, no mount namespace; set CLAIMPORTAL_PREVIEW_SANDBOX"
                "=on to refuse this."
            )
        return sandboxed
