import os
from datetime import timedelta

from celery import Celery
from celery.schedules import crontab

# What serves a deployment runs on production settings unless told otherwise
# (bin/run and the tests say which they want).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claimportal.settings.prod")

app = Celery("claimportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def schedule_periodic_tasks(sender: Celery, **kwargs) -> None:
    """The beat schedule, declared once; each entry expires before the next run."""
    from django.conf import settings

    interval = timedelta(seconds=settings.CLAIMPORTAL_PURGE_INTERVAL_SECONDS)
    poll = timedelta(seconds=settings.CLAIMPORTAL_PREVIEW_DELIVERY_POLL_SECONDS)
    sender.conf.beat_schedule = {
        "purge-expired-accounts": {
            "task": "accounts.tasks.purge_expired_accounts",
            "schedule": interval,
            "options": {"expires": interval.total_seconds()},
        },
        "dispatch-queue-batches": {
            "task": "accounts.tasks.dispatch_queue_batches",
            "schedule": poll,
            "options": {"expires": poll.total_seconds()},
        },
        "dispatch-crons": {
            "task": "accounts.tasks.dispatch_crons",
            "schedule": crontab(minute="*"),
            "options": {"expires": 50},
        },
    }
