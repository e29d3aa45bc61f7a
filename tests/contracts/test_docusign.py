"""The DocuSign provider: the real docusign-esign SDK against the fake DocuSign server."""

from __future__ import annotations

import base64

import pytest

from contracts import services
from contracts.esign import ProviderError, get_provider
from contracts.models import ContractVersion
from deals.models import DealEvent, DealState
from tests.fakes.docusign import ACCESS_TOKEN, ACCOUNT_ID

Status = ContractVersion.Status


def _read(field) -> bytes:
    with field.open("rb") as handle:
        return handle.read()


def _send(run_on_commit, deal, rep, **kwargs) -> ContractVersion:
    version = services.contract_generate(deal=deal, by=rep)
    run_on_commit(services.contract_send, version=version, by=rep, **kwargs)
    version.refresh_from_db()
    return version


def test_send_creates_an_envelope_with_everything_docusign_needs(
    docusign, termed_deal, rep, run_on_commit
):
    """JWT grant, then one envelope: the PDF, the signer, anchor tabs, deal id, Connect setup."""
    version = _send(run_on_commit, termed_deal, rep)
    assert version.status == Status.SENT
    assert version.envelope_id in docusign.envelopes
    termed_deal.refresh_from_db()
    assert termed_deal.state == DealState.AGREEMENT_SENT

    token_request = docusign.requests("POST", "/oauth/token")[0]
    assert token_request.claims["iss"] == "integration-key-1"
    assert token_request.claims["sub"] == "user-guid-1"
    assert token_request.claims["aud"] == docusign.oauth_host
    assert "signature" in token_request.claims["scope"]
    assert "impersonation" in token_request.claims["scope"]
    assert docusign.requests("GET", "/oauth/userinfo")  # the default account was looked up

    create = docusign.requests("POST", f"/accounts/{ACCOUNT_ID}/envelopes")
    assert len(create) == 1
    assert create[0].headers["Authorization"] == f"Bearer {ACCESS_TOKEN}-1"
    body = create[0].json
    assert body["status"] == "sent"
    document = body["documents"][0]
    assert base64.b64decode(document["documentBase64"]) == _read(version.pdf)
    assert document["fileExtension"] == "pdf" and document["documentId"] == "1"
    signer = body["recipients"]["signers"][0]
    assert signer["email"] == "ann@acme.example" and signer["name"] == "Ann Buyer"
    assert "clientUserId" not in signer  # remote signing by email
    assert signer["tabs"]["signHereTabs"][0]["anchorString"] == "/sn1/"
    assert signer["tabs"]["dateSignedTabs"][0]["anchorString"] == "/dt1/"
    fields = {f["name"]: f["value"] for f in body["customFields"]["textCustomFields"]}
    assert fields["deal_id"] == str(termed_deal.pk)
    notification = body["eventNotification"]
    assert notification["url"] == "https://crm.example.com/contracts/webhooks/docusign/"
    assert notification["includeHMAC"] == "true"
    assert notification["deliveryMode"] == "SIM"
    assert notification["eventData"]["format"] == "json"
    codes = {e["envelopeEventStatusCode"] for e in notification["envelopeEvents"]}
    assert {"sent", "delivered", "completed", "declined", "voided"} <= codes


def test_embedded_signing_sets_client_user_id(docusign, termed_deal, rep, run_on_commit):
    """With embedded signing the signer gets a clientUserId and a recipient view URL."""
    version = _send(run_on_commit, termed_deal, rep, embedded=True)
    signer = docusign.requests("POST", "/envelopes")[0].json["recipients"]["signers"][0]
    assert signer["clientUserId"] == str(version.pk)
    url = get_provider("docusign").signing_view_url(version, "https://crm.example.com/done")
    assert url.endswith(version.envelope_id)
    view = docusign.requests("POST", "/views/recipient")[0].json
    assert view["clientUserId"] == str(version.pk)
    assert view["returnUrl"] == "https://crm.example.com/done"


def test_the_token_is_reused(docusign, termed_deal, rep, run_on_commit):
    """One JWT grant serves later calls until it nears expiry."""
    version = _send(run_on_commit, termed_deal, rep)
    assert get_provider("docusign").status(version) == "sent"
    assert len(docusign.requests("POST", "/oauth/token")) == 1


def test_server_errors_are_retried_then_succeed(docusign, termed_deal, rep, run_on_commit):
    """A 500 then a 429 from DocuSign are retried; the third attempt sends the envelope."""
    docusign.fail("500", method="POST", path_contains="/envelopes")
    docusign.fail("429", method="POST", path_contains="/envelopes")
    version = _send(run_on_commit, termed_deal, rep)
    assert version.status == Status.SENT
    assert version.send_attempts == 3
    assert len(docusign.envelopes) == 1


