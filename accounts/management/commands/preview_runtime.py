"""``manage.py preview_runtime``: serve every live Worker on its preview host."""

import signal
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.previews.supervisor import Supervisor
from accounts.services.previews import process


def _reachable_by_nobody(directory: Path) -> bool:
    """Whether every folder above ``directory`` lets other users through."""
    return all(p.stat().st_mode & 0o001 for p in directory.resolve().parents)


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
        sandbox = self._sandbox(state_dir)
        supervisor = Supervisor(
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
        self.stdout.write(
            f"Preview runtime ({version}, "
            f"{'sandboxed as nobody, no network' if sandbox else 'not sandboxed'}) "
            f"serving {len(supervisor.slots)} Workers behind the edge."
        )
        try:
            supervisor.run()
        finally:
            supervisor.stop()
            self.stdout.write("Preview runtime stopped.")

    def _sandbox(self, state_dir: Path) -> bool:
        wanted = (settings.CLAIMPORTAL_PREVIEW_SANDBOX or "auto").lower()
        if wanted == "off":
            return False
        possible = process.sandbox_available() and _reachable_by_nobody(state_dir)
        if wanted == "on" and not possible:
            raise CommandError(
                "CLAIMPORTAL_PREVIEW_SANDBOX=on, but workerd cannot run as nobody "
                "in its own network namespace here (needs root, unshare and "
                "setpriv, and a state dir other users can reach)."
            )
        if not possible:
            self.stderr.write(
                "Running Workers without the sandbox (nobody, no network): "
                "workerd still denies them outbound network."
            )
        return possible
