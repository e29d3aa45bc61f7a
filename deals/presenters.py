"""What each row of a long list shows, worked out in Python once per page.

A template pays for every tag, filter and `{% blocktranslate %}` again on each row: URL
reversing, translation look-ups and date formats that are the same for the whole page.
Here they are looked up once, and each row only fills in its own values, so the templates
print plain attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext

from .models import OPEN_STATES, Deal, DealState
from .templatetags.crm_format import day_text, money_text

#: A number no primary key reaches, reversed into a URL and then replaced by each pk.
_PK_MARKER = 918273645


def url_for_pk(name: str, *args) -> Callable[[object], str]:
    """`reverse(name, args=[pk, *args])` for a page of pks: the pattern is reversed once."""
    url = reverse(name, args=[_PK_MARKER, *args])
    head, _marker, tail = url.partition(str(_PK_MARKER))
    return lambda pk: f"{head}{pk}{tail}"


def state_labels() -> dict[str, str]:
    """Each state's label in the active language."""
    return {value: str(label) for value, label in DealState.choices}


#: The fields a deal list row reads (for `QuerySet.only`): a deal has some forty columns,
#: long texts among them, and a page needs a dozen. Reading one more in `deal_list_rows`
#: means adding it here, or each row would load it with a query of its own.
DEAL_LIST_ROW_FIELDS = (
    "title",
    "account__name",
    "owner__username",
    "owner__first_name",
    "owner__last_name",
    "state",
    "amount",
    "currency",
    "expected_close_date",
    "last_activity_at",
    "next_step",
    "next_step_due",
)


@dataclass(slots=True)
class DealListRow:
    """One deal of the list, as its row prints it."""

    deal: Deal
    pk: int
    title: str
    account_name: str
    state: str
    next_step: str
    url: str
    account_url: str
    select_label: str
    state_label: str
    amount: str
    close: str
    activity_iso: str
    activity_day: str
    activity_ago: str
    owner: str
    next_step_due: str
    overdue: bool


def deal_list_rows(deals: Iterable[Deal]) -> list[DealListRow]:
    """The deal list's rows (deals with their account and owner already joined)."""
    deal_url = url_for_pk("deals:deal_detail")
    account_url = url_for_pk("deals:account_detail")
    labels = state_labels()
    day = day_text
    today = timezone.localdate()
    select = gettext("Select “%(title)s”")
    ago = gettext("%(last_activity_at)s ago")
    rows = []
    for deal in deals:
        activity = deal.last_activity_at
        rows.append(
            DealListRow(
                deal=deal,
                pk=deal.pk,
                title=deal.title,
                account_name=deal.account.name,
                state=deal.state,
                next_step=deal.next_step,
                url=deal_url(deal.pk),
                account_url=account_url(deal.account_id),
                select_label=select % {"title": deal.title},
                state_label=labels.get(deal.state, deal.state),
                amount=money_text(deal.amount, deal.currency),
                close=day(deal.expected_close_date) or "—",
                activity_iso=timezone.localtime(activity).isoformat() if activity else "",
                activity_day=day(activity),
                activity_ago=ago % {"last_activity_at": timesince(activity)} if activity else "",
                owner=str(deal.owner),
                next_step_due=day(deal.next_step_due),
                overdue=bool(
                    deal.next_step_due and deal.next_step_due < today and deal.state in OPEN_STATES
                ),
            )
        )
    return rows
