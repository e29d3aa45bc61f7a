"""Bulk actions on the deal list: each deal through its own service, a result per deal,
nothing half-written, reruns that only do what is left, and another team's ids refused."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.contrib import admin
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deals import services
from deals.models import BulkJob, BulkJobItem, Deal, DealEvent, DealState, LossReason
from tests.concurrency import run_concurrently
from tests.conftest import record_ask, send_agreement

pytestmark = pytest.mark.django_db


def _move(by, deals, transition, **params):
    job = services.bulk_job_create(
        by=by,
        action="transition",
        params={"transition": transition, **params},
        deal_ids=[d.pk for d in deals],
    )
    return services.bulk_job_run(job_id=job.pk)


def _results(job) -> dict[int, tuple[str, str]]:
    return {i.ref: (i.outcome, i.message) for i in job.items.order_by("position")}


def _transitions(deal, name):
    return DealEvent.objects.filter(deal=deal, kind=DealEvent.Kind.TRANSITION, transition=name)


def test_bulk_move_reports_a_result_per_deal(rep, teammate, make_deal, other_rep):
    """Legal moves happen, each with its audit event; an illegal one, a deal the user may only
    read and another team's id are refused, each with its reason; nothing else changes."""
    asked = make_deal(title="Asked")
    record_ask(asked, rep)
    fresh = make_deal(title="Fresh")  # intent spotted: "Negotiate" is not a move from here
    theirs = make_deal(title="Tim's", by=teammate, owner=teammate)
    record_ask(theirs, teammate)
    other_account = services.account_create(by=other_rep, team=other_rep.team, name="Zeta")
    foreign = services.deal_create(by=other_rep, account=other_account, title="Secret deal")

    job = _move(rep, [asked, fresh, theirs, foreign], "negotiate", reason="Pricing talks")

    results = _results(job)
    assert results[asked.pk] == ("done", "Now “Negotiating”.")
    assert results[fresh.pk][0] == "refused"
    assert "cannot do “Negotiate”" in results[fresh.pk][1]
    assert results[theirs.pk] == (
        "refused",
        "Only the deal's owner or the team's manager can move this deal.",
    )
    assert results[foreign.pk] == ("refused", "No such deal for you.")
    assert job.items.get(ref=foreign.pk).title == f"Deal #{foreign.pk}"  # never named
    assert job.status == BulkJob.Status.DONE and job.finished_at is not None
    for deal, state in [(asked, "negotiating"), (fresh, "intent_spotted"), (theirs, "asked")]:
        deal.refresh_from_db()
        assert deal.state == state
    event = _transitions(asked, "negotiate").get()
    assert event.reason == "Pricing talks" and event.data["bulk_job"] == job.pk
    assert not _transitions(theirs, "negotiate").exists()
    assert services.bulk_job_summary(job) == "1 deal moved (Negotiate). 3 refused."


def test_a_deal_changed_after_it_was_selected_is_refused_not_moved_twice(rep, manager, make_deal):
    """The job remembers the state each deal was in when selected: a deal moved meanwhile by
    someone else is refused with who changed it, and keeps that person's decision."""
    first, second = make_deal(title="First"), make_deal(title="Second")
    for deal in (first, second):
        record_ask(deal, rep)
    job = services.bulk_job_create(
        by=rep,
        action="transition",
        params={"transition": "mark_lost", "loss_reason": LossReason.values[0]},
        deal_ids=[first.pk, second.pk],
    )
    services.deal_transition(
        deal=Deal.objects.get(pk=second.pk), transition="negotiate", by=manager
    )
    job = services.bulk_job_run(job_id=job.pk)
    results = _results(job)
    assert results[first.pk][0] == "done"
    assert results[second.pk][0] == "refused"
    assert "Mona changed this deal meanwhile: it is now “Negotiating”" in results[second.pk][1]
    second.refresh_from_db()
    assert second.state == DealState.NEGOTIATING and not _transitions(second, "mark_lost").exists()


