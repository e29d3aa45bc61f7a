"""Template tags of the pipeline pages, and pipeline figures on other apps' pages (My day's
quota panel)."""

from __future__ import annotations

from django import template
from django.utils import timezone

from deals.widgets import options_html

from ..quotas import quota_attainment
from ..selectors import DashboardFilters

register = template.Library()


@register.inclusion_tag("pipeline/_my_quota.html", takes_context=True)
def my_quota(context) -> dict:
    """The signed-in user's own quotas for this month and quarter (nothing when none is set)."""
    user = context["request"].user
    if not user.is_authenticated:
        return {"quota": None}
    today = timezone.localdate()
    filters = DashboardFilters(
        user=user,
        team=None,
        rep=user,
        period="quarter",
        start=today,
        end=today,
        currency=user.team.currency if user.team_id else "EUR",
    )
    return {"quota": quota_attainment(filters, today=today), "user": user}


@register.simple_tag
def options(objects, selected=None) -> str:
    """`<option>`s for people or teams (value: id, text: the object), built in Python: an
    admin's filter lists some 200 reps, and a template loop over them cost more than the
    rest of a dashboard served from its snapshot."""
    return options_html(
        ((obj.pk, str(obj)) for obj in objects),
        selected=getattr(selected, "pk", None),
    )
