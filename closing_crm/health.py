"""`/healthz`: is this process able to serve? Checks the database, the Celery broker and the cache.

Served by a middleware placed first, so the check answers on the container's own address
(docker-compose calls http://127.0.0.1:8000/healthz) without host validation or the HTTPS
redirect meant for browsers getting in the way, and without touching sessions or auth.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse

HEALTH_PATH = "/healthz"
BROKER_TIMEOUT_SECONDS = 3


def check_database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        if cursor.fetchone()[0] != 1:
            raise RuntimeError("SELECT 1 did not return 1")


def check_broker() -> None:
    from closing_crm.celery import app

    with app.connection_for_write(
        settings.CELERY_BROKER_URL, connect_timeout=BROKER_TIMEOUT_SECONDS
    ) as connection:
        connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)


def check_cache() -> None:
    key, value = f"healthz:{uuid.uuid4().hex}", uuid.uuid4().hex
    cache.set(key, value, timeout=10)
    try:
        if cache.get(key) != value:
            raise RuntimeError("a value written to the cache could not be read back")
    finally:
        cache.delete(key)


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "broker": check_broker,
    "cache": check_cache,
}


def health_report() -> tuple[bool, dict]:
    """Run every check; each reports ok or its error, and how long it took."""
    results = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
        except Exception as error:  # a health check reports any failure instead of raising
            results[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
        else:
            results[name] = {"ok": True}
        results[name]["ms"] = round((time.monotonic() - started) * 1000, 1)
    healthy = all(r["ok"] for r in results.values())
    return healthy, {"status": "ok" if healthy else "unavailable", "checks": results}


def healthz(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return JsonResponse({"detail": "Use GET."}, status=405, headers={"Allow": "GET, HEAD"})
    healthy, report = health_report()
    response = JsonResponse(report, status=200 if healthy else 503)
    response["Cache-Control"] = "no-store"
    return response


class HealthCheckMiddleware:
    """Answers /healthz before any other middleware runs, with the same security headers as
    every other response (set by the same middleware classes, without their redirects)."""

    #: The middleware whose `process_response` adds security headers to every page.
    HEADER_MIDDLEWARE = (
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        "csp.middleware.CSPMiddleware",
    )

    def __init__(self, get_response):
        from django.utils.module_loading import import_string

        self.get_response = get_response
        self.header_middleware = [
            import_string(path)(get_response) for path in self.HEADER_MIDDLEWARE
        ]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.rstrip("/") == HEALTH_PATH:
            response = healthz(request)
            for middleware in self.header_middleware:
                response = middleware.process_response(request, response)
            return response
        return self.get_response(request)
