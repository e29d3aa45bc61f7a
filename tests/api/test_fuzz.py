"""Schemathesis, with every check, finds nothing: the OpenAPI schema says what the API does.

The real `schemathesis run` command (the one an outside tester uses) runs against a live
server on this test's PostgreSQL database, as a rep with a token: every phase (examples,
coverage, fuzzing, stateful), every check (server errors, status codes, content types,
response schemas, schema-valid requests accepted, schema-invalid ones rejected, auth,
methods, …). Generation is deterministic (the same cases every run), so CI cannot flake.

`API_FUZZ_EXAMPLES` sets the examples per operation: the default keeps this test near two
minutes on two cores; `API_FUZZ_EXAMPLES=200` is the outside test's setting (see README).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from contracts.models import ContractVersion
from deals import services
from tests.conftest import require_service

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "20"))
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.fixture
def seeded(rep, manager, teammate, other_rep, account, contact, make_deal):
    """A small pipeline: deals in several states, one with a contract, one from another team."""
    deals = [make_deal(title=f"Fuzz deal {n}", amount=Decimal(1000 * n)) for n in range(1, 4)]
    services.deal_transition(deal=deals[1], transition="ask", by=rep)
    ContractVersion.objects.create(deal=deals[2], number=1)
    services.buying_signal_record(
        deal=deals[0], by=rep, kind="pricing", note="Price?", channel="call"
    )
    services.objection_raise(deal=deals[0], by=rep, category="price", detail="Too dear")
    services.concession_propose(deal=deals[0], by=rep, give="5%", get="3 years")
    services.stakeholder_add(deal=deals[0], by=rep, contact=contact, role="signer")
    foreign = services.account_create(by=other_rep, team=other_rep.team, name="Foreign")
    services.deal_create(by=other_rep, account=foreign, title="Not yours")
    return deals


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_schemathesis_with_every_check_finds_nothing(seeded, rep, live_server, settings, tmp_path):
    """Every operation, every phase, every check: no failure and no error."""
    require_service(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "100000/minute", "anon": "100000/minute"},
    }
    token = Token.objects.create(user=rep)
    report = tmp_path / "schemathesis.json"
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{live_server.url}/api/schema/",
        "--checks=all",
        f"--max-examples={EXAMPLES}",
        "--generation-deterministic",  # same cases every run; no example database
        # One worker: requests in a fixed order (and no concurrent ast.parse in
        # hypothesis, which Python 3.11.7 mishandles across threads).
        "--workers=1",
        "--header",
        f"Authorization: Token {token.key}",
        "--report=json",
        f"--report-json-path={report}",
        "--no-color",
    ]
    run = subprocess.run(
        command, capture_output=True, text=True, timeout=3600, check=False, cwd=tmp_path
    )
    assert report.exists(), run.stdout[-5000:] + run.stderr[-5000:]
    result = json.loads(report.read_text())
    output = run.stdout[-20000:]
    assert result["failures"] == [], output
    assert result["errors"] == [], output
    assert run.returncode == 0, output
    # It really ran: every operation, and many requests each.
    assert result["operations"]["tested"] == result["operations"]["total"] >= 40
    assert result["test_cases"]["generated"] > 20 * result["operations"]["total"]
