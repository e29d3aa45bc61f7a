"""Scale-out: dashboards, coaching, drill-downs and CSV exports read from a real PostgreSQL
streaming replica (127.0.0.1:5433, started by .ci/run with pg_basebackup -R), and a user's
own change is read back from the primary.

Under CI=true a missing replica fails the test; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import csv
import io
import os
import time
from decimal import Decimal

import dj_database_url
import pytest
from django.db import OperationalError, connections
from django.db.utils import load_backend
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from closing_crm.replica import PIN_COOKIE, REPLICA
from deals import services
from deals.models import LossReason

from .conftest import require_service

REPLICA_TEST_URL = os.environ.get("REPLICA_TEST_URL", "postgres://postgres@127.0.0.1:5433/")


@pytest.fixture
def replica(postgres, settings):
    """The `replica` database, pointed at the streaming replica's copy of the test database.

    The connection is made here rather than by the test database setup: the replica is
    read-only, and the primary's test database reaches it by streaming replication.
    """
    target = dj_database_url.parse(REPLICA_TEST_URL)
    settings_dict = {
        **connections["default"].settings_dict,
        **{key: target[key] for key in ("HOST", "PORT", "USER", "PASSWORD")},
        "NAME": connections["default"].settings_dict["NAME"],  # the test database's copy
        "CONN_MAX_AGE": 0,
    }
    configured = connections.settings.pop(REPLICA, None)  # DATABASE_REPLICA_URL, if set
    settings.DATABASE_REPLICA_ALIAS = REPLICA
    wrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, REPLICA)
    connections[REPLICA] = wrapper
    try:
        try:
            with wrapper.cursor() as cursor:
                cursor.execute("SELECT pg_is_in_recovery()")
                in_recovery = cursor.fetchone()[0]
            reason = "the server there is not a standby (pg_is_in_recovery() is false)"
        except OperationalError as exc:
            in_recovery, reason = False, str(exc).strip().splitlines()[0]
        require_service(
            in_recovery, f"A PostgreSQL streaming replica at {REPLICA_TEST_URL} ({reason})"
        )
        yield wrapper
    finally:
        wrapper.close()
        del connections[REPLICA]
        if configured is not None:
            connections.settings[REPLICA] = configured


def wait_until_replicated(replica, deals: int) -> None:
    """Streaming replication is asynchronous: wait (up to 10 s) until the replica has
    replayed what the primary committed."""
    for _ in range(100):
        with replica.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM deals_deal")
            if cursor.fetchone()[0] == deals:
                return
        time.sleep(0.1)
    pytest.fail("The replica did not catch up with the primary within 10 s.")


def pipeline_counts(response) -> dict[str, int]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + int(row["deals"])
    return counts


def tables(queries) -> str:
    return " ".join(q["sql"] for q in queries)


@pytest.mark.django_db(transaction=True)
def test_dashboard_reads_go_to_the_replica_and_see_committed_data(
    replica, client, manager, rep, account
):
    """The dashboard, its CSV figures and the coaching page run their queries on the
    replica (the primary only answers the session and user lookups), and the figures
    include every deal committed on the primary."""
    deals = [
        services.deal_create(by=rep, account=account, title=f"Deal {i}", amount=Decimal(100))
        for i in range(3)
    ]
    wait_until_replicated(replica, len(deals))
    client.force_login(manager)
    primary = connections["default"]
    for url in (
        reverse("pipeline:dashboard"),
        reverse("pipeline:coaching"),
        reverse("pipeline:dashboard_deals") + "?state=intent_spotted",
        reverse("pipeline:dashboard_csv", args=["pipeline"]),
        reverse("deals:deal_list_csv"),
    ):
        with (
            CaptureQueriesContext(primary) as on_primary,
            CaptureQueriesContext(replica) as on_replica,
        ):
            response = client.get(url)
            if response.streaming:  # a streamed CSV reads while it is sent
                b"".join(response.streaming_content)
        assert response.status_code == 200, url
        assert "deals_deal" in tables(on_replica.captured_queries), url
        assert "deals_deal" not in tables(on_primary.captured_queries), url
    counts = pipeline_counts(client.get(reverse("pipeline:dashboard_csv", args=["pipeline"])))
    assert counts["intent_spotted"] == 3


@pytest.mark.django_db(transaction=True)
def test_after_a_change_the_user_reads_the_primary(replica, client, rep, account):
    """Right after marking a deal lost, the rep's dashboard comes from the primary (the
    change is there at once, whatever the replication lag); other users still read the
    replica."""
    deal = services.deal_create(by=rep, account=account, title="Lost soon", amount=Decimal(1))
    wait_until_replicated(replica, 1)
    client.force_login(rep)
    response = client.post(
        reverse("deals:deal_transition", args=[deal.pk, "mark_lost"]),
        {"expected_state": deal.state, "loss_reason": LossReason.values[0], "reason": ""},
    )
    assert response.status_code in (200, 302)
    assert client.cookies[PIN_COOKIE].value == "1"
    with CaptureQueriesContext(replica) as on_replica:
        counts = pipeline_counts(client.get(reverse("pipeline:dashboard_csv", args=["pipeline"])))
    assert counts.get("intent_spotted", 0) == 0
    assert on_replica.captured_queries == []
