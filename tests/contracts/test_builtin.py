"""Contracts with the built-in provider: generate, send, view, sign, decline, void, revise."""

from __future__ import annotations

import datetime as dt
import importlib
import io

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from pypdf import PdfReader

from contracts import documents, services
from contracts.esign.builtin import signing_token
from contracts.models import ContractTemplate, ContractVersion
from contracts.signals import contract_sent, contract_withdrawn
from deals import services as deal_services
from deals.models import BuyingSignal, DealEvent, DealState, Objection
from deals.services import DealError, NotPermitted

Status = ContractVersion.Status


def _read(field) -> bytes:
    with field.open("rb") as handle:
        return handle.read()


def _sent(run_on_commit, deal, rep) -> ContractVersion:
    version = services.contract_generate(deal=deal, by=rep)
    run_on_commit(services.contract_send, version=version, by=rep)
    version.refresh_from_db()
    return version


def test_default_template_ships_with_anchor_strings(db):
    """A data migration ships one default template that renders the DocuSign anchor strings."""
    from django.apps import apps

    shipped = importlib.import_module("contracts.migrations.0002_initial")
    ContractTemplate.objects.all().delete()
    shipped.add_default(apps, None)
    shipped.add_default(apps, None)  # idempotent
    template = ContractTemplate.objects.get()
    assert template.is_default and template.is_active
    html = documents.render_template(template.body, documents.SAMPLE_TERMS)
    assert documents.SIGN_ANCHOR in html and documents.DATE_ANCHOR in html


def test_pdf_contains_the_deal_terms_and_anchor_text(termed_deal, rep):
    """The generated PDF shows the account, signer, amounts, items, term and anchors (pypdf)."""
    version = services.contract_generate(deal=termed_deal, by=rep)
    pdf = _read(version.pdf)
    assert pdf.startswith(b"%PDF")
    assert version.sha256 == documents.sha256_hex(pdf)
    text = documents.pdf_text(pdf)
    for expected in [
        "Acme GmbH",
        "Ann Buyer",
        "EUR 12,000.00",
        "Platform licence",
        "Onboarding package",
        "24 months",
        "1 January 2027",
        "quarterly",
        "/sn1/",
        "/dt1/",
    ]:
        assert expected in text, expected
    assert version.status == Status.DRAFT
    assert version.signer_email == "ann@acme.example"
    assert "Platform licence" in version.html


def test_template_sandbox_exposes_only_the_terms(db):
    """Admin templates cannot load tag libraries, include files, or dump the context."""
    for body in ["{% load static %}", "{% include 'base.html' %}", "{% debug %}", "{% url 'x' %}"]:
        with pytest.raises(documents.TemplateProblem):
            documents.render_template(body, documents.SAMPLE_TERMS)
    out = documents.render_template(
        "{{ account.name|upper }} {{ settings.SECRET_KEY }}{{ deal.pk }}", documents.SAMPLE_TERMS
    )
    assert out.strip() == "ACME GMBH"


def test_template_output_is_escaped(deal, signer, rep):
    """Deal data is escaped in the contract HTML (a title cannot inject markup)."""
    deal.title = "<script>alert(1)</script>"
    deal.save()
    version = services.contract_generate(deal=deal, by=rep)
    assert "<script>" not in version.html
    assert "&lt;script&gt;" in version.html


def test_send_emails_a_signed_link_and_moves_the_deal(termed_deal, rep, run_on_commit):
    """Sending marks the version sent, emails the signer a link and moves to agreement_sent."""
    sent_signals, withdrawn = [], []

    def on_sent(**kw):
        sent_signals.append(kw["version"])

    def on_withdrawn(**kw):
        withdrawn.append(kw["version"])

    contract_sent.connect(on_sent)
    contract_withdrawn.connect(on_withdrawn)
    try:
        version = _sent(run_on_commit, termed_deal, rep)
    finally:
        contract_sent.disconnect(on_sent)
        contract_withdrawn.disconnect(on_withdrawn)
    termed_deal.refresh_from_db()
    assert termed_deal.state == DealState.AGREEMENT_SENT
    assert version.status == Status.SENT and version.provider == "builtin"
    assert version.sent_at and version.envelope_id.startswith("builtin-")
    assert [v.pk for v in sent_signals] == [version.pk] and not withdrawn
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ann@acme.example"]
    assert "/sign/" in message.body
    assert termed_deal.events.filter(kind=DealEvent.Kind.CONTRACT).count() >= 2


