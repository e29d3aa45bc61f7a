"""Template tags that put the close plan and the room on other apps' pages."""

from django import template

from deals.models import can_work_deal

from .. import selectors
from ..models import Phase, PlanOutcome, PlanStep, Side

register = template.Library()


def room_panel_context(request, deal) -> dict:
    from ..services import plan_template_for, room_url

    data = selectors.deal_room_panel(deal)
    for link in data["links"]:
        link.url = room_url(link) if link.is_live else ""
    team_members = list(deal.team.members.filter(is_active=True).order_by("username"))
    group = list(deal.stakeholders.select_related("contact").order_by("contact__last_name"))
    contacts = []
    seen = set()
    for s in group:
        if s.contact_id not in seen:
            seen.add(s.contact_id)
            contacts.append(s.contact)
    return {
        "deal": deal,
        **data,
        "template": plan_template_for(deal) if not data["close_steps"] else None,
        "team_members": team_members,
        "group_contacts": contacts,
        "can_work": can_work_deal(deal, request.user),
        "statuses": PlanStep.Status.choices,
        "sides": Side.choices,
        "phases": Phase.choices,
        "outcome_statuses": PlanOutcome.Status,
        "request": request,
        "user": request.user,
        "messages": getattr(request, "_messages", None),
    }


@register.inclusion_tag("rooms/_deal_panel_lazy.html")
def room_panel(deal):
    """A placeholder the deal page fills with htmx (GET rooms:panel)."""
    return {"deal": deal}


@register.inclusion_tag("rooms/_my_day.html", takes_context=True)
def room_slipped_steps(context):
    user = context["user"]
    return {"steps": selectors.slipped_steps_for(user), "today": None}


@register.inclusion_tag("rooms/_insights.html", takes_context=True)
def room_insights(context, filters):
    """Managers' view of the plans for the dashboard and the coaching page."""
    from pipeline.selectors import dashboard_deals

    deals = dashboard_deals(filters)
    return {
        "slipping": selectors.plan_slippage(deals),
        "engagement": selectors.buyer_engagement(deals),
        "rates": selectors.plan_win_rates(deals, start=filters.start_at, end=filters.end_at),
    }
