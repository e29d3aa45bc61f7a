"""Analytics reads on a PostgreSQL streaming replica (scale-out), writes on the primary.

With `DATABASE_REPLICA_URL` set, the settings add a `replica` database and this router.
Only code that asks for it reads there: views wrapped in `reads_from_replica` (dashboards,
coaching, drill-downs, CSV exports). Everything else (every write, sessions, auth, the
workspace pages, the API) stays on the primary, and so does a request that follows the
user's own change: after any unsafe request (POST, PUT, PATCH, DELETE) the response pins
the browser to the primary for `REPLICA_PIN_SECONDS`, longer than replication lag, so a
user always sees what they just changed. Reads inside a transaction stay on the primary.

https://docs.djangoproject.com/en/5.2/topics/db/multi-db/#automatic-database-routing
"""

from __future__ import annotations

import contextvars
import functools
import time

from django.conf import settings
from django.db import connections

REPLICA = "replica"
PIN_COOKIE = "crm_primary"
#: When this browser last changed something (Unix time): dashboard snapshots older than
#: that are recomputed, so users always see their own changes (pipeline.snapshots).
CHANGED_COOKIE = "crm_changed"

_analytics = contextvars.ContextVar("analytics_reads", default=False)


def replica_configured() -> bool:
    return settings.DATABASE_REPLICA_ALIAS == REPLICA


class AnalyticsReplicaRouter:
    """Sends reads made under `reads_from_replica` to the replica, all else to the primary."""

    def db_for_read(self, model, **hints):
        if _analytics.get() and replica_configured() and not connections["default"].in_atomic_block:
            return REPLICA
        return "default"

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica is a copy of the same database

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"


def reads_from_replica(view):
    """Run the view's reads on the replica unless the browser is pinned to the primary."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.COOKIES.get(PIN_COOKIE):
            return view(request, *args, **kwargs)
        token = _analytics.set(True)
        try:
            response = view(request, *args, **kwargs)
            if getattr(response, "streaming", False):
                # A streamed CSV reads while it is sent: keep the reads on the replica.
                response.streaming_content = _on_replica(response.streaming_content)
            return response
        finally:
            _analytics.reset(token)

    return wrapper


def _on_replica(chunks):
    iterator = iter(chunks)
    while True:
        token = _analytics.set(True)
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        finally:
            _analytics.reset(token)
        yield chunk


class PinToPrimaryMiddleware:
    """After a user's change, their next reads come from the primary for a few seconds, and
    no dashboard snapshot older than the change is shown to them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return response
        cookie = {"httponly": True, "samesite": "Lax", "secure": settings.SESSION_COOKIE_SECURE}
        response.set_cookie(
            CHANGED_COOKIE,
            f"{time.time():.3f}",
            max_age=max(settings.DASHBOARD_CACHE_SECONDS, 1),
            **cookie,
        )
        if replica_configured():
            response.set_cookie(PIN_COOKIE, "1", max_age=settings.REPLICA_PIN_SECONDS, **cookie)
        return response