def test_the_signer_is_chosen_never_guessed(deal, rep, contact):
    """With no signer in the buying group, generating asks who signs (the decision maker is
    not assumed); choosing one adds them to the buying group as the signer."""
    from deals.models import Stakeholder

    deal_services.stakeholder_add(
        deal=deal, by=rep, contact=contact, role=Stakeholder.Role.DECISION_MAKER
    )
    with pytest.raises(DealError, match="Choose who signs"):
        services.contract_generate(deal=deal, by=rep)
    assert not deal.contract_versions.exists()
    version = services.contract_generate(deal=deal, by=rep, signer=contact)
    assert (version.signer_name, version.signer_email) == (contact.full_name, contact.email)
    assert deal.stakeholders.filter(contact=contact, role=Stakeholder.Role.SIGNER).exists()
    deal.refresh_from_db()
    assert deal.state == DealState.INTENT_SPOTTED


def test_only_who_works_the_deal_may_generate_or_send(deal, signer, teammate, rep):
    """A teammate who can read the deal cannot generate or send its contract."""
    with pytest.raises(NotPermitted):
        services.contract_generate(deal=deal, by=teammate)
    version = services.contract_generate(deal=deal, by=rep)
    with pytest.raises(NotPermitted):
        services.contract_send(version=version, by=teammate)


def test_sent_version_is_immutable(termed_deal, rep, run_on_commit):
    """A sent version cannot be sent again; a change means a new version."""
    version = _sent(run_on_commit, termed_deal, rep)
    with pytest.raises(DealError, match="only a draft"):
        services.contract_send(version=version, by=rep)


def test_buyer_opens_signs_and_deal_is_won(termed_deal, rep, client, run_on_commit):
    """Opening records 'viewed' and a buying signal; signing stamps the PDF and wins the deal."""
    version = _sent(run_on_commit, termed_deal, rep)
    url = reverse("contracts_public:sign", args=[signing_token(version)])
    page = client.get(url, HTTP_USER_AGENT="BuyerBrowser/1.0")
    assert page.status_code == 200
    assert b"Sign the contract" in page.content
    version.refresh_from_db()
    assert version.status == Status.VIEWED and version.viewed_at
    assert termed_deal.signals.filter(kind=BuyingSignal.Kind.CONTRACT_VIEWED).count() == 1
    client.get(url)  # a second visit is not a second signal
    assert termed_deal.signals.filter(kind=BuyingSignal.Kind.CONTRACT_VIEWED).count() == 1

    token = signing_token(version)
    response = client.post(
        reverse("contracts_public:submit", args=[token]),
        {"full_name": "ann  buyer", "consent": "on"},
        HTTP_USER_AGENT="BuyerBrowser/1.0",
    )
    assert response.status_code == 302
    version.refresh_from_db()
    termed_deal.refresh_from_db()
    assert version.status == Status.COMPLETED and version.completed_at
    assert termed_deal.state == DealState.CLOSED_WON
    signed = _read(version.signed_pdf)
    assert version.signed_sha256 == documents.sha256_hex(signed)
    reader = PdfReader(io.BytesIO(signed))
    original_pages = len(PdfReader(io.BytesIO(_read(version.pdf))).pages)
    assert len(reader.pages) == original_pages + 1
    audit = reader.pages[-1].extract_text()
    for expected in ["Signature audit trail", "ann buyer", "ann@acme.example", "127.0.0.1"]:
        assert expected in audit
    assert "BuyerBrowser/1.0" in audit
    assert version.sha256 in audit.replace("\n", "")
    signature_page = reader.pages[original_pages - 1].extract_text()
    assert "Signed electronically" in signature_page
    # The "Date:" line carries the signing date, not a blank.
    assert documents.signed_on_text(version.signature["signed_at"]) in signature_page
    done = client.get(reverse("contracts_public:sign", args=[token]))
    assert b"Signed. Thank you!" in done.content
    # The document on the page now shows the signature, not empty signature lines.
    shown = client.get(reverse("contracts_public:document", args=[token])).content.decode()
    assert "ann buyer" in shown and documents.SIGN_ANCHOR not in shown


def test_signing_needs_the_signers_name_and_consent(termed_deal, rep, client, run_on_commit):
    """A wrong name or missing consent is refused with a clear message; nothing is signed."""
    version = _sent(run_on_commit, termed_deal, rep)
    submit = reverse("contracts_public:submit", args=[signing_token(version)])
    wrong = client.post(submit, {"full_name": "Someone Else", "consent": "on"})
    assert wrong.status_code == 400
    assert "as it appears on the contract: Ann Buyer" in wrong.content.decode()
    # What the buyer already ticked and typed stays.
    assert 'name="consent" required checked' in wrong.content.decode()
    no_consent = client.post(submit, {"full_name": "Ann Buyer"})
    assert no_consent.status_code == 400
    assert b"agree to sign electronically" in no_consent.content
    version.refresh_from_db()
    assert version.status == Status.SENT
    assert not version.signed_pdf


