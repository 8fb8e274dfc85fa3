"""A test client for client/v4 calls on one account's URLs, as wrangler makes them."""

import json
from http import HTTPStatus
from typing import Any


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
