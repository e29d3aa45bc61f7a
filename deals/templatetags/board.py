"""The pipeline board's cards, rendered in Python.

A board shows up to 200 cards (40 per open state) and each card has some twenty pieces
(links, amounts, pills, translated labels). Rendered as template nodes that cost ~250 ms a
page at 100,000 deals (issue 13: the board's target is 50 ms); the same HTML built here
with the per-page work hoisted out of the loop (URL patterns reversed once, labels
translated once per column) costs a few milliseconds. The markup is the one the board's
JavaScript, its tests and the browser tests read: change it here and in
templates/deals/board.html together.
"""

from __future__ import annotations

import datetime as dt
from html import escape as _escape

from django import template
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext

from deals.models import in_sentence
from deals.presenters import url_for_pk

from .crm_format import day_text, money_text

register = template.Library()


def escape(text) -> str:
    """HTML-escape text (quotes too), as Django's `escape` does, without its lazy-string
    wrapper: a board escapes some 2,000 values."""
    return _escape(str(text), quote=True)


class _CardText:
    """What every card of one page says the same way: translated once."""

    def __init__(self):
        self.detail = url_for_pk("deals:deal_detail")
        self.move = url_for_pk("deals:deal_transition", "ask")
        self.moves = url_for_pk("deals:board_moves")
        self.move_to = escape(gettext("Move to…"))
        self.loading = escape(gettext("Loading…"))
        self.stalled = escape(gettext("Stalled"))
        self.expected_close = escape(gettext("Expected close"))
        self.past = escape(gettext("(past)"))
        self.next = gettext("Next: %(next_step)s")
        self.close = escape(gettext("Close %(expected_close_date)s"))
        self.move_label = gettext("Move %(title)s to…")
        self.days_in_state: dict[int, str] = {}  # days → "N days in state"
        self._days: dict[dt.date, str] = {}
        self._money: dict[tuple, str] = {}  # (amount, currency) → text (amounts repeat)

    def day(self, value: dt.date) -> str:
        if value not in self._days:  # cards share close dates
            self._days[value] = escape(day_text(value))
        return self._days[value]

    def money(self, amount, currency: str) -> str:
        key = (amount, currency)
        if key not in self._money:
            self._money[key] = escape(money_text(amount, currency))
        return self._money[key]

    def days(self, days: int) -> str:
        if days not in self.days_in_state:
            self.days_in_state[days] = escape(
                ngettext("%(days_in_state)s day in state", "%(days_in_state)s days in state", days)
                % {"days_in_state": days}
            )
        return self.days_in_state[days]


def _card(deal, text: _CardText, *, user, today: dt.date, days_title: str) -> str:
    pk = deal.pk
    days = deal.days_in_state
    late_close = deal.expected_close_date is not None and deal.expected_close_date < today
    draggable = deal.owner_id == user.pk or user.is_manager or user.is_superuser
    drag = ' draggable="true"' if draggable else ""
    parts = [
        f'<article class="deal-card{" stalled" if deal.is_stalled else ""}" id="card-{pk}" '
        f'aria-labelledby="card-title-{pk}"{drag} '
        f'data-state="{escape(deal.state)}" data-move-url="{text.move(pk)}">',
        f'<a class="title" id="card-title-{pk}" href="{text.detail(pk)}">{escape(deal.title)}</a>',
        f'<span class="account">{escape(deal.account)}'
        + (f" · {escape(deal.owner)}" if deal.owner_id != user.pk else "")
        + "</span>",
        '<div class="figures">'
        f'<span class="amount">{text.money(deal.amount, deal.currency)}</span>'
        f'<span class="muted" title="{days_title}">{text.days(days)}</span></div>',
    ]
    if deal.next_step:
        overdue = deal.next_step_due is not None and deal.next_step_due < today
        next_text = escape(text.next % {"next_step": deal.next_step})
        due = f" · {text.day(deal.next_step_due)}" if deal.next_step_due else ""
        parts.append(f'<div class="next{" overdue" if overdue else ""}">{next_text}{due}</div>')
    pills = f'<span class="pill warn">{text.stalled}</span>' if deal.is_stalled else ""
    if deal.expected_close_date:
        close = text.close % {"expected_close_date": text.day(deal.expected_close_date)}
        pills += (
            f'<span class="pill{" late" if late_close else ""}" title="{text.expected_close}">'
            f"{close}{' ' + text.past if late_close else ''}</span>"
        )
    move_label = escape(text.move_label % {"title": deal.title})
    parts.append(
        f'<div class="card-foot"><span>{pills}</span><details class="menu">'
        f'<summary class="btn small" aria-label="{move_label}" '
        f'hx-get="{text.moves(pk)}" hx-target="#moves-{pk}" '
        f'hx-trigger="click once">{text.move_to}</summary>'
        f'<div class="menu-panel" id="moves-{pk}"><p class="menu-note">{text.loading}</p></div>'
        "</details></div>"
    )
    parts.append(f'<div class="card-msg" id="card-msg-{pk}" aria-live="polite"></div></article>')
    return "".join(parts)


@register.simple_tag(takes_context=True)
def board_cards(context, column) -> SafeString:
    """The cards of one board column as HTML: `{% board_cards column %}`."""
    text = context.render_context.get(_CardText)
    if text is None:  # once per page render
        text = context.render_context[_CardText] = _CardText()
    user = context["user"]
    today = context["today"]
    days_title = escape(
        gettext("Days in %(get_state_display)s")
        % {"get_state_display": in_sentence(column["label"])}
    )
    return mark_safe(  # noqa: S308 (every value in the cards is escaped)
        "\n".join(
            _card(deal, text, user=user, today=today, days_title=days_title)
            for deal in column["cards"]
        )
    )