def test_decline_reopens_negotiation_with_an_objection(termed_deal, rep, client, run_on_commit):
    """A declined contract moves the deal to negotiating and records the reason as objection."""
    version = _sent(run_on_commit, termed_deal, rep)
    token = signing_token(version)
    response = client.post(
        reverse("contracts_public:decline", args=[token]), {"reason": "Payment terms too short"}
    )
    assert response.status_code == 302
    version.refresh_from_db()
    termed_deal.refresh_from_db()
    assert version.status == Status.DECLINED
    assert termed_deal.state == DealState.NEGOTIATING
    objection = termed_deal.objections.get()
    assert "Payment terms too short" in objection.detail
    assert objection.status == Objection.Status.OPEN
    # The link cannot sign a declined contract afterwards.
    again = client.post(
        reverse("contracts_public:submit", args=[token]),
        {"full_name": "Ann Buyer", "consent": "on"},
    )
    assert again.status_code == 400
    version.refresh_from_db()
    assert version.status == Status.DECLINED


def test_links_live_while_their_version_is_out(termed_deal, rep, client, run_on_commit, settings):
    """A changed token is refused; a link works however old while its version is out for
    signature (reminders run for weeks), and dies at once when the version is withdrawn."""
    version = _sent(run_on_commit, termed_deal, rep)
    token = signing_token(version)
    tampered = client.get(reverse("contracts_public:sign", args=[token[:-2] + "xx"]))
    assert tampered.status_code == 403
    assert b"not valid" in tampered.content
    settings.CONTRACT_LINK_MAX_AGE_DAYS = 3
    with time_machine.travel(version.sent_at + dt.timedelta(days=40)):
        old = client.get(reverse("contracts_public:sign", args=[token]))
    assert old.status_code == 200
    services.contract_void(version=version, by=rep, reason="Wrong amount")
    voided = client.get(reverse("contracts_public:sign", args=[token]))
    assert voided.status_code == 403
    assert b"withdrawn" in voided.content


def test_a_signed_contracts_link_shows_the_outcome_until_it_expires(
    termed_deal, rep, client, run_on_commit, settings
):
    """After signing, the link shows the signed contract for the link lifetime, then expires;
    refused links record nothing."""
    version = _sent(run_on_commit, termed_deal, rep)
    token = signing_token(version)
    client.post(
        reverse("contracts_public:submit", args=[token]),
        {"full_name": "Ann Buyer", "consent": "on"},
    )
    assert client.get(reverse("contracts_public:sign", args=[token])).status_code == 200
    settings.CONTRACT_LINK_MAX_AGE_DAYS = 3
    with time_machine.travel(version.sent_at + dt.timedelta(days=4)):
        expired = client.get(reverse("contracts_public:sign", args=[token]))
    assert expired.status_code == 403
    assert b"expired" in expired.content
    version.refresh_from_db()
    assert version.status == Status.COMPLETED


