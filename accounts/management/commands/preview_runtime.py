"""``manage.py preview_runtime``: serve every live Worker on its preview host."""

import signal

from django.core.management.base import BaseCommand, CommandError

from preview_runtime import process
from preview_runtime.services import runtime_settings, wiring
from preview_runtime.supervisor import Supervisor


class Command(BaseCommand):
    help = (
        "Run every deployed Worker in workerd, one process each, and tell the "
        "edge (manage.py edge) where each preview host goes."
    )

    def handle(self, *args, **options) -> None:
        try:
            binary = runtime_settings.workerd_binary()
            version = runtime_settings.check_workerd_version(binary)
        except process.RuntimeUnavailable as error:
            raise CommandError(error.message) from error
        sandbox = self._sandbox()
        try:
            config = runtime_settings.runtime_config(binary=binary, sandboxed=sandbox)
        except (runtime_settings.NoSuchGroup, runtime_settings.BadRuntimeName) as error:
            raise CommandError(str(error)) from None
        config.state_dir.mkdir(parents=True, exist_ok=True)
        supervisor = Supervisor(
            config=config,
            lookups=wiring.lookups(config),
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
            sandboxed = runtime_settings.wanted_sandbox()
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
