"""Celery tasks: adapters that take ids, call one service, and declare limits."""

from celery import shared_task

from accounts.services import health


@shared_task(name="accounts.tasks.check_database", time_limit=30)
def check_database() -> bool:
    """Run from the worker: proves the worker reaches the database."""
    return health.check_database()