def test_links_are_throttled(termed_deal, rep, client, run_on_commit, settings):
    """Too many requests from one IP for a link get 429 with a message."""
    settings.CONTRACT_LINK_THROTTLE = 3
    version = _sent(run_on_commit, termed_deal, rep)
    url = reverse("contracts_public:sign", args=[signing_token(version)])
    codes = [client.get(url).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert b"Too many requests" in client.get(url).content


def test_accepted_concession_makes_a_new_version_and_sending_it_voids_the_old(
    termed_deal, rep, client, run_on_commit
):
    """A concession accepted after sending produces v2; sending v2 voids v1 and its link."""
    v1 = _sent(run_on_commit, termed_deal, rep)
    old_token = signing_token(v1)
    deal_services.deal_transition(deal=termed_deal, transition="negotiate", by=rep)
    concession = deal_services.concession_propose(
        deal=termed_deal, by=rep, give="Net 60 payment", get="Two-year term"
    )
    deal_services.concession_decide(concession=concession, by=rep, accepted=True)
    v2 = termed_deal.contract_versions.get(number=2)
    assert v2.status == Status.DRAFT
    assert "Net 60 payment" in documents.pdf_text(_read(v2.pdf))
    withdrawn = []

    def on_withdrawn(**kw):
        withdrawn.append(kw["version"].pk)

    contract_withdrawn.connect(on_withdrawn)
    try:
        run_on_commit(services.contract_send, version=v2, by=rep)
    finally:
        contract_withdrawn.disconnect(on_withdrawn)
    v1.refresh_from_db()
    termed_deal.refresh_from_db()
    assert v1.status == Status.VOIDED and "Replaced by version 2" in v1.status_reason
    assert withdrawn == [v1.pk]
    assert termed_deal.state == DealState.AGREEMENT_SENT
    refused = client.get(reverse("contracts_public:sign", args=[old_token]))
    assert refused.status_code == 403  # the old link died with its version
    assert b"can no longer be signed" in refused.content
    sign = client.post(
        reverse("contracts_public:submit", args=[old_token]),
        {"full_name": "Ann Buyer", "consent": "on"},
    )
    assert sign.status_code == 403
    v1.refresh_from_db()
    assert v1.status == Status.VOIDED


def test_rejected_concession_makes_no_new_version(termed_deal, rep, run_on_commit):
    """Only an accepted concession revises the contract."""
    _sent(run_on_commit, termed_deal, rep)
    concession = deal_services.concession_propose(deal=termed_deal, by=rep, give="x", get="y")
    deal_services.concession_decide(concession=concession, by=rep, accepted=False)
    assert termed_deal.contract_versions.count() == 1


def test_void_withdraws_the_contract(termed_deal, rep, run_on_commit):
    """Voiding needs a reason, stops the link and says so on the timeline."""
    version = _sent(run_on_commit, termed_deal, rep)
    with pytest.raises(DealError, match="why"):
        services.contract_void(version=version, by=rep, reason=" ")
    services.contract_void(version=version, by=rep, reason="Wrong billing address")
    version.refresh_from_db()
    assert version.status == Status.VOIDED and version.voided_at
    assert termed_deal.events.filter(reason__contains="Wrong billing address").exists()


def test_resend_emails_the_link_again(termed_deal, rep, run_on_commit):
    """Resending a built-in contract emails the signer a fresh link."""
    version = _sent(run_on_commit, termed_deal, rep)
    run_on_commit(services.contract_resend, version=version, by=rep)
    assert len(mail.outbox) == 2
    assert mail.outbox[1].to == ["ann@acme.example"]


def test_unsigned_contracts_expire_when_configured(termed_deal, rep, run_on_commit, settings):
    """With CONTRACT_EXPIRE_AFTER_DAYS set, reconcile expires built-in contracts left unsigned."""
    version = _sent(run_on_commit, termed_deal, rep)
    assert services.contracts_reconcile()["expired"] == 0  # off by default
    settings.CONTRACT_EXPIRE_AFTER_DAYS = 30
    with time_machine.travel(version.sent_at + dt.timedelta(days=31)):
        counts = services.contracts_reconcile()
    version.refresh_from_db()
    assert counts["expired"] == 1
    assert version.status == Status.EXPIRED


def test_the_panel_link_is_issued_fresh(termed_deal, rep, run_on_commit, client, settings):
    """The signer's link on the deal page is issued when shown, so an old send still has one."""
    settings.CONTRACT_LINK_MAX_AGE_DAYS = 3
    version = _sent(run_on_commit, termed_deal, rep)
    client.force_login(rep)
    with time_machine.travel(version.sent_at + dt.timedelta(days=10)):
        page = client.get(termed_deal.get_absolute_url()).content.decode()
        link = page.split('data-testid="signing-link"')[0].rsplit('value="', 1)[1].split('"')[0]
        assert client.get(link.replace(settings.SITE_URL, "")).status_code == 200


def test_a_broken_template_does_not_block_a_concession(
    termed_deal, rep, run_on_commit, default_template
):
    """If the revision cannot be rendered, the concession is still decided and the rep told."""
    _sent(run_on_commit, termed_deal, rep)
    broken = ContractTemplate.objects.create(
        name="Broken", body="{% for x in %}", version=1, is_default=True
    )
    ContractTemplate.objects.exclude(pk=broken.pk).update(is_default=False, is_active=False)
    deal_services.deal_transition(deal=termed_deal, transition="negotiate", by=rep)
    concession = deal_services.concession_propose(deal=termed_deal, by=rep, give="a", get="b")
    deal_services.concession_decide(concession=concession, by=rep, accepted=True)
    concession.refresh_from_db()
    assert concession.status == "accepted"
    assert termed_deal.contract_versions.count() == 1
    assert termed_deal.events.filter(reason__contains="could not be revised").exists()


def test_a_sent_versions_document_cannot_be_changed(termed_deal, rep, run_on_commit):
    """The model refuses to change the HTML, PDF or hash of a version that left draft."""
    from contracts.models import ImmutableContract

    version = _sent(run_on_commit, termed_deal, rep)
    version.html = "<p>Other terms</p>"
    with pytest.raises(ImmutableContract):
        version.save()
    version.refresh_from_db()
    version.status_reason = "a note"
    version.save(update_fields=["status_reason"])  # status fields still move