def test_inputs_are_asked_once_for_the_batch(rep, deal):
    """Closing as lost needs a loss reason, an override a written reason, before any deal is
    touched; moves that stand for a record (an ask, a sent contract) are not offered."""
    with pytest.raises(services.DealError, match="Choose a loss reason"):
        _move(rep, [deal], "mark_lost")
    with pytest.raises(services.DealError, match="Choose where to move"):
        _move(rep, [deal], "override_won", reason="CFO signed on paper")  # a rep: not theirs
    with pytest.raises(services.DealError, match="cannot be done in bulk"):
        _move(rep, [deal], "ask")
    with pytest.raises(services.DealError, match="Select at least one deal"):
        _move(rep, [], "negotiate")
    assert not BulkJob.objects.exists()
    job = _move(rep, [deal], "mark_lost", loss_reason="price", reason="Too expensive")
    deal.refresh_from_db()
    assert job.items.get().outcome == "done"
    assert (deal.state, deal.loss_reason, deal.loss_note) == (
        "closed_lost",
        "price",
        "Too expensive",
    )


def test_managers_override_in_bulk_with_one_reason(manager, rep, make_deal):
    deals = [make_deal(title=f"D{i}") for i in range(3)]
    job = _move(manager, deals, "override_won", reason="Signed on paper at the fair")
    assert [i.outcome for i in job.items.all()] == ["done"] * 3
    for deal in deals:
        deal.refresh_from_db()
        assert deal.state == "closed_won"
        assert deal.won_override_reason == "Signed on paper at the fair"


def test_a_rerun_only_does_what_is_left(rep, make_deal):
    """A job run again (the task delivered twice, a worker that died after some deals) acts
    on the waiting deals only: no deal is moved twice, no event written twice."""
    deals = [make_deal(title=f"D{i}") for i in range(4)]
    for deal in deals:
        record_ask(deal, rep)
    job = services.bulk_job_create(
        by=rep,
        action="transition",
        params={"transition": "negotiate"},
        deal_ids=[d.pk for d in deals],
    )
    # A first run did the first two deals, then its worker died.
    for item in job.items.order_by("position")[:2]:
        services._bulk_item_run(item_id=item.pk, job=job)
    assert job.items.filter(outcome="pending").count() == 2
    services.bulk_job_run(job_id=job.pk)
    services.bulk_job_run(job_id=job.pk)  # delivered once more: nothing left to do
    assert set(job.items.values_list("outcome", flat=True)) == {"done"}
    for deal in deals:
        assert _transitions(deal, "negotiate").count() == 1


def test_bulk_archive_and_reassign(rep, manager, teammate, make_deal):
    first, second = make_deal(title="First"), make_deal(title="Second")
    job = services.bulk_job_create(
        by=manager,
        action="reassign",
        params={"new_owner": teammate.pk, "reason": "Rita leaves"},
        deal_ids=[first.pk, second.pk],
    )
    job = services.bulk_job_run(job_id=job.pk)
    assert services.bulk_job_summary(job) == "2 deals now owned by Tim (notified)."
    assert set(Deal.objects.values_list("owner__username", flat=True)) == {"tim"}
    services.deal_archive(deal=Deal.objects.get(pk=second.pk), by=manager)
    job = services.bulk_job_create(
        by=manager,
        action="archive",
        params={"reason": "Duplicates"},
        deal_ids=[first.pk, second.pk],
    )
    job = services.bulk_job_run(job_id=job.pk)
    results = _results(job)
    assert results[first.pk] == ("done", "Archived.")
    assert results[second.pk] == ("refused", "No such deal for you.")  # archived: out of lists
    assert Deal.objects.get(pk=first.pk).archived_at is not None


