"""A bulk action on many deals runs on a real `celery worker` (Redis, PostgreSQL): queued from
the deal list's "all N matching", progress on the job page, and a worker killed mid-job is
resumed without acting on any deal twice."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest
from django.urls import reverse

from deals import services
from deals.models import BulkJob, BulkJobItem, Deal, DealEvent
from tests.followups.workers import Worker, purge

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue(redis_url, settings):
    name = f"test-bulk-{uuid.uuid4().hex[:10]}"
    settings.BULK_JOBS_QUEUE = name
    settings.BULK_INLINE_MAX = 10
    yield name
    purge(redis_url, name)


def _deals(rep, account, n: int) -> list[Deal]:
    return [
        services.deal_create(by=rep, account=account, title=f"Bulk {i:03}", amount=Decimal(1))
        for i in range(n)
    ]


def _start(tmp_path, redis_url, queue, name) -> Worker:
    return Worker(
        tmp_path, redis_url=redis_url, queue=queue, name=name, env={}, beat=False, timeout=90
    ).start()


def _wait(condition, worker, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if not worker.alive():
            pytest.fail(f"worker died:\n{worker.log()}")
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}:\n{worker.log()}")


def _finished(job) -> int:
    return job.items.exclude(outcome=BulkJobItem.Outcome.PENDING).count()


def _archive_events(deal) -> int:
    return DealEvent.objects.filter(deal=deal, data__archived=True).count()


def test_a_worker_runs_a_large_bulk_action_from_the_list(
    postgres, redis_url, tmp_path, queue, client, rep, account
):
    deals = _deals(rep, account, 25)
    client.force_login(rep)
    response = client.post(
        reverse("deals:deals_bulk"),
        {"all_matching": "on", "action": "archive", "reason": "Old leads", "query": "q=Bulk"},
    )
    job = BulkJob.objects.get()
    assert response["Location"].startswith(job.get_absolute_url())
    assert job.total == 25 and job.status == BulkJob.Status.QUEUED
    page = client.get(job.get_absolute_url()).content.decode()
    assert "Waiting for the worker" in page and 'hx-trigger="every 1s"' in page
    worker = _start(tmp_path, redis_url, queue, "bulk")
    try:
        _wait(lambda: BulkJob.objects.get().status == "done", worker, "the job to finish")
    finally:
        worker.kill()
    assert set(job.items.values_list("outcome", flat=True)) == {"done"}
    for deal in deals:
        deal.refresh_from_db()
        assert deal.archived_at is not None and _archive_events(deal) == 1
    page = client.get(job.get_absolute_url()).content.decode()
    assert "25 deals archived." in page and 'hx-trigger="every 1s"' not in page


def test_a_job_whose_worker_died_is_resumed_and_acts_on_each_deal_once(
    postgres, redis_url, tmp_path, queue, client, rep, account
):
    deals = _deals(rep, account, 120)
    client.force_login(rep)
    client.post(
        reverse("deals:deals_bulk"),
        {"deal": [d.pk for d in deals], "action": "archive", "reason": "Clean-up"},
    )
    job = BulkJob.objects.get()
    worker = _start(tmp_path, redis_url, queue, "first")
    try:
        _wait(lambda: _finished(job) >= 1, worker, "the first deals")
    finally:
        worker.kill()  # SIGKILL mid-job
    done_before = _finished(job)
    assert 1 <= done_before < 120, "the worker finished before it could be killed"
    job.refresh_from_db()
    assert job.status == BulkJob.Status.RUNNING

    response = client.post(reverse("deals:bulk_job_resume", args=[job.pk]), follow=True)
    assert "Resumed" in response.content.decode()
    worker = _start(tmp_path, redis_url, queue, "second")
    try:
        _wait(lambda: BulkJob.objects.get().status == "done", worker, "the resumed job")
    finally:
        worker.kill()
    assert set(job.items.values_list("outcome", flat=True)) == {"done"}
    for deal in deals:
        assert _archive_events(deal) == 1  # nothing half-written, nothing done twice
    assert Deal.objects.filter(archived_at__isnull=True).count() == 0
