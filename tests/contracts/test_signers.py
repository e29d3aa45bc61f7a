"""Several signers in order, a countersigner, the sealed PDF and the verify pages.

Two buyer signers in sequence and the team's manager countersigning: each link works only
in its turn, the deal is won only after the last signature, a decline by anyone ends the
version, and the completed PDF carries a PAdES seal that pyHanko's validator accepts and a
single changed byte breaks.
"""

from __future__ import annotations

import io
import re

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from pypdf import PdfReader

from contracts import consistency, documents, sealing, services
from contracts.esign.builtin import signing_token, signing_url
from contracts.models import ContractSigner, ContractVersion
from contracts.selectors import signing_link_for
from deals import services as deal_services
from deals.models import DealState, Objection, Stakeholder

Status = ContractVersion.Status
SignerStatus = ContractSigner.Status
META = {"ip": "203.0.113.7", "user_agent": "SignerBrowser/2.0"}


def _read(field) -> bytes:
    with field.open("rb") as handle:
        return handle.read()


@pytest.fixture
def bob(rep, account):
    return deal_services.contact_create(
        by=rep, account=account, first_name="Bob", last_name="Finance", email="bob@acme.example"
    )


@pytest.fixture
def countersigning_team(team, manager):
    team.countersign_contracts = True
    team.save()
    return team


@pytest.fixture
def three_signers(termed_deal, rep, bob, countersigning_team):
    """Ann (already the signer) then Bob from the buying group, then Mona countersigns."""
    deal_services.stakeholder_add(deal=termed_deal, by=rep, contact=bob, role="signer")
    return termed_deal


def _sent(run_on_commit, deal, rep, routing="sequence") -> ContractVersion:
    version = services.contract_generate(deal=deal, by=rep, routing=routing)
    run_on_commit(services.contract_send, version=version, by=rep)
    version.refresh_from_db()
    return version


def _signers(version) -> list[ContractSigner]:
    return list(version.signers.order_by("routing_order", "pk"))


def _links_in(messages) -> dict[str, str]:
    """Each recipient's signing link, from the emails."""
    found = {}
    for message in messages:
        match = re.search(r"https?://\S+/sign/\S+/", message.body)
        if match:
            found[message.to[0]] = match.group(0)
    return found


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def _sign(client, url: str, name: str):
    token = url.rstrip("/").rsplit("/", 1)[1]
    return client.post(
        reverse("contracts_public:submit", args=[token]),
        {"full_name": name, "consent": "on"},
        HTTP_USER_AGENT="SignerBrowser/2.0",
    )


def test_the_plan_takes_the_buying_groups_signers_then_the_teams_manager(three_signers, rep):
    version = services.contract_generate(deal=three_signers, by=rep)
    signers = _signers(version)
    assert [(s.name, s.routing_order, s.role) for s in signers] == [
        ("Ann Buyer", 1, "buyer"),
        ("Bob Finance", 2, "buyer"),
        ("Mona", 3, "countersigner"),
    ]
    assert all(s.status == SignerStatus.PENDING for s in signers)
    parallel = services.contract_generate(deal=three_signers, by=rep, routing="parallel")
    assert [s.routing_order for s in _signers(parallel)] == [1, 1, 2]
    with pytest.raises(services.ContractError, match="one after another or together"):
        services.contract_generate(deal=three_signers, by=rep, routing="random")


def test_a_chosen_countersigner_replaces_the_manager(three_signers, rep, teammate):
    team = three_signers.team
    team.countersigner = teammate
    team.save()
    version = services.contract_generate(deal=three_signers, by=rep)
    assert _signers(version)[-1].email == teammate.email
    team.countersign_contracts = False
    team.save()
    version = services.contract_generate(deal=three_signers, by=rep)
    assert [s.role for s in _signers(version)] == ["buyer", "buyer"]


