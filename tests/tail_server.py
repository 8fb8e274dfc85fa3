"""A real tail server (``manage.py tail_server``) for tests, and a reader of
``wrangler tail --format json`` output as it streams."""

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, stop_process, subprocess_env


class TailServer:
    def __init__(self, log: Path) -> None:
        self.log_path = log
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "tail_server", "--port", "0"],
            cwd=ROOT,
            env=subprocess_env(),
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while "tail server on " not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the tail server did not start:\n{self.log()}")
            time.sleep(0.05)
        line = self.log().split("tail server on ", 1)[1].split("\n", 1)[0]
        self.base_url = line.strip().removesuffix("/tail/")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture(scope="module")
def tail_server(django_db_setup, django_db_blocker, tmp_path_factory):
    server = TailServer(tmp_path_factory.mktemp("tail") / "server.log")
    yield server
    server.stop()


@pytest.fixture
def tail_settings(settings, tail_server):
    settings.CLAIMPORTAL_TAIL_BASE_URL = tail_server.base_url
    return settings


class JsonStream:
    """The JSON documents a process prints one after another, collected by a
    thread as they come."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.items: list[Any] = []
        self.raw = ""
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        decoder = json.JSONDecoder()
        buffer = ""
        for chunk in iter(lambda: self.process.stdout.read1(4096), b""):
            text = chunk.decode("utf-8", "replace")
            self.raw += text
            buffer += text
            while True:
                start = buffer.find("{")
                if start < 0:
                    buffer = ""
                    break
                try:
                    item, end = decoder.raw_decode(buffer, start)
                except ValueError:
                    buffer = buffer[start:]
                    break
                self.items.append(item)
                buffer = buffer[end:]

    def wait_for(self, predicate: Callable[[Any], bool], *, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in list(self.items):
                if predicate(item):
                    return item
            time.sleep(0.05)
        raise AssertionError(f"nothing matched within {timeout}s; got:\n{self.raw}")
