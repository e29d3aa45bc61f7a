"""The one-task-per-item Celery floor: a task that only increments a Redis counter.

bench/dispatch.py enqueues N of these, runs a real worker (prefork, 2 processes, acks_late
from the project settings) and times them, to compare the reminder dispatcher against
what Celery itself can do with one task per item on this machine.
"""

from __future__ import annotations

import os

import redis
from celery import shared_task

_client = None


@shared_task(name="bench.floor_incr", acks_late=True, ignore_result=True)
def floor_incr(key: str) -> None:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["REDIS_URL"])
    _client.incr(key)