def test_two_buyers_in_sequence_and_a_countersigner_each_sign_in_their_turn(
    three_signers, rep, manager, client, run_on_commit
):
    """Only Ann gets a link first; Bob's and Mona's links are refused until their turn;
    Ann's link after she signed cannot sign again; the deal is won only by Mona's signature;
    everyone gets the sealed copy."""
    deal = three_signers
    mail.outbox.clear()
    version = _sent(run_on_commit, deal, rep)
    ann, bob, mona = _signers(version)
    assert [s.status for s in (ann, bob, mona)] == ["due", "pending", "pending"]
    links = _links_in(mail.outbox)
    assert list(links) == ["ann@acme.example"]

    # Links issued for later signers (forwarded, guessed) are refused with a clear page.
    for person in (bob, mona):
        early = client.get(_path(signing_url(version, person)))
        assert early.status_code == 403
        assert "Not your turn yet" in early.content.decode()
        assert "Ann Buyer" in early.content.decode() and "must sign first" in early.content.decode()
        refused = _sign(client, signing_url(version, person), person.name)
        assert refused.status_code == 403
    assert signing_link_for(version=version, email="bob@acme.example") is None
    assert signing_link_for(version=version, email="ANN@acme.example")

    page = client.get(_path(links["ann@acme.example"]), HTTP_USER_AGENT="SignerBrowser/2.0")
    assert page.status_code == 200
    assert "Sign the contract" in page.content.decode()
    mail.outbox.clear()
    response = run_on_commit(lambda: _sign(client, links["ann@acme.example"], "Ann Buyer"))
    assert response.status_code == 302
    ann.refresh_from_db()
    bob.refresh_from_db()
    assert ann.status == SignerStatus.SIGNED and ann.ip == "127.0.0.1"
    assert bob.status == SignerStatus.DUE and bob.due_at
    deal.refresh_from_db()
    version.refresh_from_db()
    assert deal.state == DealState.AGREEMENT_SENT and version.is_out
    links = _links_in(mail.outbox)
    assert list(links) == ["bob@acme.example"]
    assert "Ann Buyer already signed it" in mail.outbox[0].body

    # Ann's link now says she signed and who is still to sign; signing again is refused.
    again = client.get(_path(signing_url(version, ann)))
    assert again.status_code == 200
    assert "You signed" in again.content.decode()
    assert "Bob Finance, Mona" in again.content.decode()
    twice = _sign(client, signing_url(version, ann), "Ann Buyer")
    assert twice.status_code == 400
    assert "You already signed this contract" in twice.content.decode()
    # Mona still waits for Bob.
    assert client.get(_path(signing_url(version, mona))).status_code == 403

    mail.outbox.clear()
    run_on_commit(lambda: _sign(client, links["bob@acme.example"], "Bob Finance"))
    deal.refresh_from_db()
    assert deal.state == DealState.AGREEMENT_SENT
    links = _links_in(mail.outbox)
    assert list(links) == [manager.email]
    assert "countersignature" in mail.outbox[0].body

    mail.outbox.clear()
    run_on_commit(lambda: _sign(client, links[manager.email], "Mona"))
    deal.refresh_from_db()
    version.refresh_from_db()
    assert version.status == Status.COMPLETED and version.sealed_at
    assert deal.state == DealState.CLOSED_WON
    assert [s.status for s in _signers(version)] == ["signed"] * 3
    # The sealed copy goes to every signer and the deal's owner, in one message.
    copies = [m for m in mail.outbox if m.subject.startswith("Signed:")]
    assert len(copies) == 1
    assert set(copies[0].to) == {"ann@acme.example", "bob@acme.example", manager.email, rep.email}
    assert copies[0].attachments[0][1] == _read(version.signed_pdf)
    assert "/verify/" in copies[0].body
    assert consistency.close_disagreements() == []


def test_parallel_buyers_are_due_together(three_signers, rep, run_on_commit):
    mail.outbox.clear()
    version = _sent(run_on_commit, three_signers, rep, routing="parallel")
    ann, bob, mona = _signers(version)
    assert [s.status for s in (ann, bob, mona)] == ["due", "due", "pending"]
    assert set(_links_in(mail.outbox)) == {"ann@acme.example", "bob@acme.example"}
    run_on_commit(
        services.contract_sign_builtin,
        version=version,
        signer=bob,
        full_name="Bob Finance",
        consent=True,
        **META,
    )
    mona.refresh_from_db()
    assert mona.status == SignerStatus.PENDING  # Ann has not signed yet
    run_on_commit(
        services.contract_sign_builtin,
        version=version,
        signer=ann,
        full_name="Ann Buyer",
        consent=True,
        **META,
    )
    mona.refresh_from_db()
    assert mona.status == SignerStatus.DUE


