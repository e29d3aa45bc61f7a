"""The deal page's long lists, one row written in Python per item.

A timeline of 50 events cost ~50 template nodes each (a chain of headings, four date
formats, filters); written here it costs a few string operations per event. The HTML is the
one the template wrote (tests/deals/test_deal_page_bounded.py and the browser tests read it).
"""

from __future__ import annotations

from django import template
from django.template.defaultfilters import truncatechars
from django.utils.formats import localize
from django.utils.html import escape, format_html
from django.utils.timezone import template_localtime
from django.utils.translation import gettext

from .crm_format import when

register = template.Library()


def _ordinal_suffix(number: int) -> str:
    # The timeline's own (older) English ordinals: 1st, 2nd, 3rd, then "th" (11st included).
    if number == 1:
        return gettext("st")
    if number == 2:
        return gettext("nd")
    if number == 3:
        return gettext("rd")
    return gettext("th")


def event_heading(event) -> str:
    """What happened, in a few words: "Asked → Negotiating", "2nd ask: not yet"."""
    data = event.data if isinstance(event.data, dict) else {}
    kind = event.kind
    if kind == "transition":
        return f"{event.from_state_label or '—'} → {event.to_state_label}"
    if kind == "objection":
        status = data.get("status")
        if status == "resolved":
            return gettext("Objection resolved")
        if status == "accepted_loss":
            return gettext("Objection accepted as a loss")
        return gettext("Objection raised")
    if kind == "ask" and data.get("number"):
        number = data["number"]
        answer = gettext("not yet") if data.get("answer") == "not_yet" else data.get("answer")
        return (
            f"{localize(number)}{_ordinal_suffix(number)} {gettext('ask:')} "
            f"{'' if answer is None else localize(answer)}"
        )
    if kind == "concession":
        status = data.get("status")
        return gettext("Concession %(status)s") % {
            "status": "" if status is None else localize(status)
        }
    return event.kind_label


@register.simple_tag
def timeline_entry(event) -> str:
    """One `<li>` of the timeline (events carry their labels: `deal_timeline_page`)."""
    moment = template_localtime(event.created_at)
    body = (
        format_html('<p class="ev-body">{}</p>', truncatechars(event.reason, 240))
        if event.reason
        else ""
    )
    return format_html(
        '<li class="ev ev-{}">\n'
        '  <div class="ev-head"><strong>{}</strong>\n'
        '    <time datetime="{}" title="{}">{}</time></div>\n'
        "  {}\n"
        '  <small class="muted">{}</small>\n'
        "</li>",
        event.kind,
        escape(event_heading(event)),
        moment.isoformat(),
        localize(moment),
        when(event.created_at),
        body,
        event.actor_label,
    )
