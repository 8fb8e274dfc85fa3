"""What the supervisor reads from the database, as the plain calls it takes
(``preview_runtime.supervisor.Lookups``). Each call opens its connection
fresh when the old one went stale and turns a database failure into the
core's RecordsUnavailable, so the loop never sees Django."""

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from accounts.models import WorkerVersion
from preview_runtime.config import RuntimeConfig
from preview_runtime.render import WorkerPaths
from preview_runtime.sandbox import Identity
from preview_runtime.supervisor import Lookups, RecordsUnavailable
from preview_runtime.targets import Desired

from . import placement
from .identity import identity_for
from .specs import account_for_token, write_version
from .state import desired_previews


def _records(call: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(call)
    def guarded(*args: Any) -> Any:
        close_old_connections()
        try:
            return call(*args)
        except (DatabaseError, WorkerVersion.DoesNotExist) as error:
            close_old_connections()
            raise RecordsUnavailable(str(error)) from error

    return guarded


def _desired(config: RuntimeConfig) -> Callable[[], Desired]:
    @_records
    def desired() -> Desired:
        now = timezone.now()
        placement.report_in(name=config.name, state_dir=config.state_dir, now=now)
        return desired_previews(now=now, runtime=config.name)

    return desired


@_records
def _write_version(
    version_id: str, directory: Path, paths: WorkerPaths, banner: str, assets: bool
) -> Path:
    version = WorkerVersion.objects.select_related("script").get(pk=version_id)
    return write_version(
        version=version,
        directory=directory,
        paths=paths,
        heap_mb=settings.CLAIMPORTAL_PREVIEW_HEAP_MB,
        banner=banner,
        assets=assets,
    )


@_records
def _identity(account_id: str) -> Identity:
    return identity_for(account_id=account_id)


def _leave(config: RuntimeConfig) -> Callable[[], None]:
    @_records
    def leave() -> None:
        placement.report_out(name=config.name)

    return leave


def lookups(config: RuntimeConfig) -> Lookups:
    """The lookups of the runtime ``config`` describes: it reports in and
    reads the accounts placed on it."""
    return Lookups(
        desired=_desired(config),
        write_version=_write_version,
        identity=_identity,
        account_of_token=lambda token: account_for_token(token=token),
        leave=_leave(config),
    )
