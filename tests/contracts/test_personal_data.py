"""GDPR access and erasure for one contact: the export holds everything the product keeps
about them, the erasure anonymises them and keeps the deal history consistent, and both
are recorded with who did it, from the admin, the command line and the services alike.

Here among the contract tests for their fixtures: the contact is a contract signer."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from contracts import services as contract_services
from contracts.models import ContractVersion
from deals import services
from deals.models import BuyingSignal, Channel, Contact, DealEvent, PrivacyEvent, Stakeholder
from followups.models import Reminder

EMAIL = "ann@acme.example"
NAME = "Ann Buyer"


@pytest.fixture
def sent(termed_deal, rep, run_on_commit):
    """Ann signs for the deal: a version went out to her, a follow-up was emailed to her."""
    version = contract_services.contract_generate(deal=termed_deal, by=rep)
    run_on_commit(contract_services.contract_send, version=version, by=rep)
    version.refresh_from_db()
    assert version.signer_email == EMAIL and version.is_out
    # What the dispatcher leaves behind once a follow-up went out (followups tests cover it).
    reminder = Reminder.objects.filter(contract_version=version).order_by("sequence").first()
    Reminder.objects.filter(pk=reminder.pk).update(recipient=EMAIL)
    services.deal_activity_record(
        deal=termed_deal, by=None, kind="reminder", reason=f"Follow-up #1 emailed to {EMAIL}."
    )
    return version


def _everything_about_ann(contact: Contact) -> str:
    """Every timeline event of the account's deals, as one text."""
    events = DealEvent.objects.filter(deal__account_id=contact.account_id)
    return json.dumps([[e.reason, e.data] for e in events])


def test_the_export_holds_everything_about_the_contact_and_is_audited(sent, admin_user, signer):
    """Contact, account, buying-group roles, timeline events about them, contract signatures
    and follow-up emails, in one JSON document; a PrivacyEvent records who exported it."""
    data = services.contact_personal_data_export(
        contact=signer, by=admin_user, reason="Email from Ann, 30 Nov"
    )
    json.dumps(data)  # plain JSON all the way down
    assert data["contact"]["email"] == EMAIL and data["contact"]["first_name"] == "Ann"
    assert data["account"]["name"] == "Acme GmbH"
    assert [r["role"] for r in data["buying_group_roles"]] == [Stakeholder.Role.SIGNER]
    reasons = [e["reason"] for e in data["timeline_events"]]
    assert f"{NAME} added as Signer" in reasons
    assert f"Follow-up #1 emailed to {EMAIL}." in reasons
    assert [(c["version"], c["status"]) for c in data["contract_signatures"]] == [(1, "sent")]
    assert [f["recipient"] for f in data["follow_up_emails"] if f["recipient"]] == [EMAIL]
    assert data["exported_by"] == "root"
    event = PrivacyEvent.objects.get()
    assert (event.kind, event.actor, event.reason) == (
        "exported",
        admin_user,
        "Email from Ann, 30 Nov",
    )
    assert event.data["sections"]["contract_signatures"] == 1


def test_only_admins_answer_personal_data_requests(manager, rep, signer):
    """The team's manager or the owner cannot export or erase a contact."""
    for user in (manager, rep):
        with pytest.raises(services.NotPermitted):
            services.contact_personal_data_export(contact=signer, by=user)
        with pytest.raises(services.NotPermitted):
            services.contact_erase(contact=signer, by=user, reason="Asked")
    assert not PrivacyEvent.objects.exists()


def test_a_contract_out_for_signature_refuses_the_erasure(sent, admin_user, signer):
    """Erasing the signer of a contract that is out would break the signature: refused,
    naming what to do, and nothing changes."""
    before = _everything_about_ann(signer)
    with pytest.raises(services.DealError) as refused:
        services.contact_erase(contact=signer, by=admin_user, reason="Email from Ann")
    assert "out for signature: void it first" in refused.value.message
    signer.refresh_from_db()
    assert (signer.full_name, signer.email, signer.erased_at) == (NAME, EMAIL, None)
    assert _everything_about_ann(signer) == before
    assert not PrivacyEvent.objects.exists()


