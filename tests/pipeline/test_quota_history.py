"""The quota history is the truth of who set what: under races, random sequences of
changes (allowed or refused) and through the admin, it always chains to the quota."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deals import services
from deals.models import Quota, QuotaChange
from tests.concurrency import run_concurrently
from tests.conftest import make_user

Q3 = dt.date(2026, 7, 1)


def assert_history_chains(quota: Quota) -> None:
    """Each change starts from the amount the previous one left; the last is the quota's."""
    changes = list(quota.changes.order_by("pk"))
    assert changes, "a quota always has the line that created it"
    assert changes[0].old_amount is None
    for before, after in itertools.pairwise(changes):
        assert after.old_amount == before.new_amount
        assert after.old_amount != after.new_amount
    assert changes[-1].new_amount == quota.amount


@pytest.mark.django_db(transaction=True)
def test_managers_setting_the_same_new_quota_at_once_all_land_in_the_history(
    postgres, manager, rep, team
):
    """20 connections create the same quota at the same moment: one row, 20 history lines."""
    deputies = [make_user(f"deputy{i}", team, role="manager") for i in range(19)]
    setters = [manager, *deputies]

    def act(index):
        return services.quota_set(
            by=setters[index],
            rep=rep,
            period_kind="quarter",
            period_start=Q3,
            currency="EUR",
            amount=Decimal(1000 * (index + 1)),
        )

    counter = itertools.count()
    outcomes = run_concurrently(act, load=lambda: next(counter))
    assert [o.error for o in outcomes if o.error] == []
    quota = Quota.objects.get()
    assert quota.changes.count() == 20
    assert_history_chains(quota)


_reps = itertools.count()


@pytest.mark.django_db
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["manager", "admin", "rep", "other_manager"]),
            st.sampled_from(["0", "500", "500.00", "1000.5", "-1", "1.001", "9e99", "75000"]),
        ),
        min_size=1,
        max_size=10,
    )
)
def test_random_changes_keep_quota_and_history_in_step(
    team, manager, admin_user, other_manager, steps
):
    """Whatever users try (refused people, bad amounts, repeats), the quota holds the last
    accepted amount, and the history has one line per actual change, chained."""
    rep = make_user(f"hyp{next(_reps)}", team)
    people = {"manager": manager, "admin": admin_user, "rep": rep, "other_manager": other_manager}
    expected, lines = None, 0
    for who, amount in steps:
        try:
            _quota, changed = services.quota_set(
                by=people[who],
                rep=rep,
                period_kind="month",
                period_start=Q3,
                currency="EUR",
                amount=amount,
            )
        except services.DealError:
            assert who in ("rep", "other_manager") or amount in ("-1", "1.001", "9e99")
            continue
        value = Decimal(amount).quantize(Decimal("0.01"))
        assert changed == (value != expected)
        lines += changed
        expected = value
    quota = Quota.objects.filter(rep=rep).first()
    if expected is None:
        assert quota is None
        return
    assert quota.amount == expected
    assert quota.changes.count() == lines
    assert_history_chains(quota)


@pytest.mark.django_db
def test_the_admin_sets_quotas_through_the_service(client, admin_user, rep):
    client.force_login(admin_user)
    add = reverse("admin:deals_quota_add")
    response = client.post(
        add,
        {
            "rep": rep.pk,
            "period_kind": "quarter",
            "period_start": "2026-08-15",
            "currency": "EUR",
            "amount": "80000",
            "reason": "Board plan",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    quota = Quota.objects.get()
    assert (quota.period_start, quota.team, quota.set_by) == (Q3, rep.team, admin_user)
    change = reverse("admin:deals_quota_change", args=[quota.pk])
    response = client.post(change, {"amount": "85000", "reason": "Raised"})
    assert response.status_code == 302
    lines = list(QuotaChange.objects.order_by("pk").values_list("new_amount", "source", "reason"))
    assert lines == [
        (Decimal("80000.00"), "admin", "Board plan"),
        (Decimal("85000.00"), "admin", "Raised"),
    ]
    assert client.get(reverse("admin:deals_quota_delete", args=[quota.pk])).status_code == 403
    assert client.get(reverse("admin:deals_quotachange_changelist")).status_code == 200
    history = reverse("admin:deals_quotachange_change", args=[quota.changes.first().pk])
    assert client.post(history, {"reason": "rewritten"}).status_code == 403


@pytest.mark.django_db
def test_the_admin_refuses_a_staff_user_who_may_not_set_quotas(client, rep, other_manager):
    other_manager.is_staff = True
    other_manager.is_superuser = False
    other_manager.save()
    from django.contrib.auth.models import Permission

    other_manager.user_permissions.add(*Permission.objects.filter(codename="add_quota"))
    client.force_login(other_manager)
    response = client.post(
        reverse("admin:deals_quota_add"),
        {
            "rep": rep.pk,
            "period_kind": "month",
            "period_start": "2026-07-01",
            "currency": "EUR",
            "amount": "1",
        },
    )
    assert response.status_code == 200
    assert (
        "Only the rep&#x27;s team manager or an admin can set quotas." in response.content.decode()
    )
    assert not Quota.objects.exists()
