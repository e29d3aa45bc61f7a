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
import functools
from decimal import Decimal, InvalidOperation

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.formats import number_format
from django.utils.translation import get_language, pgettext

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


@functools.lru_cache(maxsize=64)
def _day_formats(language: str | None) -> tuple[str, str]:
    """The date formats of `language` (this year's, other years'), looked up once."""
    return (
        # Translators: a date in the current year (Django date format): "13 Dec", "13. Dez."
        pgettext("date format", "j M"),
        # Translators: a date with its year (Django date format): "13 Dec 2027".
        pgettext("date format", "j M Y"),
    )


@functools.lru_cache(maxsize=4096)
def _formatted_day(value: dt.date, format_: str, language: str | None) -> str:
    """A date formatted in `language` (the active one: part of the key, as month names
    depend on it). Lists show many rows of the same few days: each is formatted once."""
    return date_format(value, format_)


def day_text(value: dt.date | dt.datetime | None) -> str:
    if not value:
        return ""
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
        value = value.date()
    language = get_language()
    this_year, other_year = _day_formats(language)
    format_ = this_year if value.year == timezone.localdate().year else other_year
    return _formatted_day(value, format_, language)


@register.filter
def day(value) -> str:
    """A date: "13 Dec" this year, "13 Dec 2027" in any other."""
    return day_text(value)


def _zone_name(moment: dt.datetime) -> str:
    """Django's "T" format: the zone's abbreviation, empty for a time that is ambiguous or
    does not exist in the zone (the hour a DST change repeats or skips)."""
    zone = moment.tzinfo
    if zone.utcoffset(moment.replace(fold=not moment.fold)) != zone.utcoffset(moment):
        return ""
    return str(zone.tzname(moment))


@register.filter
def when(value) -> str:
    """A moment in the user's zone, labelled: "4 Nov, 16:43 CET" (the year when not this one)."""
    if not value:
        return ""
    if not timezone.is_aware(value):
        return f"{day_text(value.date())}, {date_format(value, 'H:i T')}"
    local = timezone.localtime(value)
    return f"{day_text(local.date())}, {local:%H:%M} {_zone_name(local)}"


@register.filter
def in_sentence(label) -> str:
    """A choice label inside a sentence: lower case in English, German keeps its capitals."""
    from deals.models import in_sentence as _in_sentence

    return _in_sentence(label)


@receiver(setting_changed)
def _forget_formats(*, setting, **kwargs) -> None:
    """Tests that change languages or formats see them (the caches above are per process)."""
    if setting in {"LANGUAGES", "LANGUAGE_CODE", "LOCALE_PATHS", "FORMAT_MODULE_PATH"}:
        _day_formats.cache_clear()
        _formatted_day.cache_clear()
