"""Shared fixtures: users, teams and deals built through the services, and service checks.

Tests that need an outside service (PostgreSQL, Redis, a Celery worker, Chromium)
use `require_service`: on a laptop it skips with the reason; under CI=true a
missing service fails the test instead, so CI never passes by skipping.
"""

from __future__ import annotations

import os
import shutil
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import translation

from deals import services
from deals.models import Team, User

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_service(available: bool, what: str) -> None:
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true but is not available.")
    pytest.skip(f"{what} not available on this machine")


@pytest.fixture(scope="session", autouse=True)
def _translations_compiled() -> None:
    """The .mo files are build output: compile the ones older than their .po (pure Python)."""
    from deals.management.commands.compile_translations import compile_catalogues

    compile_catalogues()


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Uploaded and generated files (contract PDFs) go to a temporary folder, not var/media."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _language_reset():
    """Each test starts in the default language: a request by a German-speaking user leaves
    German active in the thread (LocaleMiddleware activates per request, nothing resets),
    which would change the messages of the next test's direct service calls."""
    yield
    translation.activate(django_settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _dashboard_snapshots_off(settings):
    """Dashboards compute their figures on every request in tests (tests change data
    between two reads; parallel workers share Redis): tests/pipeline/test_snapshots.py
    turns snapshots on to test them."""
    settings.DASHBOARD_CACHE_SECONDS = 0


@pytest.fixture(scope="session")
def seal_files(tmp_path_factory):
    """One self-signed sealing certificate for the session (as signing_certificate_create
    makes for a new installation): making an RSA key per test would be slow."""
    from contracts.sealing import create_self_signed

    folder = tmp_path_factory.mktemp("signing")
    cert, key = folder / "seal-cert.pem", folder / "seal-key.pem"
    create_self_signed(cert_file=cert, key_file=key)
    return cert, key


@pytest.fixture(autouse=True)
def _sealing_certificate(settings, seal_files):
    """Completed contracts are sealed with the session's certificate; never a timestamp."""
    settings.SIGNING_CERT_FILE, settings.SIGNING_KEY_FILE = (str(p) for p in seal_files)
    settings.SIGNING_KEY_PASSWORD = ""
    settings.SIGNING_TSA_URL = ""


@pytest.fixture
def postgres(db):
    """Skip (or fail in CI) unless the test database is PostgreSQL."""
    require_service(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    return connection


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    ok = False
    if url:
        import redis

        try:
            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
            ok = True
        except redis.RedisError:
            ok = False
    require_service(ok, f"Redis (REDIS_URL={url or 'unset'})")
    return url


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = (
        os.environ.get("CHROMIUM_PATH")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    require_service(bool(path), "Chromium (apt-get install -y chromium)")
    return path


@pytest.fixture
def team(db) -> Team:
    return Team.objects.create(name="Team North", currency="EUR")


@pytest.fixture
def other_team(db) -> Team:
    return Team.objects.create(name="Team South", currency="USD")


def make_user(username: str, team: Team | None, role: str = User.Role.REP, **extra) -> User:
    user = User.objects.create_user(
        username=username,
        password="pw",
        team=team,
        role=role,
        email=f"{username}@example.com",
        first_name=username.title(),
        **extra,
    )
    return user


@pytest.fixture
def rep(team) -> User:
    return make_user("rita", team)


@pytest.fixture
def teammate(team) -> User:
    return make_user("tim", team)


@pytest.fixture
def manager(team) -> User:
    user = make_user("mona", team, User.Role.MANAGER)
    team.account_manager = user
    team.save()
    return user


@pytest.fixture
def other_rep(other_team) -> User:
    return make_user("otto", other_team)


@pytest.fixture
def other_manager(other_team) -> User:
    return make_user("olga", other_team, User.Role.MANAGER)


@pytest.fixture
def admin_user(db) -> User:
    return User.objects.create_superuser(username="root", password="pw", email="root@example.com")


@pytest.fixture
def account(rep):
    return services.account_create(by=rep, team=rep.team, name="Acme GmbH")


@pytest.fixture
def contact(rep, account):
    return services.contact_create(
        by=rep, account=account, first_name="Ann", last_name="Buyer", email="ann@acme.example"
    )


@pytest.fixture
def deal(rep, account):
    return services.deal_create(
        by=rep, account=account, title="Acme rollout", amount=Decimal("12000")
    )


@pytest.fixture
def make_deal(rep, account):
    def _make(**kwargs):
        kwargs.setdefault("title", "Another deal")
        kwargs.setdefault("amount", Decimal("1000"))
        by = kwargs.pop("by", rep)
        kwargs.setdefault("account", account)
        return services.deal_create(by=by, **kwargs)

    return _make


# --- moving deals in test set-ups, the way the product does ---------------------------


def record_ask(deal, by, answer: str = "yes"):
    """Ask for the sale through the one use case that moves a deal to `asked`."""
    return services.deal_ask_record(
        deal=deal, by=by, channel="call", statement="Shall we start on the 1st?", answer=answer
    )


def send_agreement(deal, by):
    """Put a version out for signature and move the deal as `contract_send` does, without
    rendering a PDF (for set-ups of pages and lists; contract tests use the real send)."""
    from contracts.models import ContractVersion

    number = deal.contract_versions.count() + 1
    ContractVersion.objects.create(
        deal=deal, number=number, status=ContractVersion.Status.SENT, provider="builtin"
    )
    return services.deal_transition(
        deal=deal, transition="send_agreement", by=by, use_case="contract_send"
    )