def test_a_decline_by_the_second_signer_ends_the_version(three_signers, rep, run_on_commit):
    deal = three_signers
    version = _sent(run_on_commit, deal, rep)
    ann, bob, mona = _signers(version)
    run_on_commit(
        services.contract_sign_builtin,
        version=version,
        signer=ann,
        full_name="Ann Buyer",
        consent=True,
        **META,
    )
    bob.refresh_from_db()
    services.contract_decline_builtin(
        version=version, signer=bob, reason="Payment terms must be 60 days", **META
    )
    version.refresh_from_db()
    deal.refresh_from_db()
    bob.refresh_from_db()
    assert version.status == Status.DECLINED
    assert bob.status == SignerStatus.DECLINED and bob.decline_reason.startswith("Payment")
    assert deal.state == DealState.NEGOTIATING
    assert Objection.objects.filter(deal=deal, detail__contains="60 days").exists()
    assert deal.events.filter(reason__contains="Bob Finance declined version 1").exists()
    # Nobody can sign any more; Mona's link shows the contract is declined.
    with pytest.raises(services.ContractConflict):
        services.contract_sign_builtin(
            version=version, signer=mona, full_name="Mona", consent=True, **META
        )
    assert signing_link_for(version=version, email=mona.email) is None
    assert consistency.close_disagreements() == []


def _complete_three(run_on_commit, deal, rep) -> ContractVersion:
    version = _sent(run_on_commit, deal, rep)
    for person in _signers(version):
        run_on_commit(
            services.contract_sign_builtin,
            version=version,
            signer=person,
            full_name=person.name,
            consent=True,
            **META,
        )
    version.refresh_from_db()
    return version


