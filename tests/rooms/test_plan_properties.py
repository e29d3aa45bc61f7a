"""Hypothesis drives random sequences of the real plan services (rep edits, buyer ticks)
and checks the step's invariants after every one."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deals import services as deal_services
from deals.models import DealEvent, Stakeholder
from deals.services import DealConflict, DealError
from rooms import services
from rooms.models import PlanStep

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("rep_status"), st.sampled_from(["open", "done", "skipped"])),
        st.tuples(st.just("rep_status_stale"), st.sampled_from(["open", "done", "skipped"])),
        st.tuples(st.just("buyer_tick"), st.just(None)),
        st.tuples(st.just("rep_due"), st.integers(min_value=-30, max_value=30)),
    ),
    max_size=12,
)
_counter = itertools.count()


@pytest.mark.django_db
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_step_invariants_hold_after_any_sequence(rep, account, contact, ops):
    deal = deal_services.deal_create(by=rep, account=account, title=f"Prop {next(_counter)}")
    deal_services.stakeholder_add(deal=deal, by=rep, contact=contact, role=Stakeholder.Role.SIGNER)
    link = services.room_link_issue(deal=deal, by=rep, contact=contact)
    step = services.plan_step_add(deal=deal, by=rep, title="Legal review", side="buyer")
    changes = 0
    for op, value in ops:
        before = PlanStep.objects.get(pk=step.pk)
        # The services lock and reload the row in place: keep what was there before.
        status_before, due_before = before.status, before.due_date
        try:
            if op == "rep_status":
                services.plan_step_update(
                    step=before, by=rep, status=value, expected_status=status_before
                )
                changed = value != status_before
            elif op == "rep_status_stale":
                # The rep saw another status than the current one: always a conflict.
                seen = "done" if status_before == "open" else "open"
                with pytest.raises(DealConflict):
                    services.plan_step_update(
                        step=before, by=rep, status=value, expected_status=seen
                    )
                changed = False
            elif op == "buyer_tick":
                services.room_step_tick(link=link, step=before)
                assert status_before == "open", "a tick succeeded on a step that was not open"
                changed = True
            else:
                due = dt.date(2030, 1, 15) + dt.timedelta(days=value)
                services.plan_step_update(step=before, by=rep, due_date=due)
                changed = due != due_before
        except DealConflict:
            assert op in ("buyer_tick", "rep_status_stale")
            if op == "buyer_tick":
                assert status_before != "open"
            changed = False
        except DealError:
            raise
        changes += changed
        after = PlanStep.objects.get(pk=step.pk)
        assert after.status in PlanStep.Status.values
        assert (after.done_at is None) == (after.status == "open")
        assert not (after.done_by_user_id and after.done_by_contact_id)
        if after.status == "open":
            assert after.done_by_user_id is None and after.done_by_contact_id is None
        events = DealEvent.objects.filter(deal=deal, data__step_id=step.pk).count()
        assert events == 1 + changes  # "added" + one event per effective change
