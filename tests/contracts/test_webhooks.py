"""DocuSign Connect webhooks: verified, stored first, processed once, in any order; reconcile."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging

import pytest

from contracts import services, tasks
from contracts.documents import sha256_hex
from contracts.models import ContractVersion, EnvelopeEvent, WebhookDelivery
from deals.models import DealState

from .conftest import HMAC_KEY

Status = ContractVersion.Status
URL = "/contracts/webhooks/docusign/"


def _body(event: str, envelope_id: str) -> bytes:
    return json.dumps(
        {
            "event": event,
            "apiVersion": "v2.1",
            "uri": f"/restapi/v2.1/accounts/a/envelopes/{envelope_id}",
            "retryCount": 0,
            "configurationId": 123,
            "generatedDateTime": "2026-11-24T10:00:00.000Z",
            "data": {"accountId": "a", "userId": "u", "envelopeId": envelope_id},
        }
    ).encode()


def _sig(body: bytes, key: str = HMAC_KEY) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """POST a delivery like DocuSign does (signature headers on the raw body); run its task."""

    def _deliver(event=None, envelope_id="", *, body=None, headers=None):
        body = body if body is not None else _body(event, envelope_id)
        if headers is None:
            headers = {"HTTP_X_DOCUSIGN_SIGNATURE_1": _sig(body)}
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(URL, data=body, content_type="application/json", **headers)

    return _deliver


@pytest.fixture
def sent(docusign, termed_deal, rep, run_on_commit):
    version = services.contract_generate(deal=termed_deal, by=rep)
    run_on_commit(services.contract_send, version=version, by=rep)
    version.refresh_from_db()
    assert version.status == Status.SENT
    return version


def test_completed_webhook_stores_the_signed_pdf_and_wins_the_deal(sent, deliver, docusign):
    """A verified envelope-completed downloads documents/combined, keeps it with its hash."""
    docusign.set_status(sent.envelope_id, "completed")
    response = deliver("envelope-completed", sent.envelope_id)
    assert response.status_code == 200
    sent.refresh_from_db()
    assert sent.status == Status.COMPLETED
    with sent.signed_pdf.open("rb") as handle:
        signed = handle.read()
    assert signed.startswith(b"%PDF")
    assert sent.signed_sha256 == sha256_hex(signed)
    assert docusign.requests("GET", f"{sent.envelope_id}/documents/combined")
    sent.deal.refresh_from_db()
    assert sent.deal.state == DealState.CLOSED_WON
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.APPLIED and delivery.processed_at


def test_a_key_other_than_the_first_is_accepted(sent, deliver):
    """Any configured key matching any X-DocuSign-Signature-N header verifies the delivery."""
    body = _body("envelope-delivered", sent.envelope_id)
    response = deliver(
        body=body,
        headers={
            "HTTP_X_DOCUSIGN_SIGNATURE_1": _sig(body, "some-other-key"),
            "HTTP_X_DOCUSIGN_SIGNATURE_2": _sig(body, "old-connect-key"),
        },
    )
    assert response.status_code == 200
    sent.refresh_from_db()
    assert sent.status == Status.DELIVERED


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_X_DOCUSIGN_SIGNATURE_1": "bm90IHRoZSBzaWduYXR1cmU="},
        {"HTTP_X_DOCUSIGN_SIGNATURE_1": ""},
    ],
    ids=["missing", "wrong", "empty"],
)
def test_bad_or_missing_hmac_is_refused_and_changes_nothing(sent, deliver, headers):
    """Without a valid signature: 401, nothing stored, nothing changed."""
    response = deliver("envelope-completed", sent.envelope_id, headers=headers)
    assert response.status_code == 401
    assert not WebhookDelivery.objects.exists()
    sent.refresh_from_db()
    sent.deal.refresh_from_db()
    assert sent.status == Status.SENT
    assert sent.deal.state == DealState.AGREEMENT_SENT


def test_body_changed_after_signing_is_refused(sent, deliver):
    """The HMAC covers the raw bytes: a re-serialised or altered body does not verify."""
    body = _body("envelope-completed", sent.envelope_id)
    altered = body.replace(b'"retryCount": 0', b'"retryCount":0')
    response = deliver(body=altered, headers={"HTTP_X_DOCUSIGN_SIGNATURE_1": _sig(body)})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"event": "envelope-completed"}', b'{"event": "x", "data": {}}'],
    ids=["not-json", "not-object", "no-data", "no-envelope"],
)
def test_malformed_body_with_good_hmac_is_400(sent, deliver, body):
    """A verified but malformed delivery gets 400 and changes nothing."""
    response = deliver(body=body)
    assert response.status_code == 400
    assert not WebhookDelivery.objects.exists()
    sent.refresh_from_db()
    assert sent.status == Status.SENT


def test_deeply_nested_json_with_good_hmac_is_400_not_500(sent, deliver, caplog):
    """JSON nested 100,000 levels deep, correctly signed, is refused with a 400 before
    `json.loads` could recurse (it raised RecursionError: a 500); nothing is stored."""
    body = b'{"event": "envelope-completed", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with caplog.at_level("ERROR", logger="django.request"):
        response = deliver(body=body)
    assert response.status_code == 400
    assert "nested deeper than 32 levels" in response.json()["error"]
    assert not caplog.records
    assert not WebhookDelivery.objects.exists()


def test_nesting_at_the_limit_and_brackets_inside_strings_are_fine(sent, deliver):
    """A real delivery with a few levels of nesting, and "[[[[" inside a string, passes."""
    payload = json.loads(_body("envelope-completed", sent.envelope_id))
    payload["data"]["envelopeSummary"] = {"note": "[" * 500, "a": [[[[{"b": [1]}]]]]}
    response = deliver(body=json.dumps(payload).encode())
    assert response.status_code == 200


def test_an_oversized_body_is_400_before_it_is_read(sent, deliver, settings):
    """A body over DOCUSIGN_WEBHOOK_MAX_BYTES is refused with a 400, signed or not."""
    settings.DOCUSIGN_WEBHOOK_MAX_BYTES = 1000
    payload = json.loads(_body("envelope-completed", sent.envelope_id))
    payload["padding"] = "x" * 2000
    response = deliver(body=json.dumps(payload).encode())
    assert response.status_code == 400
    assert response.json()["error"] == "The body is larger than 1000 bytes."
    assert not WebhookDelivery.objects.exists()


def test_duplicate_delivery_is_processed_once(sent, deliver, docusign):
    """The same (envelope, event) delivered twice is stored twice and applied once."""
    docusign.set_status(sent.envelope_id, "completed")
    assert deliver("envelope-completed", sent.envelope_id).status_code == 200
    assert deliver("envelope-completed", sent.envelope_id).status_code == 200
    outcomes = sorted(WebhookDelivery.objects.values_list("outcome", flat=True))
    assert outcomes == ["applied", "duplicate"]
    assert EnvelopeEvent.objects.filter(envelope_id=sent.envelope_id).count() == 1
    assert len(docusign.requests("GET", "/documents/combined")) == 1
    assert sent.deal.events.filter(transition="mark_won").count() == 1


def test_completed_before_delivered_still_wins(sent, deliver, docusign):
    """Out of order: a late 'delivered' after 'completed' does not move the status back."""
    docusign.set_status(sent.envelope_id, "completed")
    deliver("envelope-completed", sent.envelope_id)
    deliver("envelope-delivered", sent.envelope_id)
    deliver("envelope-sent", sent.envelope_id)
    sent.refresh_from_db()
    sent.deal.refresh_from_db()
    assert sent.status == Status.COMPLETED
    assert sent.deal.state == DealState.CLOSED_WON


def test_unknown_envelope_is_answered_200_logged_and_ignored(sent, deliver, caplog):
    """An envelope we never sent: 200 (so DocuSign stops retrying), logged, nothing changes."""
    with caplog.at_level(logging.WARNING, logger="contracts.services"):
        response = deliver("envelope-completed", "00000000-unknown")
    assert response.status_code == 200
    assert WebhookDelivery.objects.get().outcome == WebhookDelivery.Outcome.UNKNOWN_ENVELOPE
    assert "unknown envelope 00000000-unknown" in caplog.text
    sent.refresh_from_db()
    assert sent.status == Status.SENT


def test_declined_webhook_reopens_negotiation(sent, deliver, docusign):
    """envelope-declined: the version is declined, an objection is recorded, negotiating."""
    docusign.decline(sent.envelope_id, "")
    deliver("envelope-declined", sent.envelope_id)
    sent.refresh_from_db()
    sent.deal.refresh_from_db()
    assert sent.status == Status.DECLINED
    assert sent.deal.state == DealState.NEGOTIATING
    assert sent.deal.objections.filter(detail__contains="Declined to sign").exists()


def test_voided_webhook_marks_the_version_voided(sent, deliver, docusign):
    """Voided in DocuSign's web app: the version is voided with DocuSign's reason."""
    docusign.void(sent.envelope_id, "Wrong billing address")
    deliver("envelope-voided", sent.envelope_id)
    sent.refresh_from_db()
    assert sent.status == Status.VOIDED
    assert sent.status_reason == "Voided in DocuSign: Wrong billing address"
    sent.deal.refresh_from_db()
    assert sent.deal.state == DealState.AGREEMENT_SENT


def test_the_webhook_url_is_exact_and_post_only(client, sent, deliver):
    """Served at the exact URL with no redirect (a redirect is a failed delivery); POST only."""
    from django.urls import reverse

    assert reverse("contracts:docusign_webhook") == URL
    assert client.get(URL).status_code == 405
    response = deliver("envelope-delivered", sent.envelope_id)
    assert response.status_code == 200 and "Location" not in response.headers


def test_download_failure_is_retried_and_recorded(sent, deliver, docusign, settings):
    """If the signed PDF cannot be downloaded, the delivery stays in the inbox as an error."""
    docusign.set_status(sent.envelope_id, "completed")
    docusign.fail("500", times=10, method="GET", path_contains="/documents/combined")
    assert deliver("envelope-completed", sent.envelope_id).status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.ERROR
    assert "download the signed document" in delivery.error
    sent.refresh_from_db()
    assert sent.status == Status.SENT
    docusign.failures.clear()
    assert tasks.process_webhook.apply(args=[delivery.pk]).get() == "applied"
    sent.refresh_from_db()
    assert sent.status == Status.COMPLETED


def test_reconcile_catches_envelopes_whose_webhooks_never_came(sent, docusign):
    """list_status_changes finds the completed envelope; the deal is won once."""
    docusign.set_status(sent.envelope_id, "completed")
    counts = tasks.reconcile.apply().get()
    assert counts["applied"] == 1
    sent.refresh_from_db()
    sent.deal.refresh_from_db()
    assert sent.status == Status.COMPLETED and sent.signed_pdf
    assert sent.deal.state == DealState.CLOSED_WON
    polled = docusign.requests("GET", "/envelopes")
    assert any(sent.envelope_id in r.query.get("envelope_ids", [""])[0] for r in polled)
    assert tasks.reconcile.apply().get()["applied"] == 0


def test_reconcile_command(sent, docusign, capsys):
    from django.core.management import call_command

    docusign.set_status(sent.envelope_id, "declined")
    call_command("reconcile_contracts")
    assert "1 applied" in capsys.readouterr().out
    sent.refresh_from_db()
    assert sent.status == Status.DECLINED


def test_reconcile_processes_inbox_deliveries_whose_task_never_ran(sent):
    """A stored delivery left pending (the broker was down) is processed by reconcile."""
    import datetime as dt

    from django.utils import timezone

    delivery = WebhookDelivery.objects.create(
        provider="docusign",
        event="envelope-delivered",
        envelope_id=sent.envelope_id,
        body="{}",
        received_at=timezone.now() - dt.timedelta(minutes=10),
    )
    assert services.contracts_reconcile()["inbox"] == 1
    delivery.refresh_from_db()
    sent.refresh_from_db()
    assert delivery.outcome == WebhookDelivery.Outcome.APPLIED
    assert sent.status == Status.DELIVERED


def test_beat_runs_the_reconcile_task(settings):
    """Celery beat polls for missed webhooks every 15 minutes by default."""
    from closing_crm.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["contracts-reconcile"]
    assert entry["task"] == "contracts.reconcile" == tasks.reconcile.name
    assert entry["schedule"] == 900
    assert "contracts.send_version" in app.tasks