def test_all_matching_uses_the_viewers_own_visibility(manager, rep, make_deal, other_rep):
    """ "All N matching" re-runs the list's filters as the user: another team's deals never
    join, even when the filter names one of its people."""
    mine = [make_deal(title=f"Acme {i}") for i in range(3)]
    other_account = services.account_create(by=other_rep, team=other_rep.team, name="Acme Zeta")
    services.deal_create(by=other_rep, account=other_account, title="Acme theirs")
    job = services.bulk_job_create(
        by=manager, action="archive", params={}, filters={"q": "acme", "sort": "title"}
    )
    assert list(job.items.values_list("ref", flat=True)) == [d.pk for d in mine]
    with pytest.raises(services.DealError, match="Select at least one deal"):
        services.bulk_job_create(
            by=manager, action="archive", params={}, filters={"owner": str(other_rep.pk)}
        )


@pytest.mark.django_db(transaction=True)
def test_two_bulk_moves_at_once_move_each_deal_once(postgres, rep, manager, account):
    """Two people run the same move over the same deals at the same moment (real concurrent
    PostgreSQL connections): each deal moves once, with one event; the other job reports it
    refused (changed meanwhile, or no longer a legal move)."""
    deals = []
    for i in range(6):
        deal = services.deal_create(by=rep, account=account, title=f"Race {i}", amount=Decimal(1))
        record_ask(deal, rep)
        deals.append(deal)
    jobs = [
        services.bulk_job_create(
            by=user,
            action="transition",
            params={"transition": "negotiate"},
            deal_ids=[d.pk for d in deals],
        )
        for user in (rep, manager)
    ]
    outcomes = run_concurrently(
        lambda job: services.bulk_job_run(job_id=job.pk),
        load=iter(jobs).__next__,
        threads=2,
    )
    assert all(o.won for o in outcomes), [o.error for o in outcomes]
    for deal in deals:
        assert _transitions(deal, "negotiate").count() == 1
        items = BulkJobItem.objects.filter(ref=deal.pk)
        assert sorted(items.values_list("outcome", flat=True)) == ["done", "refused"]


STATES = ["intent_spotted", "asked", "agreement_sent", "negotiating", "closed_lost"]
MOVES = ["negotiate", "follow_up", "mark_lost", "mark_won", "override_won", "reopen"]


def _put_in(deal, state, by):
    if state in ("asked", "agreement_sent", "negotiating"):
        record_ask(deal, by)
    if state == "agreement_sent":
        send_agreement(deal, by)
    if state == "negotiating":
        services.deal_transition(deal=deal, transition="negotiate", by=by)
    if state == "closed_lost":
        services.deal_transition(deal=deal, transition="mark_lost", by=by, loss_reason="price")


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    states=st.lists(st.sampled_from(STATES), min_size=1, max_size=5),
    move=st.sampled_from(MOVES),
    as_manager=st.booleans(),
)
def test_a_bulk_move_does_exactly_what_single_moves_would(
    rep, manager, account, states, move, as_manager
):
    """For any mix of deals and any move: a deal is moved iff the single move is allowed for
    it (state, guards, permission), with one event; a refused deal is left exactly as it was."""
    by = manager if as_manager else rep
    deals = []
    for n, state in enumerate(states):
        deal = services.deal_create(by=rep, account=account, title=f"H{n}", amount=Decimal(1))
        _put_in(deal, state, rep)
        deals.append(deal)
    expected = {
        d.pk: not services.transition_blockers(d, move, by, check_inputs=False) for d in deals
    }
    before = {d.pk: (d.state, DealEvent.objects.filter(deal=d).count()) for d in deals}
    try:
        job = _move(by, deals, move, reason="Because", loss_reason="price")
    except services.DealError:
        assert move not in services.bulk_transition_names(by)
        return
    for item in job.items.all():
        deal = Deal.objects.get(pk=item.ref)
        state, events = before[deal.pk]
        if expected[deal.pk]:
            assert item.outcome == "done", item.message
            assert deal.state != state and _transitions(deal, move).count() == 1
        else:
            assert item.outcome == "refused" and item.message
            assert deal.state == state
            assert DealEvent.objects.filter(deal=deal).count() == events


# --- pages ------------------------------------------------------------------------------


