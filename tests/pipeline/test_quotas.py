"""Quotas: set and audited through the service, imported from CSV with per-row errors, and
attainment, pacing, gap and coverage checked against hand-computed figures.

The clock is 15 Feb 2026, 10:00 UTC. Q1 2026 has 90 days (31 + 28 + 31), of which 46 have
elapsed counting today (31 in January + 15 in February); February has 28, 15 elapsed.

    deal  owner  state            amount       closed / expected
    A     rita   won              20,000 EUR   won 10 Jan
    B     rita   won               7,000 EUR   won 3 Feb
    C     rita   won               5,000 USD   won 5 Feb (another currency)
    D     rita   won               4,000 EUR   won 20 Dec 2025 (before the quarter)
    E     rita   agreement sent   10,000 EUR   expected 20 Mar (commit)
    F     rita   asked             8,000 EUR   expected 1 Mar (best case)
    G     rita   negotiating       6,000 EUR   expected 10 Apr (after the quarter)
    H     rita   intent spotted    3,000 EUR   expected 1 Mar (pipeline, not commit)
    I     rita   agreement sent    2,000 EUR   no expected date (left out)
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from deals import imports, services
from deals.models import AppendOnlyError, Quota, QuotaChange, QuotaPeriod
from pipeline import selectors as sel
from pipeline.quotas import elapsed_fraction, quota_attainment
from tests.conftest import make_user, record_ask, send_agreement

pytestmark = pytest.mark.django_db

UTC = dt.UTC
TODAY = dt.date(2026, 2, 15)
Q1 = dt.date(2026, 1, 1)
FEB = dt.date(2026, 2, 1)


def at(day: dt.date, hour: int = 10):
    return time_machine.travel(dt.datetime.combine(day, dt.time(hour), tzinfo=UTC), tick=False)


def set_quota(by, rep, kind, start, currency, amount, **extra):
    return services.quota_set(
        by=by,
        rep=rep,
        period_kind=kind,
        period_start=start,
        currency=currency,
        amount=amount,
        **extra,
    )


def _won(rep, manager, account, title, amount, day, currency="EUR"):
    with at(day - dt.timedelta(days=1)):
        deal = services.deal_create(
            by=rep, account=account, title=title, amount=Decimal(amount), currency=currency
        )
    with at(day):
        services.deal_transition(deal=deal, transition="override_won", by=manager, reason="Paper.")
    return deal


@pytest.fixture
def book(rep, manager, account):
    """The deals of the table above, made through the services at their dates."""
    _won(rep, manager, account, "A", 20000, dt.date(2026, 1, 10))
    _won(rep, manager, account, "B", 7000, dt.date(2026, 2, 3))
    _won(rep, manager, account, "C", 5000, dt.date(2026, 2, 5), currency="USD")
    _won(rep, manager, account, "D", 4000, dt.date(2025, 12, 20))
    with at(dt.date(2026, 2, 1)):

        def make(title, amount, close):
            return services.deal_create(
                by=rep,
                account=account,
                title=title,
                amount=amount,
                expected_close_date=close,
            )

        send_agreement(make("E", 10000, dt.date(2026, 3, 20)), rep)
        record_ask(make("F", 8000, dt.date(2026, 3, 1)), rep)
        g = make("G", 6000, dt.date(2026, 4, 10))
        record_ask(g, rep, answer="no")  # asked → negotiating
        make("H", 3000, dt.date(2026, 3, 1))
        send_agreement(make("I", 2000, None), rep)


def filters_for(user, **params):
    with at(TODAY):
        return sel.dashboard_filters(user, params)


# --- the service and its history --------------------------------------------------------------


def test_setting_a_quota_writes_who_set_what_when(manager, rep):
    with at(dt.date(2026, 1, 5)):
        quota, changed = set_quota(manager, rep, "quarter", Q1, "EUR", "90000", reason="Plan")
    assert changed
    assert (quota.team, quota.set_by, quota.amount) == (rep.team, manager, Decimal("90000.00"))
    with at(dt.date(2026, 1, 6)):
        same, changed = set_quota(manager, rep, "quarter", Q1, "EUR", "90000")
    assert same.pk == quota.pk and not changed
    with at(dt.date(2026, 1, 7)):
        set_quota(manager, rep, "quarter", dt.date(2026, 2, 14), "EUR", "95000.50")
    history = list(QuotaChange.objects.filter(quota=quota).order_by("created_at"))
    assert [(h.old_amount, h.new_amount, h.actor, h.source) for h in history] == [
        (None, Decimal("90000.00"), manager, "page"),
        (Decimal("90000.00"), Decimal("95000.50"), manager, "page"),
    ]
    assert history[0].reason == "Plan"
    assert history[1].created_at == dt.datetime(2026, 1, 7, 10, tzinfo=UTC)
    assert Quota.objects.count() == 1  # a date inside the quarter names the same quarter
    with pytest.raises(AppendOnlyError):
        history[0].delete()
    with pytest.raises(AppendOnlyError):
        QuotaChange.objects.all().update(reason="x")


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("-1", "cannot be negative"),
        ("10.001", "two decimals"),
        ("lots", "must be an amount"),
        ("1e13", "at most"),
    ],
)
def test_bad_amounts_are_refused_clearly(manager, rep, amount, message):
    with pytest.raises(services.DealError, match=message):
        set_quota(manager, rep, "month", FEB, "EUR", amount)
    assert not Quota.objects.exists()


def test_only_the_team_manager_or_an_admin_sets_quotas(
    manager, rep, teammate, other_manager, admin_user
):
    with pytest.raises(services.NotPermitted):
        set_quota(teammate, rep, "month", FEB, "EUR", "1000")
    with pytest.raises(services.NotPermitted):
        set_quota(rep, rep, "month", FEB, "EUR", "1000")
    with pytest.raises(services.NotPermitted):
        set_quota(other_manager, rep, "month", FEB, "EUR", "1000")
    _quota, changed = set_quota(admin_user, rep, "month", FEB, "EUR", "1000")
    assert changed


# --- attainment, pacing, gap ------------------------------------------------------------------


def test_elapsed_fraction_counts_today_and_stays_within_the_period():
    assert elapsed_fraction(Q1, dt.date(2026, 3, 31), TODAY) == Decimal(46) / Decimal(90)
    assert elapsed_fraction(Q1, dt.date(2026, 3, 31), dt.date(2025, 12, 31)) == 0
    assert elapsed_fraction(Q1, dt.date(2026, 3, 31), dt.date(2026, 6, 1)) == 1


def test_attainment_pacing_gap_and_coverage_are_hand_computed(book, manager, rep, teammate):
    set_quota(manager, rep, "quarter", Q1, "EUR", "90000")
    set_quota(manager, rep, "month", FEB, "EUR", "14000")
    set_quota(manager, teammate, "quarter", Q1, "EUR", "30000")

    result = quota_attainment(filters_for(manager), today=TODAY)
    rows = {(r["rep"].username, r["kind"]): r for r in result["reps"]}
    quarter = rows[("rita", QuotaPeriod.QUARTER)]
    assert quarter["won"] == Decimal("27000.00")  # A + B; not C (USD) nor D (December)
    assert quarter["attainment"] == Decimal("0.3")
    assert quarter["expected"] == Decimal("46000.00")  # 90,000 × 46/90
    assert quarter["pace"] == Decimal("-19000.00")
    assert quarter["gap"] == Decimal("63000.00")
    assert quarter["commit"] == Decimal("10000.00")  # E; not I (no date)
    assert quarter["best_case"] == Decimal("8000.00")  # F; not G (April)
    assert (quarter["cover"], quarter["short_by"]) == ("short", Decimal("45000.00"))

    month = rows[("rita", QuotaPeriod.MONTH)]
    assert month["won"] == Decimal("7000.00")  # B
    assert month["expected"] == Decimal("7500.00")  # 14,000 × 15/28
    assert month["pace"] == Decimal("-500.00")
    assert month["gap"] == Decimal("7000.00")
    assert (month["commit"], month["best_case"]) == (Decimal("0"), Decimal("0"))

    tim = rows[("tim", QuotaPeriod.QUARTER)]
    assert (tim["won"], tim["gap"], tim["attainment"]) == (0, Decimal("30000.00"), 0)

    team = {(t["kind"], t["currency"]): t for t in result["teams"]}
    q1 = team[(QuotaPeriod.QUARTER, "EUR")]
    assert (q1["reps"], q1["quota"], q1["won"]) == (2, Decimal("120000.00"), Decimal("27000.00"))
    assert q1["expected"] == Decimal("61333.33")  # 120,000 × 46/90
    assert q1["gap"] == Decimal("93000.00")


def test_commit_alone_can_cover_the_gap(manager, rep, account):
    with at(dt.date(2026, 2, 1)):
        deal = services.deal_create(
            by=rep,
            account=account,
            title="Big",
            amount=Decimal("5000"),
            expected_close_date=dt.date(2026, 2, 20),
        )
        send_agreement(deal, rep)
    set_quota(manager, rep, "month", FEB, "EUR", "4000")
    (row,) = quota_attainment(filters_for(manager), today=TODAY)["reps"]
    assert (row["gap"], row["commit"], row["cover"]) == (Decimal("4000.00"), 5000, "commit")


def test_currencies_are_never_added_together(book, manager, rep):
    set_quota(manager, rep, "quarter", Q1, "EUR", "90000")
    set_quota(manager, rep, "quarter", Q1, "USD", "10000")
    result = quota_attainment(filters_for(manager), today=TODAY)
    by_currency = {r["currency"]: r for r in result["reps"]}
    assert by_currency["USD"]["won"] == Decimal("5000.00")
    assert by_currency["EUR"]["won"] == Decimal("27000.00")
    assert {(t["currency"], t["quota"]) for t in result["teams"]} == {
        ("EUR", Decimal("90000.00")),
        ("USD", Decimal("10000.00")),
    }


def test_another_teams_quotas_are_never_shown(
    client, book, manager, rep, teammate, other_manager, other_rep
):
    set_quota(manager, rep, "quarter", Q1, "EUR", "90000")
    set_quota(manager, teammate, "quarter", Q1, "EUR", "30000")
    set_quota(other_manager, other_rep, "quarter", Q1, "USD", "77777")

    reps = {r["rep"].username for r in quota_attainment(filters_for(manager))["reps"]}
    assert reps == {"rita", "tim"}
    # A rep sees their own quota only, even where reps may read the team's deals.
    assert rep.team.reps_see_team_deals
    mine = quota_attainment(filters_for(rep), today=TODAY)["reps"]
    assert [r["rep"].username for r in mine] == ["rita"]

    client.force_login(manager)
    with at(TODAY):
        page = client.get(reverse("pipeline:dashboard")).content.decode()
        assert "Otto" not in page and "77,777" not in page
        quotas_page = client.get(reverse("deals:quotas") + "?period=2026-Q1").content.decode()
        assert "Otto" not in quotas_page and "77,777" not in quotas_page
        assert "90,000 EUR" in quotas_page
        other_team = other_manager.team_id
        assert client.get(reverse("deals:quotas"), {"team": other_team}).status_code == 404
        refused = client.post(
            reverse("deals:quotas"),
            {"rep": other_rep.pk, "period": "2026-Q1", "currency": "EUR", "amount": "1"},
        )
    assert refused.status_code == 400
    assert Quota.objects.filter(rep=other_rep).get().amount == Decimal("77777.00")

    client.force_login(rep)
    with at(TODAY):
        assert client.get(reverse("deals:quotas")).status_code == 403
        home = client.get(reverse("home")).content.decode()
    assert "My quota" in home and "90,000 EUR" in home and "30,000" not in home


def test_the_dashboard_and_my_day_show_attainment(client, book, manager, rep):
    set_quota(manager, rep, "quarter", Q1, "EUR", "90000")
    client.force_login(manager)
    with at(TODAY):
        page = client.get(reverse("pipeline:dashboard")).content.decode()
    assert "Quota attainment" in page
    for text in ("90,000 EUR", "27,000 EUR", "46,000 EUR", "63,000 EUR", "Short by 45,000 EUR"):
        assert text in page
    client.force_login(rep)
    with at(TODAY):
        home = client.get(reverse("home")).content.decode()
    assert "19,000 EUR behind pace" in home


def test_the_quota_drill_downs_list_the_deals_behind_the_figures(client, book, manager, rep):
    set_quota(manager, rep, "quarter", Q1, "EUR", "90000")
    (row,) = quota_attainment(filters_for(manager), today=TODAY)["reps"]
    client.force_login(manager)
    with at(TODAY):
        won = client.get(row["won_href"]).content.decode()
        commit = client.get(row["commit_href"]).content.decode()
    assert ">A<" in won and ">B<" in won and ">C<" not in won and ">D<" not in won
    assert ">E<" in commit and ">I<" not in commit and ">F<" not in commit


def test_the_quotas_page_sets_a_quota(client, manager, rep):
    client.force_login(manager)
    with at(TODAY):
        response = client.post(
            reverse("deals:quotas"),
            {
                "rep": rep.pk,
                "period": "2026-Q2",
                "currency": "EUR",
                "amount": "120000",
                "reason": "New territory",
            },
            follow=True,
        )
    assert response.status_code == 200
    quota = Quota.objects.get()
    assert (quota.period_kind, quota.period_start) == ("quarter", dt.date(2026, 4, 1))
    page = response.content.decode()
    assert "120,000 EUR" in page and "New territory" in page


def test_the_quotas_page_says_what_is_wrong(client, manager, rep):
    client.force_login(manager)
    with at(TODAY):
        response = client.post(
            reverse("deals:quotas"),
            {"rep": rep.pk, "period": "2026-Q2", "currency": "EUR", "amount": "-5"},
        )
    assert response.status_code == 400
    assert "greater than or equal to 0" in response.content.decode()
    assert not Quota.objects.exists()


# --- CSV import --------------------------------------------------------------------------------


def quota_csv(rows, header=("rep", "period", "currency", "amount", "reason")) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def test_quota_import_reports_each_bad_row_and_writes_nothing(manager, rep, teammate, other_rep):
    content = quota_csv(
        [
            ["rita", "2026-Q1", "EUR", "90000", "plan"],  # line 2: fine
            ["nobody", "2026-Q1", "EUR", "1000", ""],  # 3
            ["tim", "2026-Q5", "EUR", "1000", ""],  # 4
            ["tim", "2026-03", "YEN", "1000", ""],  # 5
            ["tim", "2026-03", "EUR", "-3", ""],  # 6
            ["RITA", "2026-q1", "eur", "5", ""],  # 7: repeats line 2
            ["otto", "2026-Q1", "USD", "1000", ""],  # 8: another team's rep
            ["tim", "2026-03", "EUR", "", ""],  # 9
        ]
    )
    result = imports.import_preview(
        raw=io.BytesIO(content), kind="quotas", team=rep.team, by=manager
    )
    errors = {e.line: e.message for e in result.errors}
    assert sorted(errors) == [3, 4, 5, 6, 7, 8, 9]
    assert "No active user “nobody”" in errors[3]
    assert "is not a period" in errors[4]
    assert "YEN" in errors[5]
    assert "negative" in errors[6]
    assert "Repeats line 2" in errors[7]
    assert "No active user “otto”" in errors[8]
    assert "amount is empty" in errors[9]
    with pytest.raises(imports.ImportRejected):
        imports.import_run(raw=io.BytesIO(content), kind="quotas", team=rep.team, by=manager)
    assert not Quota.objects.exists() and not QuotaChange.objects.exists()


def test_quota_import_sets_changes_and_skips_unchanged(manager, rep, teammate):
    first = quota_csv(
        [["rita", "2026-Q1", "EUR", "90000", ""], ["tim", "2026-02", "EUR", "14000", ""]]
    )
    result = imports.import_run(raw=io.BytesIO(first), kind="quotas", team=rep.team, by=manager)
    assert (result.new, result.updated, result.existing) == (2, 0, 0)
    again = imports.import_run(raw=io.BytesIO(first), kind="quotas", team=rep.team, by=manager)
    assert (again.new, again.updated, again.existing) == (0, 0, 2)
    changed = quota_csv([["rita", "2026-Q1", "EUR", "95000", "raised"]])
    preview = imports.import_preview(
        raw=io.BytesIO(changed), kind="quotas", team=rep.team, by=manager
    )
    assert (preview.new, preview.updated) == (0, 1)
    imports.import_run(raw=io.BytesIO(changed), kind="quotas", team=rep.team, by=manager)
    quota = Quota.objects.get(rep=rep)
    assert quota.amount == Decimal("95000.00")
    last = quota.changes.order_by("-pk").first()
    assert (last.old_amount, last.new_amount, last.source, last.reason) == (
        Decimal("90000.00"),
        Decimal("95000.00"),
        "import",
        "raised",
    )


def test_quota_import_page_previews_errors_per_row(client, manager, rep):
    client.force_login(manager)
    upload = SimpleUploadedFile(
        "quotas.csv",
        quota_csv([["rita", "2026-Q1", "EUR", "90000", ""], ["rita", "Q1", "EUR", "1", ""]]),
        content_type="text/csv",
    )
    response = client.post(reverse("deals:import"), {"kind": "quotas", "file": upload}, follow=True)
    page = response.content.decode()
    assert "1 row with errors" in page
    assert "is not a period" in page
    assert "Set 1 quota" not in page  # nothing to confirm while a row is wrong


# --- query counts -------------------------------------------------------------------------------


def _reps_with_deals(team, manager, account, count: int):
    reps = [make_user(f"rep{i}", team) for i in range(3)]
    for rep in reps:
        set_quota(manager, rep, "quarter", Q1, "EUR", "50000")
        set_quota(manager, rep, "month", FEB, "EUR", "10000")
    for i in range(count):
        with at(dt.date(2026, 1, 2)):
            deal = services.deal_create(
                by=manager,
                owner=reps[i % 3],
                account=account,
                title=f"D{i}",
                amount=Decimal(1000 + i),
                expected_close_date=dt.date(2026, 3, 1),
            )
        if i % 4 == 0:
            with at(dt.date(2026, 1, 20)):
                services.deal_transition(
                    deal=deal, transition="override_won", by=manager, reason="x"
                )
        elif i % 4 == 1:
            send_agreement(deal, manager)


def _queries(manager) -> int:
    filters = filters_for(manager)
    with CaptureQueriesContext(connection) as captured:
        quota_attainment(filters, today=TODAY)
    return len(captured)


def test_attainment_queries_do_not_grow_with_deals_or_reps(team, manager, account):
    _reps_with_deals(team, manager, account, 10)
    small = _queries(manager)
    _reps_with_deals_more = [make_user(f"late{i}", team) for i in range(5)]
    for late in _reps_with_deals_more:
        set_quota(manager, late, "quarter", Q1, "EUR", "1")
    for i in range(190):
        with at(dt.date(2026, 1, 2)):
            services.deal_create(
                by=manager, owner=_reps_with_deals_more[i % 5], account=account, title=f"E{i}"
            )
    assert _queries(manager) == small == 2


def test_quota_import_preview_names_the_quotas_it_changes(client, manager, rep):
    set_quota(manager, rep, "quarter", Q1, "EUR", "90000")
    client.force_login(manager)
    upload = SimpleUploadedFile(
        "quotas.csv",
        quota_csv([["rita", "2026-Q1", "EUR", "95000", "raised"]]),
        content_type="text/csv",
    )
    response = client.post(reverse("deals:import"), {"kind": "quotas", "file": upload}, follow=True)
    page = response.content.decode()
    assert "changed (the quota history keeps the old amount)" in page
    assert ">Changed<" in page and "Set 1 quota" in page
