"""Editing the close plan on the deal page: a step's title, owner, date and note, its place
in the list and skipping it, through the services (locked, audited, stale edits refused)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deals import services as deal_services
from deals.models import DealEvent
from deals.services import DealConflict, DealError, NotPermitted
from rooms import services
from rooms.models import PlanStep
from tests.concurrency import run_concurrently
from tests.rooms.test_access import other_deal_room  # noqa: F401  (fixture)


def close_titles(deal) -> list[str]:
    return list(
        PlanStep.objects.filter(deal=deal, phase="close")
        .order_by("position", "pk")
        .values_list("title", flat=True)
    )


def test_edit_changes_title_owner_date_and_note_with_one_audit_event(deal, rep, teammate, group):
    step = services.plan_step_add(deal=deal, by=rep, title="Security review", owner_user=rep)
    due = timezone.localdate() + dt.timedelta(days=20)
    services.plan_step_update(
        step=step,
        by=rep,
        expected_version=step.version,
        title="Security review (InfoSec)",
        owner_user=teammate,
        owner_contact=None,
        due_date=due,
        note="Send the SOC 2 report first",
    )
    step.refresh_from_db()
    assert (step.title, step.owner_user, step.due_date, step.note) == (
        "Security review (InfoSec)",
        teammate,
        due,
        "Send the SOC 2 report first",
    )
    event = DealEvent.objects.filter(deal=deal, kind="plan").order_by("-pk").first()
    assert event.actor == rep and "Security review (InfoSec)" in event.reason
    assert event.data["changes"]["owner"] == str(teammate)
    assert event.data["changes"]["due_date"] == due.isoformat()


def test_edit_refuses_bad_input_and_owners_from_the_wrong_side(
    deal, rep, group, make_user_contact, other_rep
):
    seller = services.plan_step_add(deal=deal, by=rep, title="Pricing sign-off")
    buyer = services.plan_step_add(deal=deal, by=rep, title="Legal", side="buyer")
    with pytest.raises(DealError, match="single line"):
        services.plan_step_update(step=seller, by=rep, title="a\nb")
    with pytest.raises(DealError, match="300"):
        services.plan_step_update(step=seller, by=rep, note="x" * 301)
    with pytest.raises(DealError, match="buying-group contact"):
        services.plan_step_update(step=seller, by=rep, owner_user=None, owner_contact=group)
    with pytest.raises(DealError, match="team"):
        services.plan_step_update(step=seller, by=rep, owner_user=other_rep)
    with pytest.raises(DealError, match="buying group"):
        services.plan_step_update(step=buyer, by=rep, owner_contact=make_user_contact)
    with pytest.raises(NotPermitted):
        services.plan_step_update(step=seller, by=other_rep, title="Mine now")
    seller.refresh_from_db()
    assert seller.title == "Pricing sign-off" and seller.note == ""


def test_a_stale_edit_is_refused_after_someone_else_changed_the_step(
    deal, rep, teammate, room_link
):
    step = services.plan_step_add(deal=deal, by=rep, title="Legal review", side="buyer")
    seen = step.version
    # A teammate changes the date; the buyer ticks it: each change makes the rep's form stale.
    services.plan_step_update(
        step=PlanStep.objects.get(pk=step.pk), by=rep, due_date=timezone.localdate()
    )
    with pytest.raises(DealConflict, match="changed “Legal review” meanwhile"):
        services.plan_step_update(
            step=step, by=rep, expected_version=seen, title="Legal review (DPA)"
        )
    fresh = PlanStep.objects.get(pk=step.pk)
    seen = fresh.version
    services.room_step_tick(link=room_link, step=PlanStep.objects.get(pk=step.pk))
    with pytest.raises(DealConflict):
        services.plan_step_update(step=fresh, by=rep, expected_version=seen, note="x")
    step.refresh_from_db()
    assert step.title == "Legal review" and step.note == ""
    # Moving another step does not make an edit stale (the place is not part of the version).
    services.plan_step_add(deal=deal, by=rep, title="Signature")
    services.plan_step_move(step=step, by=rep, direction="down")
    step.refresh_from_db()
    services.plan_step_update(step=step, by=rep, expected_version=step.version, note="DPA too")


def test_move_up_and_down_renumbers_and_audits(deal, rep, plan_template):
    services.plan_create_from_template(deal=deal, by=rep)
    # Template positions may repeat: the first move renumbers the phase 1..n.
    PlanStep.objects.filter(deal=deal, phase="close").update(position=1)
    before = close_titles(deal)
    second = PlanStep.objects.get(deal=deal, title=before[1])
    services.plan_step_move(step=second, by=rep, direction="up")
    assert close_titles(deal) == [before[1], before[0], *before[2:]]
    assert list(
        PlanStep.objects.filter(deal=deal, phase="close")
        .order_by("position")
        .values_list("position", flat=True)
    ) == list(range(1, len(before) + 1))
    services.plan_step_move(step=second, by=rep, direction="down")
    assert close_titles(deal) == before
    event = DealEvent.objects.filter(deal=deal, kind="plan").order_by("-pk").first()
    assert event.reason.endswith("moved down") and event.actor == rep
    first = PlanStep.objects.get(deal=deal, title=before[0])
    with pytest.raises(DealError, match="already first"):
        services.plan_step_move(step=first, by=rep, direction="up")
    last = PlanStep.objects.get(deal=deal, title=before[-1])
    with pytest.raises(DealError, match="already last"):
        services.plan_step_move(step=last, by=rep, direction="down")
    with pytest.raises(DealError):
        services.plan_step_move(step=first, by=rep, direction="sideways")
    # Onboarding steps keep their own order.
    onboarding = list(
        PlanStep.objects.filter(deal=deal, phase="onboarding").values_list("pk", "position")
    )
    services.plan_step_move(step=last, by=rep, direction="up")
    assert (
        list(PlanStep.objects.filter(deal=deal, phase="onboarding").values_list("pk", "position"))
        == onboarding
    )


def test_another_rep_cannot_move_a_step(deal, rep, other_rep):
    services.plan_step_add(deal=deal, by=rep, title="One")
    two = services.plan_step_add(deal=deal, by=rep, title="Two")
    with pytest.raises(NotPermitted):
        services.plan_step_move(step=two, by=other_rep, direction="up")
    assert close_titles(deal) == ["One", "Two"]


# --- the deal page (htmx) ------------------------------------------------------------


def hx(client, method: str, url: str, data=None):
    return getattr(client, method)(url, data or {}, HTTP_HX_REQUEST="true")


def test_htmx_edit_round_trip(client, deal, rep, teammate, group, make_user_contact):
    step = services.plan_step_add(deal=deal, by=rep, title="Security review", owner_user=rep)
    client.force_login(rep)
    url = reverse("rooms:step_edit", args=[deal.pk, step.pk])
    # The row becomes a small form: seller step, so the team is offered, never a contact.
    form = hx(client, "get", url)
    html = form.content.decode()
    assert form.status_code == 200 and f'id="rm-step-{step.pk}"' in html
    assert 'value="Security review"' in html
    assert f'value="u{teammate.pk}"' in html and f'value="c{group.pk}"' not in html
    prefix = f"step{step.pk}-"
    posted = {
        prefix + "version": step.version,
        prefix + "title": "Security review (InfoSec)",
        prefix + "owner": f"u{teammate.pk}",
        prefix + "due_date": "2031-03-14",
        prefix + "note": "SOC 2 first",
    }
    # A contact as the owner of a seller step, and a bad date: the form comes back with errors.
    bad = hx(
        client,
        "post",
        url,
        {**posted, prefix + "owner": f"c{group.pk}", prefix + "due_date": "14/03/2031x"},
    )
    assert bad.status_code == 400
    assert bad["HX-Retarget"] == f"#rm-step-{step.pk}"
    body = bad.content.decode()
    assert "Select a valid choice" in body and "Enter a valid date" in body
    step.refresh_from_db()
    assert step.title == "Security review"
    # Saved: the whole panel comes back with the new values.
    saved = hx(client, "post", url, posted)
    assert saved.status_code == 200
    body = saved.content.decode()
    assert (
        'id="room-panel"' in body and "Security review (InfoSec)" in body and "SOC 2 first" in body
    )
    step.refresh_from_db()
    assert (step.title, step.owner_user, step.due_date) == (
        "Security review (InfoSec)",
        teammate,
        dt.date(2031, 3, 14),
    )
    # The same form posted again is stale: a 409 with the reason, shown in the form.
    stale = hx(client, "post", url, {**posted, prefix + "title": "Overwrite"})
    assert stale.status_code == 409 and stale["HX-Retarget"] == f"#rm-step-{step.pk}"
    assert "meanwhile" in stale.content.decode()
    step.refresh_from_db()
    assert step.title == "Security review (InfoSec)"


def test_buyer_step_offers_the_buying_group_and_pages_work_without_htmx(client, deal, rep, group):
    step = services.plan_step_add(deal=deal, by=rep, title="Legal", side="buyer")
    client.force_login(rep)
    url = reverse("rooms:step_edit", args=[deal.pk, step.pk])
    page = client.get(url)
    html = page.content.decode()
    assert page.status_code == 200 and "<html" in html
    assert f'value="c{group.pk}"' in html and f'value="u{rep.pk}"' not in html
    prefix = f"step{step.pk}-"
    response = client.post(
        url,
        {
            prefix + "version": step.version,
            prefix + "title": "Legal review",
            prefix + "owner": f"c{group.pk}",
            prefix + "due_date": "",
            prefix + "note": "",
        },
    )
    assert response.status_code == 302
    step.refresh_from_db()
    assert step.owner_contact == group and step.title == "Legal review"


def test_move_and_skip_through_the_panel(client, deal, rep):
    one = services.plan_step_add(deal=deal, by=rep, title="One")
    two = services.plan_step_add(deal=deal, by=rep, title="Two")
    client.force_login(rep)
    response = hx(
        client, "post", reverse("rooms:step_move", args=[deal.pk, two.pk]), {"direction": "up"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index(">Two<") < html.index(">One<")
    refused = hx(
        client, "post", reverse("rooms:step_move", args=[deal.pk, two.pk]), {"direction": "up"}
    )
    assert refused.status_code == 400 and "already first" in refused.content.decode()
    skipped = hx(
        client,
        "post",
        reverse("rooms:step_update", args=[deal.pk, one.pk]),
        {"status": "skipped", "expected_status": "open"},
    )
    assert skipped.status_code == 200
    one.refresh_from_db()
    assert one.status == "skipped" and PlanStep.objects.filter(deal=deal).count() == 2


def test_another_teams_step_is_a_404_on_the_page(
    client,
    deal,
    rep,
    other_rep,
    other_deal_room,  # noqa: F811
):
    own = services.plan_step_add(deal=deal, by=rep, title="Ours")
    theirs = other_deal_room["step"]
    client.force_login(rep)
    # Their deal, and their step under our deal's address.
    for deal_pk, step_pk in ((other_deal_room["deal"].pk, theirs.pk), (deal.pk, theirs.pk)):
        assert client.get(reverse("rooms:step_edit", args=[deal_pk, step_pk])).status_code == 404
        assert (
            client.post(
                reverse("rooms:step_edit", args=[deal_pk, step_pk]),
                {f"step{theirs.pk}-title": "Hacked"},
            ).status_code
            == 404
        )
        assert (
            client.post(
                reverse("rooms:step_move", args=[deal_pk, step_pk]), {"direction": "up"}
            ).status_code
            == 404
        )
    theirs.refresh_from_db()
    assert theirs.title == "Globex step"
    client.force_login(other_rep)
    assert client.get(reverse("rooms:step_edit", args=[deal.pk, own.pk])).status_code == 404


def panel_queries(client, deal) -> int:
    url = reverse("rooms:panel", args=[deal.pk])
    client.get(url, HTTP_HX_REQUEST="true")  # warm up: session, caches
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return len(captured)


def test_panel_queries_do_not_grow_with_the_plan(
    client, deal, rep, teammate, group, room_link, plan_template
):
    services.plan_create_from_template(deal=deal, by=rep)
    client.force_login(rep)
    small = panel_queries(client, deal)
    for i in range(12):
        step = services.plan_step_add(
            deal=deal,
            by=rep,
            title=f"Extra {i}",
            side="buyer" if i % 2 else "seller",
            owner_user=None if i % 2 else teammate,
            owner_contact=group if i % 2 else None,
            due_date=timezone.localdate() - dt.timedelta(days=i),
            note=f"note {i}",
        )
        if i % 2:
            services.room_step_tick(link=room_link, step=step)
    large = panel_queries(client, deal)
    assert PlanStep.objects.filter(deal=deal).count() >= 20
    assert small == large, f"{small} queries for the template plan, {large} with 12 more steps"


# --- races and invariants ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_ten_edits_from_the_same_form_at_once_save_once(postgres, deal, rep):
    step = services.plan_step_add(deal=deal, by=rep, title="Security review")
    seen = step.version
    numbers = itertools.count()  # thread-safe under the GIL, unlike a generator

    outcomes = run_concurrently(
        lambda s: services.plan_step_update(
            step=s, by=rep, expected_version=seen, title=f"Security review v{next(numbers)}"
        ),
        load=lambda: PlanStep.objects.get(pk=step.pk),
        threads=10,
    )
    assert sum(o.won for o in outcomes) == 1
    assert all(isinstance(o.error, DealConflict) for o in outcomes if not o.won)
    step.refresh_from_db()
    assert step.title == next(o.result for o in outcomes if o.won).title
    updated = DealEvent.objects.filter(deal=deal, kind="plan", data__step_id=step.pk)
    assert updated.count() == 2  # added + the one edit that won


@pytest.mark.django_db(transaction=True)
def test_concurrent_moves_keep_the_order_a_permutation(postgres, deal, rep):
    steps = [services.plan_step_add(deal=deal, by=rep, title=f"Step {i}") for i in range(6)]
    directions = iter(["up", "down"] * 10)

    def move(step):
        return services.plan_step_move(step=step, by=rep, direction=next(directions))

    pks = iter([s.pk for s in steps[1:5]] * 3)
    outcomes = run_concurrently(move, load=lambda: PlanStep.objects.get(pk=next(pks)), threads=8)
    assert all(o.won or isinstance(o.error, DealError) for o in outcomes)
    positions = list(
        PlanStep.objects.filter(deal=deal).order_by("position").values_list("position", flat=True)
    )
    assert positions == list(range(1, 7))
    moves = DealEvent.objects.filter(deal=deal, kind="plan", reason__contains="moved").count()
    assert moves == sum(o.won for o in outcomes)


MOVES = st.lists(
    st.tuples(st.integers(min_value=0, max_value=4), st.sampled_from(["up", "down"])),
    max_size=15,
)
_counter = itertools.count()


@pytest.mark.django_db
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(moves=MOVES)
def test_any_sequence_of_moves_matches_a_list_model(rep, account, moves):
    """The plan's order after any moves is the order a plain list gets from the same swaps,
    positions stay 1..n, refusals (first up, last down) change nothing."""
    deal = deal_services.deal_create(by=rep, account=account, title=f"Moves {next(_counter)}")
    model = [services.plan_step_add(deal=deal, by=rep, title=f"S{i}").pk for i in range(5)]
    PlanStep.objects.filter(deal=deal).update(position=1)  # as a template with equal positions
    moved = False
    for index, direction in moves:
        step = PlanStep.objects.get(pk=model[index])
        other = index - 1 if direction == "up" else index + 1
        if 0 <= other < len(model):
            services.plan_step_move(step=step, by=rep, direction=direction)
            model[index], model[other] = model[other], model[index]
            moved = True
        else:
            with pytest.raises(DealError):
                services.plan_step_move(step=step, by=rep, direction=direction)
        rows = list(
            PlanStep.objects.filter(deal=deal)
            .order_by("position", "pk")
            .values_list("pk", flat=True)
        )
        assert rows == model
        if moved:
            positions = PlanStep.objects.filter(deal=deal).values_list("position", flat=True)
            assert sorted(positions) == list(range(1, 6))


def test_the_api_refuses_a_stale_edit_by_version(deal, rep):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(rep)
    step = services.plan_step_add(deal=deal, by=rep, title="Security review")
    url = f"/api/v1/deals/{deal.pk}/plan/{step.pk}/"
    seen = api.get(f"/api/v1/deals/{deal.pk}/plan/").json()["results"][0]["version"]
    assert seen == step.version
    response = api.patch(
        url, {"title": "Security review (v2)", "expected_version": seen}, format="json"
    )
    assert response.status_code == 200, response.json()
    stale = api.patch(url, {"note": "late", "expected_version": seen}, format="json")
    assert stale.status_code == 409 and stale.json()["code"] == "conflict"
    step.refresh_from_db()
    assert step.note == "" and step.title == "Security review (v2)"
