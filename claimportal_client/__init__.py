"""A Python client for claimportal's agent API: temporary accounts for proof of
work, deploys of wrangler projects (Worker, assets, KV, D1, Durable Objects,
queues), and the claim status the human's decision leads to.

Standard library only, plus ``blake3`` for asset hashes, so a platform backend
can vendor the folder as it is.

    from claimportal_client import Client, load_project

    client = Client("https://claims.example.com")
    account = client.create_account()
    deployment = client.deploy(account, load_project("my-worker/"))
    print("Click here to keep this deployment:", account.claim_url)
    print(client.wait_for_claim(account).state)
"""

from .client import (
    CLAIM_PROMPT,
    AccountStatus,
    Client,
    Deployment,
    TemporaryAccount,
)
from .errors import (
    ApiError,
    AuthenticationFailed,
    ChallengeRefused,
    ChallengeUnsupported,
    ClaimportalError,
    ConnectionFailed,
    MalformedResponse,
    NotFound,
    ProjectError,
    ProvisioningRefused,
    RateLimited,
)
from .pow import solve
from .project import WorkerProject, load_project

__all__ = [
    "CLAIM_PROMPT",
    "AccountStatus",
    "ApiError",
    "AuthenticationFailed",
    "ChallengeRefused",
    "ChallengeUnsupported",
    "ClaimportalError",
    "Client",
    "ConnectionFailed",
    "Deployment",
    "MalformedResponse",
    "NotFound",
    "ProjectError",
    "ProvisioningRefused",
    "RateLimited",
    "TemporaryAccount",
    "WorkerProject",
    "load_project",
    "solve",
]