def test_a_small_selection_runs_at_once_and_shows_each_result(client, rep, make_deal):
    deals = [make_deal(title=f"D{i}") for i in range(2)]
    client.force_login(rep)
    response = client.post(
        reverse("deals:deals_bulk"),
        {"deal": [d.pk for d in deals], "action": "archive", "reason": "Test data", "query": "q=D"},
    )
    job = BulkJob.objects.get()
    assert response.status_code == 302 and response["Location"].startswith(job.get_absolute_url())
    page = client.get(response["Location"]).content.decode()
    assert "2 deals archived." in page and "Back to the deals" in page
    assert 'href="/deals/?q=D"' in page
    assert 'hx-trigger="every 1s"' not in page  # finished: no polling


def test_a_large_selection_is_queued_with_a_progress_page(
    client, rep, make_deal, settings, django_capture_on_commit_callbacks
):
    settings.BULK_INLINE_MAX = 2
    deals = [make_deal(title=f"D{i}") for i in range(3)]
    client.force_login(rep)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            reverse("deals:deals_bulk"),
            {"deal": [d.pk for d in deals], "action": "archive"},
            follow=True,
        )
    assert len(callbacks) == 1  # the task is sent after commit (not run here: no worker)
    job = BulkJob.objects.get()
    assert job.status == "queued" and not Deal.objects.filter(archived_at__isnull=False).exists()
    body = response.content.decode()
    assert "Waiting for the worker" in body and 'hx-trigger="every 1s"' in body
    partial = client.get(job.get_absolute_url(), headers={"HX-Request": "true"}).content.decode()
    assert partial.startswith('\n<section id="bulk-status"') or 'id="bulk-status"' in partial
    assert "<html" not in partial
    services.bulk_job_run(job_id=job.pk)  # what the worker does
    body = client.get(job.get_absolute_url()).content.decode()
    assert "3 deals archived." in body


def test_jobs_are_their_starters(client, rep, teammate, deal):
    job = services.bulk_job_create(by=rep, action="archive", params={}, deal_ids=[deal.pk])
    client.force_login(teammate)
    assert client.get(job.get_absolute_url()).status_code == 404
    assert client.post(reverse("deals:bulk_job_resume", args=[job.pk])).status_code == 404


def test_export_the_selection_as_csv(client, rep, make_deal, other_rep):
    first, _second, third = (make_deal(title=t) for t in ("First", "Second", "Third"))
    other_account = services.account_create(by=other_rep, team=other_rep.team, name="Zeta")
    foreign = services.deal_create(by=other_rep, account=other_account, title="Secret")
    client.force_login(rep)
    response = client.post(
        reverse("deals:deals_bulk"),
        {"deal": [third.pk, first.pk, foreign.pk], "action": "export", "query": "sort=title"},
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert [r[1] for r in rows[1:]] == ["First", "Third"]


def test_the_deal_list_offers_bulk_actions_to_reps_too(client, rep, deal):
    client.force_login(rep)
    page = client.get(reverse("deals:deal_list")).content.decode()
    assert f'value="{deal.pk}" form="bulk"' in page
    assert 'value="move:mark_lost"' in page and 'value="archive"' in page
    assert 'value="move:override_won"' not in page  # a manager's move
    assert 'value="reassign"' not in page


def test_the_admin_shows_jobs_read_only(client, admin_user, rep, deal):
    job = services.bulk_job_create(by=rep, action="archive", params={}, deal_ids=[deal.pk])
    services.bulk_job_run(job_id=job.pk)
    model_admin = admin.site._registry[BulkJob]
    client.force_login(admin_user)
    assert client.get(reverse("admin:deals_bulkjob_changelist")).status_code == 200
    page = client.get(reverse("admin:deals_bulkjob_change", args=[job.pk])).content.decode()
    assert "Archived." in page
    request = type("R", (), {"user": admin_user})()
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, job)
    assert not model_admin.has_delete_permission(request, job)