def test_the_sealed_pdf_validates_and_one_flipped_byte_breaks_it(three_signers, rep, run_on_commit):
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    version = _complete_three(run_on_commit, three_signers, rep)
    sealed = _read(version.signed_pdf)
    assert version.signed_sha256 == documents.sha256_hex(sealed)
    certificate = sealing.seal_certificate()
    assert version.seal_fingerprint == certificate.fingerprint

    from asn1crypto import pem, x509

    _, _, der = pem.unarmor(certificate.pem)
    root = x509.Certificate.load(der)
    embedded = PdfFileReader(io.BytesIO(sealed)).embedded_signatures
    assert len(embedded) == 1 and embedded[0].field_name == sealing.SEAL_FIELD
    status = validate_pdf_signature(embedded[0], ValidationContext(trust_roots=[root]))
    assert status.intact and status.valid and status.trusted
    assert status.coverage.name == "ENTIRE_FILE"
    # No SIGNING_TSA_URL: no timestamp was requested (none is embedded).
    assert status.timestamp_validity is None
    assert sealing.check_pdf(sealed).valid

    # Flip one byte inside the signed content (the first page's content, before the seal).
    flipped = bytearray(sealed)
    flipped[len(sealed) // 4] ^= 0x01
    embedded = PdfFileReader(io.BytesIO(bytes(flipped)), strict=False).embedded_signatures
    status = validate_pdf_signature(embedded[0], ValidationContext(trust_roots=[root]))
    assert not status.intact
    check = sealing.check_pdf(bytes(flipped))
    assert check.ours and not check.valid


def test_the_certificate_of_completion_lists_every_signer(three_signers, rep, run_on_commit):
    version = _complete_three(run_on_commit, three_signers, rep)
    reader = PdfReader(io.BytesIO(_read(version.signed_pdf)))
    original = len(PdfReader(io.BytesIO(_read(version.pdf))).pages)
    certificate = "\n".join(p.extract_text() for p in reader.pages[original:]).replace("\n", " ")
    assert "Certificate of completion" in certificate
    for expected in [
        "Ann Buyer",
        "ann@acme.example",
        "Bob Finance",
        "bob@acme.example",
        "Mona",
        "mona@example.com",
        "Countersigner",
        "203.0.113.7",
        "SignerBrowser/2.0",
        services.CONSENT_TEXT,
        version.sha256,
        version.seal_fingerprint,
    ]:
        assert expected in certificate.replace(" ", "") or expected in certificate, expected
    signed_page = reader.pages[original - 1].extract_text()
    assert signed_page.count("Signed electronically") == 3


def _upload(data: bytes, name="contract.pdf"):
    return SimpleUploadedFile(name, data, content_type="application/pdf")


def test_verify_pages_say_unmodified_modified_or_not_ours(
    three_signers, rep, client, run_on_commit, other_rep
):
    version = _complete_three(run_on_commit, three_signers, rep)
    sealed = _read(version.signed_pdf)

    public = client.post(reverse("verify_public"), {"pdf": _upload(sealed)})
    text = public.content.decode()
    assert public.status_code == 200
    assert 'data-outcome="unmodified"' in text
    assert "Signed by 3 signers on" in text
    assert "Acme" not in text and "ann@acme.example" not in text  # no deal data

    flipped = bytearray(sealed)
    flipped[len(sealed) // 4] ^= 0x01
    changed = client.post(reverse("verify_public"), {"pdf": _upload(bytes(flipped))})
    assert 'data-outcome="modified"' in changed.content.decode()
    assert "Modified" in changed.content.decode()
    appended = client.post(reverse("verify_public"), {"pdf": _upload(sealed + b"\n%%EOF\n")})
    assert 'data-outcome="modified"' in appended.content.decode()
    unsigned = client.post(reverse("verify_public"), {"pdf": _upload(_read(version.pdf))})
    assert 'data-outcome="not_ours"' in unsigned.content.decode()
    not_pdf = client.post(reverse("verify_public"), {"pdf": _upload(b"GIF89a....")})
    assert not_pdf.status_code == 400
    assert "not a PDF" in not_pdf.content.decode()

    client.force_login(rep)
    inside = client.post(reverse("contracts:verify"), {"pdf": _upload(sealed)})
    text = inside.content.decode()
    assert 'data-outcome="unmodified"' in text
    assert "Acme rollout" in text and "Version 1" in text
    assert "ann@acme.example" in text and "bob@acme.example" in text
    # Another team's rep learns it is genuine, not whose deal it is.
    client.force_login(other_rep)
    outside = client.post(reverse("contracts:verify"), {"pdf": _upload(sealed)})
    assert 'data-outcome="unmodified"' in outside.content.decode()
    assert "Acme rollout" not in outside.content.decode()
    client.logout()
    assert client.get(reverse("contracts:verify")).status_code == 302  # login first


def test_verify_uploads_are_size_limited_and_the_public_page_is_throttled(db, client, settings):
    settings.VERIFY_MAX_BYTES = 1024
    big = client.post(reverse("verify_public"), {"pdf": _upload(b"%PDF-1.7\n" + b"0" * 2000)})
    assert big.status_code == 400
    assert "larger than" in big.content.decode()
    settings.VERIFY_THROTTLE = 3  # the upload above counted too
    for _ in range(2):
        assert client.post(reverse("verify_public"), {"pdf": _upload(b"x")}).status_code == 400
    throttled = client.post(reverse("verify_public"), {"pdf": _upload(b"x")})
    assert throttled.status_code == 429
    assert "Too many checks" in throttled.content.decode()


def test_no_timestamp_is_requested_without_a_tsa(settings):
    settings.SIGNING_TSA_URL = ""
    assert sealing._timestamper() is None
    settings.SIGNING_TSA_URL = "http://tsa.invalid/"
    assert sealing._timestamper() is not None


def test_without_a_certificate_the_contract_completes_unsealed_and_says_so(
    termed_deal, rep, run_on_commit, settings, tmp_path
):
    settings.SIGNING_CERT_FILE = str(tmp_path / "missing.pem")
    version = _sent(run_on_commit, termed_deal, rep)
    run_on_commit(
        services.contract_sign_builtin, version=version, full_name="Ann Buyer", consent=True, **META
    )
    version.refresh_from_db()
    termed_deal.refresh_from_db()
    assert version.status == Status.COMPLETED and version.sealed_at is None
    assert termed_deal.state == DealState.CLOSED_WON
    assert termed_deal.events.filter(reason__contains="could not be sealed").exists()


def test_signing_certificate_create_makes_a_usable_pair(tmp_path, settings):
    cert, key = tmp_path / "s" / "c.pem", tmp_path / "s" / "k.pem"
    out = io.StringIO()
    call_command("signing_certificate_create", cert=str(cert), key=str(key), stdout=out)
    assert "SHA-256 fingerprint" in out.getvalue()
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    settings.SIGNING_CERT_FILE, settings.SIGNING_KEY_FILE = str(cert), str(key)
    pdf = documents.html_to_pdf("<p>Hello</p>")
    sealed = sealing.seal_pdf(pdf, certificate=sealing.seal_certificate(), reason="test")
    assert sealing.check_pdf(sealed).valid
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="already exists"):
        call_command("signing_certificate_create", cert=str(cert), key=str(key))
    before = cert.read_bytes()
    call_command("signing_certificate_create", cert=str(cert), key=str(key), if_missing=True)
    assert cert.read_bytes() == before


def test_signing_link_for_answers_only_in_the_persons_turn(three_signers, rep, run_on_commit):
    draft = services.contract_generate(deal=three_signers, by=rep)
    assert signing_link_for(version=draft, email="ann@acme.example") is None
    version = _sent(run_on_commit, three_signers, rep)
    link = signing_link_for(version=version, email="ann@acme.example")
    assert link and "/sign/" in link
    assert signing_link_for(version=version, email="nobody@acme.example") is None
    assert signing_link_for(version=version, email="bob@acme.example") is None
    services.contract_void(version=version, by=rep, reason="Wrong amount")
    version.refresh_from_db()
    assert signing_link_for(version=version, email="ann@acme.example") is None


def test_old_links_without_a_signer_still_open_for_the_first_signer(
    termed_deal, rep, client, run_on_commit
):
    """Links emailed before versions had several signers carry no signer: the first one."""
    from django.core import signing

    from contracts.esign.builtin import SIGNING_SALT

    version = _sent(run_on_commit, termed_deal, rep)
    token = signing.TimestampSigner(salt=SIGNING_SALT).sign_object(
        {"v": version.pk, "e": version.envelope_id}, compress=True
    )
    assert client.get(reverse("contracts_public:sign", args=[token])).status_code == 200
    assert version.signers.get().status == SignerStatus.VIEWED


def test_the_data_migration_gives_old_versions_their_signer(termed_deal, rep, run_on_commit):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("contracts.migrations.0005_contract_signers_from_versions")
    version = _sent(run_on_commit, termed_deal, rep)
    run_on_commit(
        services.contract_sign_builtin, version=version, full_name="Ann Buyer", consent=True, **META
    )
    version.refresh_from_db()
    version.signers.all().delete()
    migration.forwards(apps, None)
    migration.forwards(apps, None)  # idempotent
    person = version.signers.get()
    assert (person.name, person.email, person.status) == ("Ann Buyer", "ann@acme.example", "signed")
    assert person.contact_id is not None and person.ip == META["ip"]
    assert person.signed_at == version.completed_at


def test_the_deal_page_shows_who_signed_and_who_is_due(three_signers, rep, client, run_on_commit):
    version = _sent(run_on_commit, three_signers, rep)
    ann = _signers(version)[0]
    run_on_commit(
        services.contract_sign_builtin,
        version=version,
        signer=ann,
        full_name="Ann Buyer",
        consent=True,
        **META,
    )
    client.force_login(rep)
    page = client.get(three_signers.get_absolute_url()).content.decode()
    panel = page[page.index('id="contracts-panel"') :]
    assert re.search(r"Ann Buyer\s*<span class=\"ct-signer-state ct-signer-signed\">signed", panel)
    assert re.search(
        r"Bob Finance\s*<span class=\"ct-signer-state ct-signer-due\">due since", panel
    )
    assert "waiting for their turn" in panel
    assert "Bob Finance&#x27;s link" in panel or "Bob Finance's link" in panel


def test_consistency_reports_a_completed_version_with_an_unsigned_signer(
    three_signers, rep, run_on_commit
):
    version = _complete_three(run_on_commit, three_signers, rep)
    assert consistency.close_disagreements() == []
    ContractSigner.objects.filter(version=version, role="countersigner").update(
        status=SignerStatus.DUE
    )
    problems = [str(p) for p in consistency.close_disagreements()]
    assert any("is signed but Mona has not signed" in p for p in problems), problems


def test_the_signers_token_names_its_signer(three_signers, rep, run_on_commit):
    version = _sent(run_on_commit, three_signers, rep)
    ann, bob, _ = _signers(version)
    assert signing_token(version, ann) != signing_token(version, bob)
    assert Stakeholder.objects.filter(deal=three_signers, role="signer").count() == 2


def test_docusign_gets_the_signers_as_recipients_in_routing_order(three_signers, rep):
    """The provider interface carries the signers in order; DocuSign maps them to Signer
    recipients (recipient_id, routing_order), the countersigner last."""
    from contracts.esign.docusign import DocuSignProvider

    version = services.contract_generate(deal=three_signers, by=rep)
    recipients = DocuSignProvider().envelope_definition(version).recipients.signers
    assert [(s.name, s.email, s.recipient_id, s.routing_order) for s in recipients] == [
        ("Ann Buyer", "ann@acme.example", "1", "1"),
        ("Bob Finance", "bob@acme.example", "2", "2"),
        ("Mona", "mona@example.com", "3", "3"),
    ]
    parallel = services.contract_generate(deal=three_signers, by=rep, routing="parallel")
    recipients = DocuSignProvider().envelope_definition(parallel).recipients.signers
    assert [s.routing_order for s in recipients] == ["1", "1", "2"]
    # Each signer's tab sits on the shared anchor, one under the other.
    offsets = [s.tabs.sign_here_tabs[0].anchor_y_offset for s in recipients]
    assert len(set(offsets)) == 3