def test_persistent_errors_end_in_a_clear_failure_state(
    docusign, termed_deal, rep, run_on_commit, client
):
    """When every retry fails, the version says so in plain words; the rep's page still loads."""
    docusign.fail("429", times=10, method="POST", path_contains="/envelopes")
    version = _send(run_on_commit, termed_deal, rep)
    assert version.status == Status.FAILED
    assert "DocuSign is busy" in version.status_reason
    assert version.send_attempts == 3  # the first try and CONTRACTS_MAX_RETRIES=2 retries
    assert termed_deal.events.filter(
        kind=DealEvent.Kind.CONTRACT, reason__contains="could not be sent"
    ).exists()
    client.force_login(rep)
    page = client.get(termed_deal.get_absolute_url())
    assert page.status_code == 200
    assert "Retry sending" in page.content.decode()
    docusign.failures.clear()
    run_on_commit(services.contract_resend, version=version, by=rep)
    version.refresh_from_db()
    assert version.status == Status.SENT


def test_timeouts_are_retried_then_fail_clearly(
    docusign, termed_deal, rep, run_on_commit, settings
):
    """A DocuSign that does not answer in time is not waited for forever."""
    settings.DOCUSIGN_READ_TIMEOUT = 0.3
    docusign.fail("slow", times=3, method="POST", path_contains="/envelopes", delay=0.8)
    version = _send(run_on_commit, termed_deal, rep)
    assert version.status == Status.FAILED
    assert "did not answer in time" in version.status_reason


def test_a_timed_out_send_is_not_sent_twice(docusign, termed_deal, rep, run_on_commit, settings):
    """If DocuSign created the envelope but answered too late, the retry finds and keeps it."""
    settings.DOCUSIGN_READ_TIMEOUT = 0.3
    docusign.fail("slow_answer", method="POST", path_contains="/envelopes", delay=0.8)
    version = _send(run_on_commit, termed_deal, rep)
    assert version.status == Status.SENT
    assert len(docusign.envelopes) == 1
    assert version.envelope_id in docusign.envelopes
    search = docusign.requests("GET", f"/accounts/{ACCOUNT_ID}/envelopes")
    assert search and search[0].query["custom_field"] == [f"contract_version_id={version.pk}"]


def test_sending_a_new_version_voids_the_previous_envelope(
    docusign, termed_deal, rep, run_on_commit
):
    """v2 going out voids v1's envelope at DocuSign."""
    v1 = _send(run_on_commit, termed_deal, rep)
    deal_state = termed_deal.state
    assert deal_state == DealState.AGREEMENT_SENT
    v2 = _send(run_on_commit, termed_deal, rep)
    v1.refresh_from_db()
    assert v1.status == Status.VOIDED
    assert v2.status == Status.SENT
    void = docusign.requests("PUT", v1.envelope_id)
    assert void and void[0].json["status"] == "voided"
    assert "Replaced by version 2" in void[0].json["voidedReason"]
    assert docusign.envelopes[v1.envelope_id].status == "voided"


def test_configuration_errors_are_clear(docusign, termed_deal, rep, run_on_commit, settings):
    """A missing key fails at once (no retries) with the setting's name."""
    settings.DOCUSIGN_PRIVATE_KEY = ""
    version = _send(run_on_commit, termed_deal, rep)
    assert version.status == Status.FAILED
    assert "DOCUSIGN_PRIVATE_KEY" in version.status_reason
    assert version.send_attempts == 1


def test_a_wrong_ca_bundle_is_a_provider_error(docusign, termed_deal, rep, settings, tmp_path):
    """TLS failures toward the OAuth host become a provider error, not a crash."""
    from tests.fakes.docusign import self_signed_cert

    other_ca, _ = self_signed_cert(tmp_path)
    settings.DOCUSIGN_CA_BUNDLE = str(other_ca)
    version = services.contract_generate(deal=termed_deal, by=rep)
    with pytest.raises(ProviderError) as caught:
        get_provider("docusign").send(version)
    assert caught.value.transient
    assert "connection failed" in caught.value.message


def test_in_person_signing_redirects_to_the_recipient_view(
    docusign, termed_deal, rep, client, django_capture_on_commit_callbacks
):
    """The rep chooses 'in person'; the panel offers the DocuSign signing view for the buyer."""
    client.force_login(rep)
    version = services.contract_generate(deal=termed_deal, by=rep)
    page = client.get(termed_deal.get_absolute_url()).content.decode()
    assert "in person" in page
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/contracts/versions/{version.pk}/send/",
            {"embedded": "1", "expected_state": termed_deal.state},
        )
    version.refresh_from_db()
    assert version.embedded_signing and version.status == Status.SENT
    page = client.get(termed_deal.get_absolute_url()).content.decode()
    assert "Open signing (in person)" in page
    response = client.post(f"/contracts/versions/{version.pk}/signing-view/")
    assert response.status_code == 302
    assert response["Location"].endswith(f"/fake-signing/{version.envelope_id}")
    docusign.fail("500", times=10, path_contains="/views/recipient")
    failed = client.post(f"/contracts/versions/{version.pk}/signing-view/", follow=True)
    assert failed.status_code == 200
    assert "Could not open the signing view" in failed.content.decode()
