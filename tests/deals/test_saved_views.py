"""Saved views of the deal list and the board: private unless shared, the team's default, and
never a window on another team's deals (the filters run with the viewer's own visibility)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError
from django.urls import reverse

from deals import services
from deals.models import SavedView
from deals.selectors import saved_views_for
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def _save(by, name="Closing soon", page="deal_list", query="state=open&sort=-amount", **kw):
    from django.http import QueryDict

    return services.saved_view_create(by=by, page=page, name=name, params=QueryDict(query), **kw)


def _menu(client, user, url="deals:deal_list", query="sort=close"):
    client.force_login(user)
    return client.get(reverse(url) + f"?{query}").content.decode()


def test_a_view_keeps_only_the_pages_filters_and_sort(rep):
    view = _save(rep, query="state=open&sort=-amount&page=3&csrfmiddlewaretoken=x&q=")
    assert view.params == {"state": "open", "sort": "-amount"}
    board = _save(rep, page="board", query="owner=me&close=2026-12&sort=title&team=2")
    assert board.params == {"owner": "me", "close": "2026-12", "team": "2"}


def test_views_are_private_unless_shared(client, rep, teammate, other_rep):
    private = _save(rep, name="Mine only")
    assert [v.name for v in saved_views_for(teammate)] == []
    assert "Mine only" not in _menu(client, teammate)
    assert "Mine only" in _menu(client, rep)
    client.force_login(teammate)
    response = client.post(reverse("deals:saved_view_change", args=[private.pk]), {"op": "delete"})
    assert response.status_code == 404  # not even a hint that it exists

    services.saved_view_update(view=private, by=rep, shared=True)
    assert [v.name for v in saved_views_for(teammate)] == ["Mine only"]
    assert "Shared by Rita" in _menu(client, teammate)
    assert saved_views_for(other_rep) == []  # another team never sees it
    client.force_login(other_rep)
    assert client.get(reverse("deals:saved_views")).content.decode().count("Mine only") == 0


def test_a_shared_view_never_shows_another_teams_deals(client, rep, make_deal, other_rep):
    """The view stores filters, not deals: whoever opens its address sees only what they may
    see. Another team's rep following the link (even with an owner filter naming Rita) gets
    nothing of Team North's."""
    make_deal(title="North secret plan")
    view = _save(rep, name="Rita's", query=f"owner={rep.pk}&q=north", shared=True)
    client.force_login(rep)
    assert (
        "North secret plan" in client.get(view_url := saved_views_for(rep)[0].url).content.decode()
    )
    client.force_login(other_rep)
    body = client.get(view_url).content.decode()
    assert "North secret plan" not in body and "No deals match these filters" in body
    assert view.pk not in [v.pk for v in saved_views_for(other_rep)]


def test_reps_who_may_not_read_their_team_see_only_their_own_in_a_shared_view(
    client, rep, teammate, make_deal, team
):
    team.reps_see_team_deals = False
    team.save()
    make_deal(title="Rita's big one")
    view = _save(rep, name="Everything open", query="state=open", shared=True)
    client.force_login(teammate)
    body = client.get(saved_views_for(teammate)[0].url).content.decode()
    assert view.name in body and "Rita's big one" not in body


def test_only_the_owner_renames_or_deletes(rep, teammate):
    view = _save(rep, shared=True)
    with pytest.raises(services.NotPermitted):
        services.saved_view_update(view=view, by=teammate, name="Hijacked")
    with pytest.raises(services.NotPermitted):
        services.saved_view_delete(view=view, by=teammate)
    services.saved_view_update(view=view, by=rep, name="Renamed")
    assert SavedView.objects.get().name == "Renamed"
    services.saved_view_delete(view=view, by=rep)
    assert not SavedView.objects.exists()


def test_names_are_needed_and_unique_per_page(rep):
    _save(rep, name="Q4")
    with pytest.raises(services.DealError, match="already have a view named"):
        _save(rep, name="q4")
    _save(rep, name="Q4", page="board")  # another page: fine
    with pytest.raises(services.DealError, match="Give the view a name"):
        _save(rep, name="   ")
    with pytest.raises(services.DealError, match="single line"):
        _save(rep, name="Two\nlines")


def test_someone_without_a_team_cannot_share(admin_user):
    with pytest.raises(services.DealError, match="only be private"):
        _save(admin_user, shared=True)
    assert _save(admin_user).shared is False


def test_the_team_default_opens_when_the_page_has_no_filters(client, rep, manager, teammate):
    view = _save(rep, name="Open by amount", shared=True)
    with pytest.raises(services.NotPermitted):
        services.saved_view_set_team_default(view=view, by=teammate)
    private = _save(manager, name="Manager's own")
    with pytest.raises(services.DealError, match="shared with the team"):
        services.saved_view_set_team_default(view=private, by=manager)
    services.saved_view_set_team_default(view=view, by=manager)

    client.force_login(teammate)
    response = client.get(reverse("deals:deal_list"))
    assert response.status_code == 302
    assert response["Location"] == f"/deals/?state=open&sort=-amount&view={view.pk}"
    page = client.get(response["Location"]).content.decode()
    assert "View: Open by amount" in page and "?view=none" in page
    assert client.get(reverse("deals:deal_list") + "?view=none").status_code == 200
    assert client.get(reverse("deals:board")).status_code == 200  # only the list's default

    # One default per team and page; unsharing a default ends it.
    other = _save(manager, name="Manager's shared", shared=True)
    services.saved_view_set_team_default(view=other, by=manager)
    view.refresh_from_db()
    assert not view.team_default
    services.saved_view_update(view=other, by=manager, shared=False)
    other.refresh_from_db()
    assert not other.team_default
    assert client.get(reverse("deals:deal_list")).status_code == 200


def test_the_database_holds_one_default_per_team_and_page(rep, manager):
    first = _save(rep, name="A", shared=True)
    second = _save(rep, name="B", shared=True)
    services.saved_view_set_team_default(view=first, by=manager)
    with pytest.raises(IntegrityError):
        SavedView.objects.filter(pk=second.pk).update(team_default=True)


def test_saving_and_managing_from_the_pages(client, rep, manager):
    client.force_login(rep)
    response = client.post(
        reverse("deals:saved_view_create"),
        {"page": "board", "name": "My December", "query": "owner=me&close=2026-12", "shared": "on"},
    )
    view = SavedView.objects.get()
    assert (view.page, view.params, view.shared) == (
        "board",
        {"owner": "me", "close": "2026-12"},
        True,
    )
    assert response["Location"] == f"/board/?owner=me&close=2026-12&view={view.pk}"
    assert "View: My December" in client.get(response["Location"]).content.decode()
    url = reverse("deals:saved_view_change", args=[view.pk])
    client.post(url, {"op": "rename", "name": "December", "shared": "on"})
    view.refresh_from_db()
    assert view.name == "December" and view.shared
    response = client.post(url, {"op": "default"}, follow=True)
    assert "Only the team&#x27;s manager can set the team&#x27;s default view." in (
        response.content.decode()
    )
    client.force_login(manager)
    page = client.get(reverse("deals:saved_views")).content.decode()
    assert "December" in page and "Make team default" in page and "Delete" not in page
    client.post(url, {"op": "default"})
    view.refresh_from_db()
    assert view.team_default
    assert client.get(reverse("deals:board"))["Location"].startswith("/board/?owner=me")


def test_a_new_teammate_sees_the_teams_shared_views(rep, team):
    _save(rep, name="Team pipeline", shared=True)
    newcomer = make_user("nina", team)
    assert [v.name for v in saved_views_for(newcomer, "deal_list")] == ["Team pipeline"]
