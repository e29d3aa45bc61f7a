"""The plan follows the deal: on the win its onboarding steps get their dates."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.translation import gettext as _

from deals.models import DealEvent, DealState
from deals.services import deal_activity_record

from .models import Phase, PlanStep


def on_deal_state_changed(sender, *, deal, event, by=None, **kwargs):
    """Inside the transition's transaction: date the onboarding steps from the win."""
    if deal.state != DealState.CLOSED_WON:
        return
    steps = list(PlanStep.objects.filter(deal=deal, phase=Phase.ONBOARDING, due_date__isnull=True))
    if not steps:
        return
    today = timezone.localdate()
    for i, step in enumerate(steps, start=1):
        step.due_date = today + dt.timedelta(days=7 * i)
    PlanStep.objects.bulk_update(steps, ["due_date"])
    deal_activity_record(
        deal=deal,
        by=None,
        kind=DealEvent.Kind.PLAN,
        reason=_("Onboarding steps scheduled in the buyer room (%(n)d)") % {"n": len(steps)},
        counts_as_activity=False,
    )
