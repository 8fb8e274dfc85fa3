"""Celery tasks: adapters that take ids, call one service, and declare limits."""

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from accounts.services import health, purge

# Seconds of work one purge run takes on before leaving the rest to the next
# run; the soft and hard limits sit above it, for a run stuck on a lock or I/O.
PURGE_TIME_BUDGET = 120
PURGE_SOFT_TIME_LIMIT = 240
PURGE_TIME_LIMIT = 300


@shared_task(name="accounts.tasks.check_database", time_limit=30)
def check_database() -> bool:
    """Run from the worker: proves the worker reaches the database."""
    return health.check_database()


@shared_task(
    name="accounts.tasks.purge_expired_accounts",
    soft_time_limit=PURGE_SOFT_TIME_LIMIT,
    time_limit=PURGE_TIME_LIMIT,
    # A lost database connection is worth another try; anything else is a bug.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    max_retries=3,
)
def purge_expired_accounts() -> dict[str, int | float]:
    """Run by beat every CLAIMPORTAL_PURGE_INTERVAL_SECONDS. Two at once are
    safe: the service locks rows with SKIP LOCKED."""
    result = purge.purge_expired_accounts(
        now=timezone.now(),
        batch_size=settings.CLAIMPORTAL_PURGE_BATCH_SIZE,
        time_budget=PURGE_TIME_BUDGET,
    )
    return result.as_dict()
