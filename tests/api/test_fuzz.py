"""Schemathesis fuzzes every API operation from the OpenAPI schema: no request gets a 500."""

from __future__ import annotations

import os
from collections import Counter
from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error

from contracts.models import ContractVersion
from deals import services

#: Examples per operation: enough to hit bad types, huge numbers, odd text and unknown ids,
#: small enough that the whole run stays well under two minutes on a shared machine.
MAX_EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "20"))


@pytest.fixture
def keep_test_connection():
    """The real WSGI handler closes DB connections after each request, which would end the
    test's transaction; Django's own test client disconnects the same signals."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(rep, manager, teammate, other_rep, account, contact, make_deal):
    """A small pipeline: deals in several states, one with a contract, one from another team."""
    deals = [make_deal(title=f"Fuzz deal {n}", amount=Decimal(1000 * n)) for n in range(1, 4)]
    services.deal_ask_record(
        deal=deals[1], by=rep, channel="call", statement="Shall we?", answer="yes"
    )
    ContractVersion.objects.create(deal=deals[2], number=1)
    services.buying_signal_record(
        deal=deals[0], by=rep, kind="pricing", note="Price?", channel="call"
    )
    services.objection_raise(deal=deals[0], by=rep, category="price", detail="Too dear")
    services.concession_propose(deal=deals[0], by=rep, give="5%", get="3 years")
    foreign = services.account_create(by=other_rep, team=other_rep.team, name="Foreign")
    services.deal_create(by=other_rep, account=foreign, title="Not yours")
    return deals


def test_no_generated_request_gets_a_server_error(seeded, rep, settings, keep_test_connection):
    """Every operation, with generated parameters and bodies, answers below 500."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "100000/minute", "anon": "100000/minute"},
    }
    token = Token.objects.create(user=rep)
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    headers = {"Authorization": f"Token {token.key}"}
    failures = []
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20

    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            response = case.call(headers=headers)
            statuses[response.status_code // 100 * 100] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} → {response.status_code}")
            case.validate_response(response, checks=[not_a_server_error])

        try:
            run()
        except Exception as error:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n".join(failures)
    # The run reached real data (2xx) and was refused cleanly where input was bad (4xx).
    assert statuses[200] > 20 and statuses[400] > 50, statuses
