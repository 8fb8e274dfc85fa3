"""Celery tasks: adapters that take ids, call one service, and declare limits."""

from datetime import UTC, datetime

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from accounts.services import health, purge
from accounts.services.previews import delivery

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


# A batch or a cron not started within this many seconds is dropped: the next
# round (every second for batches) or the next minute (crons) takes over.
TRIGGER_EXPIRES = 50
# A handler may run for the runtime's request limit; the task stops a little
# after that whatever happens (prefork pools enforce it).
TRIGGER_SOFT_TIME_LIMIT = 40
TRIGGER_TIME_LIMIT = 60
# An account's places were all taken: try again each second, within the minute.
BUSY_RETRY_SECONDS = 1
BUSY_RETRIES = 45


class AccountBusy(Exception):
    """The account has as many batches and crons under way as it may."""


@shared_task(name="accounts.tasks.dispatch_queue_batches", time_limit=30)
def dispatch_queue_batches() -> int:
    """Run by beat every CLAIMPORTAL_PREVIEW_DELIVERY_POLL_SECONDS: one task
    per consumer with a batch due."""
    due = delivery.due_consumers(now=timezone.now())
    for consumer_id in due:
        deliver_queue_batch.apply_async((consumer_id,), expires=TRIGGER_EXPIRES)
    return len(due)


@shared_task(
    name="accounts.tasks.deliver_queue_batch",
    soft_time_limit=TRIGGER_SOFT_TIME_LIMIT,
    time_limit=TRIGGER_TIME_LIMIT,
)
def deliver_queue_batch(consumer_id: str) -> int | None:
    """One batch to one consumer; retries are the messages' own (max_retries,
    retry_delay, dead-letter queue). A busy account waits for the next round."""
    return delivery.deliver_batch(consumer_id=consumer_id, now=timezone.now())


@shared_task(name="accounts.tasks.dispatch_crons", time_limit=30)
def dispatch_crons(minute: str | None = None) -> int:
    """Run by beat at the start of every minute (``minute``: ISO 8601, for a
    minute fired by hand): one task per cron that fires in it."""
    moment = datetime.fromisoformat(minute) if minute else datetime.now(UTC)
    moment = moment.replace(second=0, microsecond=0)
    due = delivery.crons_due(minute=moment)
    for script_id, cron in due:
        run_cron.apply_async(
            (script_id, cron, moment.isoformat()), expires=TRIGGER_EXPIRES
        )
    return len(due)


@shared_task(
    bind=True,
    name="accounts.tasks.run_cron",
    soft_time_limit=TRIGGER_SOFT_TIME_LIMIT,
    time_limit=TRIGGER_TIME_LIMIT,
    max_retries=BUSY_RETRIES,
)
def run_cron(self, script_id: int, cron: str, scheduled: str) -> str:
    """One firing of one cron; a busy account's firing waits, it is not lost."""
    outcome = delivery.run_cron(
        script_id=script_id, cron=cron, scheduled=datetime.fromisoformat(scheduled)
    )
    if outcome is None:
        raise self.retry(exc=AccountBusy(), countdown=BUSY_RETRY_SECONDS)
    return outcome
