"""A test client for client/v4 calls on one account's URLs, as wrangler makes them."""

import json
import subprocess
import threading
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from django.db import connection


class AccountClient:
    """Django's test client bound to one provisioned account and its token.

    ``api.post("storage/kv/namespaces", {"title": "x"})`` sends JSON the way
    wrangler does (labelled text/plain); bytes and text go as they are.
    """

    def __init__(self, client, made) -> None:
        self.client = client
        self.made = made
        self.account = made.account
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {made.api_token}"}

    def url(self, path: str) -> str:
        return f"/client/v4/accounts/{self.account.id}/{path}"

    def call(self, method: str, path: str, body: Any = None, **extra):
        if body is not None:
            if not isinstance(body, bytes | str):
                body = json.dumps(body)
            extra.setdefault("content_type", "text/plain;charset=UTF-8")
            extra["data"] = body
        return getattr(self.client, method)(self.url(path), **self.auth, **extra)

    def get(self, path: str, **extra):
        return self.call("get", path, **extra)

    def post(self, path: str, body: Any = None, **extra):
        return self.call("post", path, body, **extra)

    def put(self, path: str, body: Any = None, **extra):
        return self.call("put", path, body, **extra)

    def patch(self, path: str, body: Any = None, **extra):
        return self.call("patch", path, body, **extra)

    def delete(self, path: str, body: Any = None, **extra):
        return self.call("delete", path, body, **extra)


def ok(response, status: int = HTTPStatus.OK) -> Any:
    """The result of a successful envelope, after checking it is one."""
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert body["success"] is True, body
    assert body["errors"] == []
    return body["result"]


def error_code(response) -> int:
    body = response.json()
    assert body["success"] is False, body
    assert body["result"] is None
    return body["errors"][0]["code"]


def concurrently[T](count: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(0)`` .. ``work(count - 1)`` on threads released together, each
    on its own database connection (real concurrent transactions); the results
    in order, or the first error raised."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as exc:  # re-raised in the calling thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def make_pem(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate and its unencrypted key, made by openssl:
    (cert.pem, key.pem) in ``folder``, with the subject ``/O=Claim Tests/CN=name``."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "30",
            "-subj",
            f"/O=Claim Tests/CN={name}",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key
