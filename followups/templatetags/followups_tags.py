"""Template tags that put follow-ups and tasks on other apps' pages."""

from django import template

register = template.Library()


@register.inclusion_tag("followups/_my_day_tasks.html", takes_context=True)
def my_day_tasks(context):
    """The signed-in rep's due follow-up tasks, for the My day page."""
    return {"tasks": [], "user": context["user"]}


@register.inclusion_tag("followups/_deal_panel.html", takes_context=True)
def followups_panel(context, deal):
    """Reminders, tasks and the review meeting of one deal, for the deal page."""
    return {"deal": deal, "user": context["user"]}
