"""A real Celery worker on Redis executes our tasks."""

from accounts.tasks import check_database


def test_a_task_round_trips_through_the_broker_to_a_real_worker(celery_worker):
    result = check_database.apply_async(queue=celery_worker)
    assert result.get(timeout=30) is True
    assert result.successful()
