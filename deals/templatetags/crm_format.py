"""One way to show money, dates and times everywhere in the product.

- Money: the amount with thousands separators, cents only when there are any, then the
  currency code: "120,000 EUR", "1,250.50 USD".
- Dates: "13 Dec" in the current year, "13 Dec 2027" otherwise (a date without its year is
  ambiguous once it is not this year's).
- Times: in the user's time zone (activated per request by `deals.middleware`), with the
  zone's abbreviation so nobody wonders which clock it is: "4 Nov, 16:43 CET".
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.formats import number_format
from django.utils.translation import pgettext

register = template.Library()


def money_text(amount, currency: str = "") -> str:
    """The product's one money format (also for Python code building messages)."""
    if amount in (None, ""):
        return ""
    try:
        value = Decimal(str(amount).replace(",", "")).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return str(amount)
    places = 0 if value == value.to_integral_value() else 2
    # The active language's separators: "1,250.50" in English, "1.250,50" in German. CSV
    # exports and the API never come here: they write plain numbers.
    text = number_format(value, places, use_l10n=True, force_grouping=True)
    return f"{text} {currency}".strip()


#: Quote marks a buyer's words may already be typed with (straight, curly, low-9, guillemets).
QUOTE_MARKS = "\"'“”„‘’‚«»"


@register.filter
def quoted(words) -> str:
    """The buyer's words in curly quotes, once: `“How fast can we start?”` also when the
    rep typed the quotes themselves (the form's placeholder shows them)."""
    text = str(words or "").strip()
    if len(text) >= 2 and text[0] in QUOTE_MARKS and text[-1] in QUOTE_MARKS:
        text = text.strip(QUOTE_MARKS).strip()
    return f"“{text}”" if text else ""


@register.filter
def money(amount, currency: str = "") -> str:
    """`{{ deal.amount|money:deal.currency }}` → "120,000 EUR"."""
    return money_text(amount, currency)


@register.filter
def terms_money(terms) -> str:
    """A contract version's amount from its terms dict (which may be empty)."""
    terms = terms or {}
    return money_text(terms.get("amount"), terms.get("currency", ""))


def day_formatter():
    """`day_text` for a page of dates: this year and the two formats worked out once."""
    this_year = timezone.localdate().year
    # Translators: a date in the current year (Django date format): "13 Dec", "13. Dez."
    short = pgettext("date format", "j M")
    # Translators: a date with its year (Django date format): "13 Dec 2027".
    full = pgettext("date format", "j M Y")

    made: dict[dt.date, str] = {}  # a page's dates repeat (activity today, month ends)

    def text(value: dt.date | dt.datetime | None) -> str:
        if not value:
            return ""
        if isinstance(value, dt.datetime):
            value = timezone.localtime(value) if timezone.is_aware(value) else value
            value = value.date()
        if value not in made:
            made[value] = date_format(value, short if value.year == this_year else full)
        return made[value]

    return text


def day_text(value: dt.date | dt.datetime | None) -> str:
    return day_formatter()(value) if value else ""


@register.filter
def day(value) -> str:
    """A date: "13 Dec" this year, "13 Dec 2027" in any other."""
    return day_text(value)


@register.filter
def when(value) -> str:
    """A moment in the user's zone, labelled: "4 Nov, 16:43 CET" (the year when not this one)."""
    if not value:
        return ""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return f"{day_text(local.date())}, {date_format(local, 'H:i T')}"


@register.filter
def in_sentence(label) -> str:
    """A choice label inside a sentence: lower case in English, German keeps its capitals."""
    from deals.models import in_sentence as _in_sentence

    return _in_sentence(label)
