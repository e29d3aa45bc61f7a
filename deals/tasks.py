"""Celery tasks of the deals app: bulk actions on many deals."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="deals.bulk_job_run", acks_late=True, ignore_result=True)
def bulk_job_task(job_id: int) -> None:
    """Run a bulk job's waiting deals. Delivered twice or again after a worker died, it only
    does what is left: each deal's result is committed with the change it made."""
    services.bulk_job_run(job_id=job_id)
