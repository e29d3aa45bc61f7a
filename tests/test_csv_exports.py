"""Every CSV export, walked with hostile values: no cell a spreadsheet would run as a formula.

The URL list is read from the project's routes (every route or view about CSV or export), so a
new CSV export that is not covered here fails `test_every_csv_export_is_walked`. Users,
accounts, deals, notes and an import file carry values that start with each character a
spreadsheet treats as a formula (`=`, `+`, `-`, `@`, tab, carriage return).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import sys
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from deals import services
from deals.models import DealState, LossReason

from .conftest import make_user

#: One hostile value per formula-starting character.
HOSTILE = [
    '=HYPERLINK("http://evil.example","Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?\d+(\.\d+)?")


def _views():
    """(route, view function) of every URL pattern in the project."""

    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                yield prefix + str(entry.pattern), entry.callback

    return list(walk(get_resolver().url_patterns))


def _is_csv_export(route: str, view) -> bool:
    name = getattr(view, "__name__", "")
    return ".csv" in route or name.endswith("_csv") or "export" in name


@pytest.fixture
def hostile_world(team, manager, admin_user):
    """A team whose reps, account, deals, notes and import carry the hostile values."""
    reps = [make_user(value, team) for value in HOSTILE]
    for rep in reps:
        rep.first_name = rep.last_name = ""  # shown by username: the hostile text itself
        rep.save()
    account = services.account_create(by=reps[0], team=team, name=HOSTILE[1])
    deals = []
    for index, (rep, value) in enumerate(zip(reps, HOSTILE, strict=True)):
        deal = services.deal_create(
            by=rep,
            account=account,
            title=f"{value} #{index}",
            amount=Decimal("1000") * (index + 1),
            next_step=value,
            expected_close_date=timezone.localdate() + dt.timedelta(days=10),
        )
        services.deal_activity_record(deal=deal, by=rep, kind="note", reason=value)
        deals.append(deal)
    services.deal_transition(
        deal=deals[0], by=reps[0], transition="mark_lost", loss_reason=LossReason.PRICE
    )
    assert deals[0].state == DealState.CLOSED_LOST
    content = "account,title,amount\n" + "".join(f'"{v}",,1\n' for v in HOSTILE)
    job = services_import(manager, content.encode())
    return {"deal": deals[2], "job": job, "manager": manager, "admin": admin_user}


def services_import(manager, content: bytes) -> dict:
    from deals import imports

    upload = SimpleUploadedFile("hostile.csv", content, content_type="text/csv")
    return imports.import_job_create(upload=upload, kind="deals", team=manager.team, by=manager)


def _urls_for(route: str, view, world) -> list[tuple[str, str]]:
    """(user key, URL) to fetch for one CSV export route: its parameters filled from the
    hostile world (by parameter name, so the test follows views that move between apps)."""
    today = timezone.localdate().isoformat()
    values = {"pk": [world["deal"].pk], "job_id": [world["job"]["id"]], "fmt": ["csv"]}
    if "<slug:figure>" in route:
        values["figure"] = list(sys.modules[view.__module__].CSV_FIGURES)
    urls = ["/" + route]
    for name in re.findall(r"<(?:\w+:)?(\w+)>", route):
        if name not in values:
            return []
        urls = [
            re.sub(rf"<(?:\w+:)?{name}>", str(value), url) for url in urls for value in values[name]
        ]
    name = view.__name__
    if name == "audit_export":
        return [("admin", f"{url}?start={today}&end={today}") for url in urls]
    if name in ("import_errors_csv", "deal_audit_export"):
        return [("manager", url) for url in urls]
    return [("manager", url) for url in urls] + [("admin", url) for url in urls]


def _cells(response) -> list[list[str]]:
    if hasattr(response, "streaming_content"):
        body = b"".join(response.streaming_content)
    else:
        body = response.content
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_every_csv_export_is_walked(hostile_world, client):
    """Each CSV export URL of the project, fetched by a user who sees the hostile data,
    has no live formula cell; the hostile values are there, quoted."""
    exports = [(route, view) for route, view in _views() if _is_csv_export(route, view)]
    assert len(exports) >= 5
    seen_quoted: set[str] = set()
    for route, view in exports:
        urls = _urls_for(route, view, hostile_world)
        assert urls, f"{route} ({view.__name__}) is a CSV export this test does not walk"
        for who, url in urls:
            client.force_login(hostile_world[who])
            response = client.get(url)
            assert response.status_code == 200, url
            if "json" in response["Content-Type"]:
                continue
            assert response["Content-Type"].startswith("text/csv"), url
            rows = _cells(response)
            assert rows, url
            for row in rows:
                for cell in row:
                    live = cell.startswith(FORMULA_START) and not NUMBER.fullmatch(cell)
                    assert not live, f"{url}: live formula cell {cell!r}"
                    if cell.startswith("'") and cell[1:2] in FORMULA_START:
                        seen_quoted.add(cell[1:2])
    # Not vacuous: every kind of hostile start reached some export and was neutralised.
    assert seen_quoted == set(FORMULA_START)


def _column(rows: list[list[str]], name: str) -> set[str]:
    index = rows[0].index(name)
    return {row[index] for row in rows[1:]}


def test_each_export_shows_the_hostile_text_as_text(hostile_world, client):
    """The neutralised cell keeps the whole value after the quote (nothing is lost)."""
    client.force_login(hostile_world["manager"])
    rows = _cells(client.get("/dashboard/csv/reps.csv"))
    assert "'" + HOSTILE[0] in _column(rows, "rep")
    rows = _cells(client.get(reverse("deals:deal_list_csv")))
    assert "'" + HOSTILE[3] in _column(rows, "next_step")
    assert "'" + HOSTILE[4] in _column(rows, "owner")
    job_id = hostile_world["job"]["id"]
    rows = _cells(client.get(reverse("deals:import_errors_csv", args=[job_id])))
    assert "'" + HOSTILE[2] in _column(rows, "account")
    deal = hostile_world["deal"]
    rows = _cells(client.get(reverse("deals:deal_audit_export", args=[deal.pk, "csv"])))
    assert "'" + HOSTILE[2] in _column(rows, "reason")


def test_negative_numbers_stay_numbers():
    """Plain numbers are not formulas: `-12.50` stays a number, `-1+1` does not."""
    from deals.csv_export import csv_cell

    assert csv_cell(Decimal("-12.50")) == "-12.50"
    assert csv_cell("-3") == "-3"
    assert csv_cell("-1+1") == "'-1+1"
    assert csv_cell("＝1+1") == "'＝1+1"
