"""The client: a temporary account for proof of work, a deploy over the same
calls wrangler makes, and the account's claim status."""

import base64
import json
import os
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import multipart, pow
from .assets import content_type as asset_type
from .errors import ClaimportalError, MalformedResponse, NotFound
from .http import api_base, envelope, send
from .project import QueueConsumer, WorkerProject

# What an agent hands the person, with the claim URL.
CLAIM_PROMPT = "Click here to keep this deployment"
SETTLED_STATES = ("claimed", "expired", "suspended")
Progress = Callable[[str], None]


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (
        value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _quiet(_message: str) -> None:
    pass


@dataclass(frozen=True)
class TemporaryAccount:
    """What the previews call hands back. ``api_token`` is a secret."""

    base_url: str
    id: str
    name: str
    api_token: str
    expires_at: datetime
    claim_url: str
    claim_expires_at: datetime

    def is_usable(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return now < self.expires_at and now < self.claim_expires_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseUrl": self.base_url,
            "account": {
                "id": self.id,
                "name": self.name,
                "apiToken": self.api_token,
                "expiresAt": _iso(self.expires_at),
            },
            "claim": {"url": self.claim_url, "expiresAt": _iso(self.claim_expires_at)},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, base_url: str) -> "TemporaryAccount":
        """From a previews result (or ``to_dict``); MalformedResponse if a
        field is missing."""
        try:
            account, claim = data["account"], data["claim"]
            return cls(
                base_url=data.get("baseUrl", base_url),
                id=str(account["id"]),
                name=str(account["name"]),
                api_token=str(account["apiToken"]),
                expires_at=_parse_time(account["expiresAt"]),
                claim_url=str(claim["url"]),
                claim_expires_at=_parse_time(claim["expiresAt"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedResponse(
                f"The account is missing a field or has a bad one ({exc}).",
                status=200,
                path="provisioning/previews",
            ) from exc

    def save(self, path: Path) -> None:
        """Write the account for later commands, readable by its owner only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(self.to_dict(), out, indent=2)

    @classmethod
    def load(cls, path: Path) -> "TemporaryAccount | None":
        """The saved account, or None when there is none or it is unreadable."""
        try:
            return cls.from_dict(json.loads(path.read_text()), base_url="")
        except (OSError, ValueError, ClaimportalError):
            return None


@dataclass(frozen=True)
class AccountStatus:
    id: str
    name: str
    state: str  # pending, claimed, expired or suspended
    expires_at: datetime
    claim_expires_at: datetime
    claimed_at: datetime | None

    @property
    def settled(self) -> bool:
        """Whether the state can no longer change to claimed."""
        return self.state in SETTLED_STATES

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "expiresAt": _iso(self.expires_at),
            "claim": {
                "expiresAt": _iso(self.claim_expires_at),
                "claimedAt": _iso(self.claimed_at),
            },
        }


@dataclass
class Deployment:
    worker: str
    url: str
    version_id: str | None
    kv_namespaces: dict[str, str] = field(default_factory=dict)  # binding: id
    d1_databases: dict[str, str] = field(default_factory=dict)  # binding: uuid
    queues: list[str] = field(default_factory=list)
    durable_objects: list[str] = field(default_factory=list)
    assets_uploaded: int = 0
    assets_total: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {
            "worker": data.pop("worker"),
            "url": data.pop("url"),
            "versionId": data.pop("version_id"),
            "kvNamespaces": data.pop("kv_namespaces"),
            "d1Databases": data.pop("d1_databases"),
            "queues": data.pop("queues"),
            "durableObjects": data.pop("durable_objects"),
            "assets": {
                "uploaded": data.pop("assets_uploaded"),
                "total": data.pop("assets_total"),
            },
        }


class Client:
    """Speaks client/v4 to one claimportal server (``base_url`` is its origin)."""

    def __init__(self, base_url: str, *, timeout: float = 60) -> None:
        self.base_url = base_url.strip().rstrip("/").removesuffix("/client/v4")
        self.api = api_base(base_url)
        self.timeout = timeout

    # --- plumbing --------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json_body: Any = None,
        body: bytes | None = None,
        content_type: str | None = None,
        query: dict[str, Any] | list[tuple[str, Any]] | None = None,
    ) -> Any:
        """One call; the envelope's result, or the error it carries."""
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            body = json.dumps(json_body).encode()
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        url = f"{self.api}/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        response = send(method, url, body=body, headers=headers, timeout=self.timeout)
        return envelope(response, path=path)

    @staticmethod
    def _scoped(account: TemporaryAccount, path: str) -> str:
        return f"accounts/{account.id}/{path}"

    def _account_call(
        self, account: TemporaryAccount, method: str, path: str, **kwargs: Any
    ) -> Any:
        return self.call(
            method, self._scoped(account, path), token=account.api_token, **kwargs
        )

    # --- provisioning ----------------------------------------------------------

    def create_account(
        self, *, event_code: str | None = None, progress: Progress = _quiet
    ) -> TemporaryAccount:
        """Solve a challenge and accept the terms for a new temporary account.

        Raises ChallengeUnsupported, ChallengeRefused, ProvisioningRefused,
        RateLimited, ApiError, MalformedResponse or ConnectionFailed.
        """
        challenge = self.call("POST", "provisioning/previews/challenge", json_body={})
        if not isinstance(challenge, dict) or not all(
            key in challenge for key in ("challengeToken", "seed", "k", "g")
        ):
            raise MalformedResponse(
                "The challenge is missing required fields.",
                status=200,
                path="provisioning/previews/challenge",
            )
        progress(
            f"Solving proof-of-work challenge (k={challenge['k']}, g={challenge['g']})…"
        )
        checkpoints = pow.solve(
            seed=challenge["seed"], k=challenge["k"], g=challenge["g"]
        )
        body: dict[str, Any] = {
            "acceptTermsOfService": "yes",
            "challengeToken": challenge["challengeToken"],
            "solution": {"checkpoints": checkpoints},
        }
        if event_code is not None:
            body["eventCode"] = event_code
        result = self.call("POST", "provisioning/previews", json_body=body)
        if not isinstance(result, dict):
            raise MalformedResponse(
                "The account answer is not an object.",
                status=200,
                path="provisioning/previews",
            )
        return TemporaryAccount.from_dict(result, base_url=self.base_url)

    def status(self, account: TemporaryAccount) -> AccountStatus:
        """Where the account stands: pending, claimed, expired or suspended.

        Works with the temporary token even after a claim or expiry revoked it.
        """
        path = f"provisioning/previews/{account.id}"
        result = self.call("GET", path, token=account.api_token)
        try:
            claim = result.get("claim") or {}
            return AccountStatus(
                id=str(result["id"]),
                name=str(result["name"]),
                state=str(result["state"]),
                expires_at=_parse_time(result["expiresAt"]),
                claim_expires_at=_parse_time(claim["expiresAt"]),
                claimed_at=(
                    _parse_time(claim["claimedAt"]) if claim.get("claimedAt") else None
                ),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise MalformedResponse(
                f"The status is missing a field or has a bad one ({exc}).",
                status=200,
                path=path,
            ) from exc

    def wait_for_claim(
        self,
        account: TemporaryAccount,
        *,
        interval: float = 5,
        timeout: float | None = None,
        on_poll: Callable[[AccountStatus], None] | None = None,
    ) -> AccountStatus:
        """Poll until the account is claimed, expired or suspended, or until
        ``timeout`` seconds passed (then the last, pending, status)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status(account)
            if on_poll is not None:
                on_poll(status)
            if status.settled:
                return status
            if deadline is not None and time.monotonic() + interval > deadline:
                return status
            time.sleep(interval)

    # --- data --------------------------------------------------------------------

    def d1_query(
        self,
        account: TemporaryAccount,
        database_id: str,
        sql: str,
        params: list[Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Run SQL on a D1 database: one result object per statement."""
        body: dict[str, Any] = {"sql": sql}
        if params:
            body["params"] = params
        return self._account_call(
            account, "POST", f"d1/database/{database_id}/query", json_body=body
        )

    def kv_put(
        self, account: TemporaryAccount, namespace_id: str, key: str, value: bytes
    ) -> None:
        self._account_call(
            account,
            "PUT",
            f"storage/kv/namespaces/{namespace_id}/values/"
            + urllib.parse.quote(key, safe=""),
            body=value,
            content_type="application/octet-stream",
        )

    # --- deploy ----------------------------------------------------------------

    def deploy(
        self,
        account: TemporaryAccount,
        project: WorkerProject,
        *,
        progress: Progress = _quiet,
    ) -> Deployment:
        """Upload a project as wrangler deploys it: provision its KV namespaces,
        D1 databases and queues by name, upload its assets, upload the Worker,
        switch on its URL and attach its queue consumers. Safe to repeat.

        Raises ApiError (and subclasses), MalformedResponse or ConnectionFailed.
        """
        deployment = Deployment(worker=project.name, url="", version_id=None)
        migration_tag = self._migration_tag(account, project.name)
        bindings: list[dict[str, Any]] = [
            {"name": name, "type": "json", "json": value}
            if not isinstance(value, str)
            else {"name": name, "type": "plain_text", "text": value}
            for name, value in project.vars.items()
        ]
        for kv in project.kv_namespaces:
            namespace_id = kv.id or self._ensure_kv(account, kv.title, progress)
            deployment.kv_namespaces[kv.binding] = namespace_id
            bindings.append(
                {
                    "name": kv.binding,
                    "type": "kv_namespace",
                    "namespace_id": namespace_id,
                }
            )
        for binding, class_name in project.durable_objects.items():
            deployment.durable_objects.append(class_name)
            bindings.append(
                {
                    "name": binding,
                    "type": "durable_object_namespace",
                    "class_name": class_name,
                }
            )
        queues = {p.queue for p in project.queue_producers} | {
            c.queue for c in project.queue_consumers
        }
        for queue in sorted(queues):
            self._ensure_queue(account, queue, progress)
        deployment.queues = sorted(queues)
        for producer in project.queue_producers:
            bindings.append(
                {
                    "type": "queue",
                    "name": producer.binding,
                    "queue_name": producer.queue,
                }
            )
        for d1 in project.d1_databases:
            database_id = d1.id or self._ensure_d1(account, d1.name, progress)
            deployment.d1_databases[d1.binding] = database_id
            bindings.append({"name": d1.binding, "type": "d1", "id": database_id})
        for binding, config_id in project.hyperdrive.items():
            bindings.append({"name": binding, "type": "hyperdrive", "id": config_id})

        metadata: dict[str, Any] = {}
        if project.main_module:
            metadata["main_module"] = project.main_module
            metadata["bindings"] = bindings
        metadata["compatibility_date"] = project.compatibility_date
        metadata["compatibility_flags"] = project.compatibility_flags
        migrations = self._pending_migrations(project, migration_tag)
        if migrations:
            metadata["migrations"] = migrations
        if project.main_module:
            metadata["keep_bindings"] = ["secret_text", "secret_key"]
        if project.assets is not None:
            jwt = self._upload_assets(account, project, deployment, progress)
            metadata["assets"] = {"jwt": jwt, "config": project.assets_config}
            if project.assets_binding and project.main_module:
                bindings.append({"name": project.assets_binding, "type": "assets"})
        if project.observability is not None:
            metadata["observability"] = project.observability

        progress(f"Uploading {project.name}…")
        parts = [multipart.Part("metadata", json.dumps(metadata).encode())]
        parts += [
            multipart.Part(m.name, m.data, filename=m.name, content_type=m.content_type)
            for m in project.modules
        ]
        body, content_type = multipart.encode(parts)
        uploaded = self._account_call(
            account,
            "PUT",
            f"workers/scripts/{project.name}",
            query={"excludeScript": "true", "bindings_inherit": "strict"},
            body=body,
            content_type=content_type,
        )
        uploaded = uploaded if isinstance(uploaded, dict) else {}
        deployment.version_id = uploaded.get("deployment_id") or uploaded.get("id")
        if project.crons is not None:
            self._account_call(
                account,
                "PUT",
                f"workers/scripts/{project.name}/schedules",
                json_body=[{"cron": cron} for cron in project.crons],
            )
        self._account_call(
            account,
            "POST",
            f"workers/scripts/{project.name}/subdomain",
            json_body={"enabled": project.workers_dev},
        )
        for consumer in project.queue_consumers:
            self._attach_consumer(account, project.name, consumer, progress)
        deployment.url = self.worker_url(account, project.name)
        return deployment

    def worker_url(self, account: TemporaryAccount, worker: str) -> str:
        """Where the Worker answers: the server's preview URL when it names one."""
        details = self._account_call(account, "GET", f"workers/workers/{worker}")
        url = ((details or {}).get("subdomain") or {}).get("url")
        if url:
            return str(url)
        subdomain = self._account_call(account, "GET", "workers/subdomain")
        return f"https://{worker}.{subdomain['subdomain']}.workers.dev"

    def _migration_tag(self, account: TemporaryAccount, worker: str) -> str | None:
        try:
            service = self._account_call(account, "GET", f"workers/services/{worker}")
        except NotFound:
            return None
        script = (service.get("default_environment") or {}).get("script") or {}
        return script.get("migration_tag") or None

    @staticmethod
    def _pending_migrations(
        project: WorkerProject, server_tag: str | None
    ) -> dict[str, Any] | None:
        """What wrangler sends: the steps after the server's tag, or all of them
        when the server's tag is unknown to the config."""
        if not project.migrations:
            return None
        tags = [m.tag for m in project.migrations]
        if server_tag == tags[-1]:
            return None
        start = tags.index(server_tag) + 1 if server_tag in tags else 0
        migrations: dict[str, Any] = {}
        if server_tag:
            migrations["old_tag"] = server_tag
        migrations["new_tag"] = tags[-1]
        migrations["steps"] = [m.steps for m in project.migrations[start:]]
        return migrations

    def _ensure_kv(
        self, account: TemporaryAccount, title: str, progress: Progress
    ) -> str:
        page = 1
        while True:
            found = self._account_call(
                account,
                "GET",
                "storage/kv/namespaces",
                query={"per_page": 100, "page": page},
            )
            for namespace in found or []:
                if namespace.get("title") == title:
                    return str(namespace["id"])
            if len(found or []) < 100:
                break
            page += 1
        progress(f"Creating KV namespace {title}…")
        made = self._account_call(
            account, "POST", "storage/kv/namespaces", json_body={"title": title}
        )
        return str(made["id"])

    def _ensure_d1(
        self, account: TemporaryAccount, name: str, progress: Progress
    ) -> str:
        try:
            found = self._account_call(
                account, "GET", f"d1/database/{urllib.parse.quote(name, safe='')}"
            )
            return str(found["uuid"])
        except NotFound:
            pass
        progress(f"Creating D1 database {name}…")
        made = self._account_call(
            account, "POST", "d1/database", json_body={"name": name}
        )
        return str(made["uuid"])

    def _find_queue(
        self, account: TemporaryAccount, name: str
    ) -> dict[str, Any] | None:
        found = self._account_call(
            account, "GET", "queues", query={"name": name, "page": 1}
        )
        return next((q for q in found or [] if q.get("queue_name") == name), None)

    def _ensure_queue(
        self, account: TemporaryAccount, name: str, progress: Progress
    ) -> None:
        if self._find_queue(account, name) is None:
            progress(f"Creating queue {name}…")
            self._account_call(
                account, "POST", "queues", json_body={"queue_name": name}
            )

    def _attach_consumer(
        self,
        account: TemporaryAccount,
        worker: str,
        consumer: QueueConsumer,
        progress: Progress,
    ) -> None:
        queue = self._find_queue(account, consumer.queue)
        if queue is None:
            raise NotFound(
                status=404,
                path="queues",
                errors=[{"code": 11000, "message": f"Queue {consumer.queue} is gone."}],
            )
        body: dict[str, Any] = {
            "type": "worker",
            "script_name": worker,
            "settings": consumer.settings,
        }
        if consumer.dead_letter_queue:
            body["dead_letter_queue"] = consumer.dead_letter_queue
        existing = next(
            (
                c
                for c in queue.get("consumers") or []
                if c.get("type") == "worker"
                and worker in (c.get("script"), c.get("service"))
            ),
            None,
        )
        path = f"queues/{queue['queue_id']}/consumers"
        progress(f"Attaching {worker} as consumer of {consumer.queue}…")
        if existing is None:
            self._account_call(account, "POST", path, json_body=body)
        else:
            self._account_call(
                account, "PUT", f"{path}/{existing['consumer_id']}", json_body=body
            )

    def _upload_assets(
        self,
        account: TemporaryAccount,
        project: WorkerProject,
        deployment: Deployment,
        progress: Progress,
    ) -> str:
        """Send the manifest, upload the files the server lacks, and return the
        completion token for the script upload."""
        assert project.assets is not None
        bundle = project.assets
        deployment.assets_total = len(bundle.files)
        session = self._account_call(
            account,
            "POST",
            f"workers/scripts/{project.name}/assets-upload-session",
            json_body={"manifest": bundle.manifest},
        )
        jwt, buckets = session.get("jwt"), session.get("buckets") or []
        files = bundle.by_hash()
        completion = jwt if not buckets else None
        for bucket in buckets:
            missing = [h for h in bucket if h not in files]
            if missing:
                raise MalformedResponse(
                    f"The server asked for files not in the manifest: {missing}.",
                    status=200,
                    path="assets-upload-session",
                )
            progress(f"Uploading {len(bucket)} asset file(s)…")
            parts = [
                multipart.Part(
                    h,
                    base64.b64encode(files[h].file.read_bytes()),
                    filename=h,
                    content_type=asset_type(files[h].path),
                )
                for h in bucket
            ]
            body, content_type = multipart.encode(parts)
            answer = self.call(
                "POST",
                self._scoped(account, "workers/assets/upload"),
                token=jwt,
                query={"base64": "true"},
                body=body,
                content_type=content_type,
            )
            deployment.assets_uploaded += len(bucket)
            if isinstance(answer, dict) and answer.get("jwt"):
                completion = answer["jwt"]
        if not completion:
            raise MalformedResponse(
                "The asset upload never completed (no completion token).",
                status=200,
                path="workers/assets/upload",
            )
        return str(completion)


def default_account_file() -> Path:
    """Where the CLI keeps its temporary account, like wrangler's cache file."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "claimportal" / "temporary-account.json"