def test_erasure_anonymises_the_contact_and_keeps_the_history_consistent(
    sent, admin_user, signer, rep, termed_deal
):
    """After the contract is voided: the contact becomes “Erased contact #id”, their name
    and email leave the timeline, notes and follow-ups; every event keeps its kind, states,
    actor and time; the buying group still counts them; the sent contract is kept as the
    legal record; the deal's timeline and a PrivacyEvent say who erased them and why."""
    contract_services.contract_void(version=sent, by=rep, reason="Buyer changed")
    Stakeholder.objects.filter(contact=signer).update(note=f"{NAME} prefers calls")
    signal = services.buying_signal_record(
        deal=termed_deal,
        by=rep,
        kind=BuyingSignal.Kind.TIMELINE,
        note=f"{NAME} ({EMAIL}) asked how fast we can start",
        channel=Channel.EMAIL,
    )
    shape = list(
        DealEvent.objects.order_by("pk").values_list(
            "pk", "kind", "from_state", "to_state", "actor"
        )
    )

    summary = services.contact_erase(contact=signer, by=admin_user, reason="Ticket 4711")

    signer.refresh_from_db()
    assert signer.full_name == f"Erased contact #{signer.pk}"
    assert (signer.email, signer.phone, signer.job_title) == ("", "", "")
    assert signer.erased_at and signer.archived_at
    text = _everything_about_ann(signer)
    assert NAME not in text and EMAIL not in text
    assert f"Erased contact #{signer.pk} added as Signer" in text
    assert (
        list(
            DealEvent.objects.filter(pk__lte=shape[-1][0])
            .order_by("pk")
            .values_list("pk", "kind", "from_state", "to_state", "actor")
        )
        == shape
    )
    signal.refresh_from_db()
    erased_email = f"erased-contact-{signer.pk}@invalid"
    assert (
        signal.note == f"Erased contact #{signer.pk} ({erased_email}) asked how fast we can start"
    )
    assert summary["deal_notes_redacted"] == 2  # the note, once for the name, once for the email
    stakeholder = Stakeholder.objects.get(contact=signer)
    assert stakeholder.deal == termed_deal and stakeholder.note == ""
    assert not Reminder.objects.filter(recipient=EMAIL).exists()
    sent.refresh_from_db()
    assert sent.signer_email == EMAIL  # the legal record of what was sent, unchanged
    assert summary["contract_versions_kept_as_legal_record"] == 1
    assert summary["follow_up_recipients_erased"] == 1
    note = DealEvent.objects.filter(deal=termed_deal).order_by("-pk").first()
    assert note.actor == admin_user and note.data["erased"] is True
    event = PrivacyEvent.objects.get()
    assert (event.kind, event.actor, event.reason) == ("erased", admin_user, "Ticket 4711")
    with pytest.raises(services.DealError, match="already erased"):
        services.contact_erase(contact=signer, by=admin_user, reason="Again")


def test_an_unsent_draft_naming_the_signer_is_voided_and_emptied(
    termed_deal, rep, admin_user, signer
):
    """A draft never left the company: erasure voids it and removes its document."""
    draft = contract_services.contract_generate(deal=termed_deal, by=rep)
    assert NAME in draft.html
    summary = services.contact_erase(contact=signer, by=admin_user, reason="Ticket 12")
    draft.refresh_from_db()
    assert draft.status == ContractVersion.Status.VOIDED
    assert (draft.html, draft.signer_name, draft.signer_email, draft.pdf.name) == ("", "", "", "")
    assert summary["contract_drafts_voided"] == 1


def test_the_command_exports_and_erases_naming_who_ran_it(
    termed_deal, admin_user, signer, tmp_path, capsys
):
    """`manage.py contact_personal_data export|erase ID --by USER`: JSON to a file, an erasure
    that needs --yes, each recorded with the named admin; bad input is a plain message."""
    out = tmp_path / "ann.json"
    call_command(
        "contact_personal_data", "export", str(signer.pk), "--by", "root", "--output", str(out)
    )
    assert json.loads(out.read_text())["contact"]["email"] == EMAIL
    with pytest.raises(CommandError, match="cannot be undone: add --yes"):
        call_command("contact_personal_data", "erase", str(signer.pk), "--by", "root")
    with pytest.raises(CommandError, match="Say whose request this is"):
        call_command("contact_personal_data", "erase", str(signer.pk), "--by", "root", "--yes")
    with pytest.raises(CommandError, match="No active user “nobody”"):
        call_command("contact_personal_data", "export", str(signer.pk), "--by", "nobody")
    with pytest.raises(CommandError, match="Only admins"):
        call_command("contact_personal_data", "export", str(signer.pk), "--by", "rita")
    call_command(
        "contact_personal_data",
        "erase",
        str(signer.pk),
        "--by",
        "root",
        "--yes",
        "--reason",
        "Call",
    )
    assert f"Erased the personal data of contact #{signer.pk}." in capsys.readouterr().out
    assert list(PrivacyEvent.objects.order_by("pk").values_list("kind", "actor__username")) == [
        ("exported", "root"),
        ("erased", "root"),
    ]


def test_admin_actions_export_json_and_erase_after_confirmation(client, admin_user, signer):
    """In the admin: the export action downloads the JSON; the erase action asks for the
    request and a confirmation first, then erases."""
    client.force_login(admin_user)
    url = "/admin/deals/contact/"
    response = client.post(url, {"action": "export_personal_data", "_selected_action": [signer.pk]})
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    assert response.json()["contact"]["email"] == EMAIL
    form = {"action": "erase_personal_data", "_selected_action": [signer.pk]}
    response = client.post(url, form)
    assert response.status_code == 200
    assert "cannot be restored" in response.content.decode()
    signer.refresh_from_db()
    assert signer.erased_at is None
    response = client.post(url, {**form, "apply": "1", "reason": "Ticket 9", "confirm": "on"})
    assert response.status_code == 302
    signer.refresh_from_db()
    assert signer.erased_at is not None and signer.email == ""
    assert PrivacyEvent.objects.filter(kind="erased", actor=admin_user, reason="Ticket 9").exists()
    assert client.get("/admin/deals/privacyevent/").status_code == 200


def test_privacy_events_are_append_only(admin_user, signer):
    """The record of who exported or erased cannot be changed or deleted."""
    from deals.models import AppendOnlyError

    services.contact_personal_data_export(contact=signer, by=admin_user)
    event = PrivacyEvent.objects.get()
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        PrivacyEvent.objects.all().delete()
