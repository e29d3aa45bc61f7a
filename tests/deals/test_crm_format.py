"""The product's date filters: cached and hand-formatted, they still read as Django formats."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone, translation
from django.utils.dateformat import format as date_format

from deals.templatetags.crm_format import day_text, when

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def django_when(value: dt.datetime) -> str:
    """`when` as first written: Django's formats all the way."""
    local = timezone.localtime(value)
    return f"{day_text(local.date())}, {date_format(local, 'H:i T')}"


@pytest.mark.parametrize("language", ["en", "de"])
def test_when_matches_django_formats_also_across_daylight_saving_changes(language):
    """Every quarter hour around both 2026 changes in Berlin, the repeated hour included
    (where Django leaves the zone's name out)."""
    starts = [
        dt.datetime(2026, 3, 28, 22, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 24, 22, tzinfo=dt.UTC),
    ]
    moments = [start + dt.timedelta(minutes=15 * i) for start in starts for i in range(24 * 4 * 2)]
    with translation.override(language), timezone.override(BERLIN):
        assert [when(m) for m in moments] == [django_when(m) for m in moments]
        assert when(dt.datetime(2026, 7, 1, 9, 5, tzinfo=dt.UTC)).endswith("11:05 CEST")


@pytest.mark.parametrize("language", ["en", "de"])
def test_day_is_the_language_s_date_with_the_year_only_when_not_this_one(language):
    this_year = timezone.localdate().year
    with translation.override(language):
        ours = [day_text(dt.date(year, 12, 13)) for year in (this_year, this_year + 1)]
    assert ours == (["13 Dec", f"13 Dec {this_year + 1}"] if language == "en" else ours)
    if language == "de":
        assert ours[0] != "13 Dec" and str(this_year + 1) in ours[1]
    with translation.override("en"):
        assert day_text(dt.date(this_year, 12, 13)) == "13 Dec"  # the cache keys the language
