"""/healthz: database, broker and cache, as JSON with 200 when all answer and 503 otherwise."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def test_healthy_stack_answers_200(client):
    """All three checks pass on the embedded stack: 200, each check ok, never cached."""
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "broker": True,
        "cache": True,
    }
    assert response["Cache-Control"] == "no-store"


def test_unreachable_broker_answers_503(client, settings):
    """A broker that does not answer makes the process unhealthy, naming the broker."""
    settings.CELERY_BROKER_URL = UNREACHABLE_REDIS
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False and body["checks"]["broker"]["error"]
    assert body["checks"]["database"]["ok"] is True


def test_unreachable_cache_answers_503(client, settings):
    """A cache that does not answer makes the process unhealthy, naming the cache."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": UNREACHABLE_REDIS,
        }
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["cache"]["ok"] is False


def test_real_redis_broker_and_cache(client, settings, redis_url):
    """With Redis as broker and cache (production shape) the checks pass against it."""
    settings.CELERY_BROKER_URL = redis_url
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    }
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()


def test_health_answers_on_the_container_address_behind_https_redirect(client, settings):
    """In production (SSL redirect, one allowed host) the container's own plain-HTTP call
    to 127.0.0.1 still gets the report, not a redirect or a bad-host error."""
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["crm.example.com"]
    response = client.get("/healthz", HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == 200
    assert client.get("/accounts/login/", HTTP_HOST="127.0.0.1:8000").status_code == 400


def test_health_refuses_writes(client):
    """Only GET and HEAD."""
    assert client.post("/healthz").status_code == 405


SECURITY_HEADERS = (
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "Strict-Transport-Security",
)


def test_healthz_carries_the_same_security_headers_as_other_pages(client, settings):
    """/healthz answers before the other middleware, yet gets every security header a page
    gets, with the same values (HSTS too, over HTTPS)."""
    settings.SECURE_HSTS_SECONDS = 3600
    page = client.get("/accounts/login/", secure=True)
    health = client.get("/healthz", secure=True)
    assert health.status_code == 200
    expected = {name: page[name] for name in SECURITY_HEADERS if name in page}
    assert set(expected) == set(SECURITY_HEADERS)
    assert {name: health.get(name) for name in SECURITY_HEADERS} == expected
    plain = client.get("/healthz")  # the container's own plain-HTTP check: still answered
    assert plain.status_code == 200 and "Strict-Transport-Security" not in plain
