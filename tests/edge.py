"""The portal as users reach it: gunicorn's two pools (pages, and the client/v4
API apart) on unix sockets, behind the edge (HAProxy), as bin/run starts them."""

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.conftest import ROOT, stop_process, subprocess_env
from tests.preview_runtime import Edge, start_edge


def pool(socket_path: Path, env: dict[str, str], *, threads: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "claimportal.wsgi:application"),
            *("--bind", f"unix:{socket_path}", "--workers", "2"),
            *("--threads", str(threads), "--log-level", "warning"),
            "--no-control-socket",
        ],
        cwd=ROOT,
        env=env,
    )


def portal_env(directory: Path) -> dict[str, str]:
    """What the edge needs to reach pools started in ``directory``."""
    return {
        "CLAIMPORTAL_EDGE_PORTAL": f"unix:{directory / 'pages.sock'}",
        "CLAIMPORTAL_EDGE_API": f"unix:{directory / 'api.sock'}",
    }


@contextmanager
def pools(directory: Path, **env: str) -> Iterator[None]:
    environment = subprocess_env(**env)
    with ExitStack() as stack:
        for name, threads in (("pages", 4), ("api", 8)):
            process = pool(directory / f"{name}.sock", environment, threads=threads)
            stack.callback(stop_process, process)
        yield


@contextmanager
def portal(**env: str) -> Iterator[Edge]:
    """The pools with ``env`` behind an edge of their own; yields the edge."""
    directory = Path(tempfile.mkdtemp(prefix="cp-edge-"))
    try:
        with pools(directory, **env):
            edge = start_edge(
                subprocess_env(
                    **env,
                    **portal_env(directory),
                    CLAIMPORTAL_EDGE_DIR=str(directory / "edge"),
                ),
                subprocess.DEVNULL,
            )
            try:
                yield edge
            finally:
                edge.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
