"""Dashboard snapshots (pipeline/snapshots.py): the rendered figures are kept for a short
while per scope, role, filters, language and time zone; a user's own change shows at once,
"Refresh now" recomputes, and a cache outage only costs the shortcut."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from deals import services
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

CLOSED_NONE = "0 won / 0 closed in the period"
CLOSED_ONE = "0 won / 1 closed in the period"


@pytest.fixture
def snapshots_on(settings):
    """Snapshots kept for a minute, in this process's memory (not the Redis that parallel
    test workers share)."""
    settings.DASHBOARD_CACHE_SECONDS = 60
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "snapshot-tests",
        },
    }
    from django.core.cache import cache

    cache.clear()


def _get(client, url="/dashboard/", **params):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode(), len(captured)


def test_a_second_view_is_served_from_the_snapshot(snapshots_on, client, manager, deal):
    """The first view computes the figures, the second reads them (a handful of queries)
    and says when they were computed."""
    client.force_login(manager)
    first, computed = _get(client)
    second, served = _get(client)
    assert CLOSED_NONE in first and CLOSED_NONE in second
    assert "Figures as of" in second and "Refresh now" in second
    assert served <= 8 < computed


def test_others_changes_show_after_refresh_and_own_changes_at_once(
    snapshots_on, client, manager, rep, deal
):
    """A rep's change made elsewhere shows on the manager's kept figures after "Refresh
    now"; the manager's own change (a request that changes something) shows at once."""
    client.force_login(manager)
    assert CLOSED_NONE in _get(client)[0]
    services.deal_transition(
        deal=deal, transition="mark_lost", by=rep, loss_reason="price", reason="No budget."
    )
    assert CLOSED_NONE in _get(client)[0]  # kept: at most DASHBOARD_CACHE_SECONDS old
    assert CLOSED_ONE in _get(client, fresh="1")[0]
    # The manager's own change, made in the browser: another deal lost.
    second = services.deal_create(by=rep, account=deal.account, title="Second")
    assert CLOSED_ONE in _get(client)[0]
    response = client.post(
        reverse("deals:deal_transition", args=[second.pk, "mark_lost"]),
        {"expected_state": "intent_spotted", "loss_reason": "timing", "reason": "Next year."},
    )
    assert response.status_code < 400
    assert "crm_changed" in response.cookies
    assert "0 won / 2 closed in the period" in _get(client)[0]


def test_snapshots_are_kept_per_scope_and_language(
    snapshots_on, client, manager, deal, other_team, other_rep
):
    """Another team's manager never sees this team's figures; German is not English."""
    client.force_login(manager)
    assert CLOSED_NONE in _get(client)[0]
    olga = make_user("olga", other_team, "manager")
    account = services.account_create(by=other_rep, team=other_team, name="Other AG")
    lost = services.deal_create(by=other_rep, account=account, title="Theirs")
    services.deal_transition(
        deal=lost, transition="mark_lost", by=other_rep, loss_reason="price", reason="No."
    )
    client.force_login(olga)
    assert CLOSED_ONE in _get(client)[0]
    manager.language = "de"
    manager.save(update_fields=["language"])
    client.force_login(manager)
    german, _ = _get(client)
    assert "0 gewonnen / 0 abgeschlossen im Zeitraum" in german
    assert CLOSED_NONE not in german


def test_coaching_pages_have_their_own_snapshots(snapshots_on, client, manager, deal):
    """The coaching page keeps its figures too, per page of the ranking."""
    client.force_login(manager)
    first, computed = _get(client, "/dashboard/coaching/")
    second, served = _get(client, "/dashboard/coaching/")
    assert deal.title in first and deal.title in second
    assert served < computed
    assert "Figures as of" in second
    _third, page_two = _get(client, "/dashboard/coaching/", page="2")
    assert page_two == computed  # another page of the ranking: computed, not page 1's


def test_a_cache_outage_still_shows_the_figures(settings, client, manager, deal):
    """With the cache unreachable (nothing listens on its port) the dashboard computes its
    figures on every request instead of failing."""
    settings.DASHBOARD_CACHE_SECONDS = 60
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # the discard port: connection refused
        },
    }
    client.force_login(manager)
    html, _ = _get(client)
    assert CLOSED_NONE in html
    assert "Figures as of" in html  # computed now, said so


def test_snapshots_off_computes_every_time(settings, client, manager, deal, rep):
    """DASHBOARD_CACHE_SECONDS=0: no snapshot, no note."""
    settings.DASHBOARD_CACHE_SECONDS = 0
    client.force_login(manager)
    html, _ = _get(client)
    assert "Figures as of" not in html
    services.deal_transition(
        deal=deal, transition="mark_lost", by=rep, loss_reason="price", reason="No."
    )
    assert CLOSED_ONE in _get(client)[0]


def test_figure_csv_is_kept_like_the_page(snapshots_on, client, manager, deal, rep):
    """A figure's CSV is computed once per snapshot too; fresh=1 recomputes it."""
    client.force_login(manager)
    url = reverse("pipeline:dashboard_csv", args=["reps"])
    first, computed = _get(client, url)
    second, served = _get(client, url)
    assert first == second and "rita" in first.lower()
    assert served < computed
    services.deal_transition(
        deal=deal, transition="mark_lost", by=rep, loss_reason="price", reason="No."
    )
    fresh, _ = _get(client, url, fresh="1")
    assert fresh != first
