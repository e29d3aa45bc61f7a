"""Rep pages for contracts: the deal panel, preview, actions, permissions, and the admin."""

from __future__ import annotations

import pytest
from django.urls import reverse

from contracts import services
from contracts.models import ContractTemplate, ContractVersion
from deals.models import DealState

Status = ContractVersion.Status


@pytest.fixture
def draft(termed_deal, rep) -> ContractVersion:
    return services.contract_generate(deal=termed_deal, by=rep)


def test_rep_generates_previews_and_sends_from_the_deal_page(
    client, rep, termed_deal, django_capture_on_commit_callbacks
):
    """The whole rep flow through the pages: generate, preview, send; the panel shows it."""
    client.force_login(rep)
    page = client.get(termed_deal.get_absolute_url()).content.decode()
    assert "Generate contract" in page
    response = client.post(reverse("contracts:generate", args=[termed_deal.pk]), follow=True)
    assert "Contract version 1 generated" in response.content.decode()
    version = termed_deal.contract_versions.get()
    preview = client.get(reverse("contracts:preview", args=[version.pk]))
    assert preview.status_code == 200
    assert "Send to Ann Buyer" in preview.content.decode()
    document = client.get(reverse("contracts:document_html", args=[version.pk]))
    assert document["X-Frame-Options"] == "SAMEORIGIN"
    assert "Platform licence" in document.content.decode()
    pdf = client.get(reverse("contracts:pdf", args=[version.pk]))
    assert pdf["Content-Type"] == "application/pdf"
    assert b"".join(pdf.streaming_content).startswith(b"%PDF")
    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(
            reverse("contracts:send", args=[version.pk]),
            {"expected_state": termed_deal.state},
            follow=True,
        )
    body = sent.content.decode()
    assert "on its way to Ann Buyer" in body
    assert 'data-testid="signing-link"' in body
    termed_deal.refresh_from_db()
    assert termed_deal.state == DealState.AGREEMENT_SENT


def test_errors_come_back_as_messages_not_500(client, rep, deal, contact):
    """Generating without a signer asks who signs, in the contract panel; choosing one
    generates the contract addressed to them."""
    client.force_login(rep)
    url = reverse("contracts:generate", args=[deal.pk])
    response = client.post(url, follow=True)
    body = response.content.decode()
    assert response.status_code == 200
    assert "Choose who signs the contract" in body and "Who signs the contract?" in body
    response = client.post(url, {"signer": contact.pk}, follow=True)
    assert "generated for " + contact.full_name in response.content.decode()


def test_stale_state_is_a_conflict_message(client, rep, draft, termed_deal):
    """A send from a page showing an old state is refused with the conflict explanation."""
    client.force_login(rep)
    response = client.post(
        reverse("contracts:send", args=[draft.pk]), {"expected_state": "negotiating"}, follow=True
    )
    assert "changed since you opened this page" in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == Status.DRAFT


def test_readers_see_the_panel_read_only_and_cannot_act(client, teammate, draft, termed_deal):
    """A teammate who may read the deal sees versions but no actions; POSTs are 403."""
    client.force_login(teammate)
    page = client.get(termed_deal.get_absolute_url()).content.decode()
    assert "v1" in page and "Preview" in page
    assert "Send for signature" not in page and "Generate new version" not in page
    for name, args in [
        ("contracts:generate", [termed_deal.pk]),
        ("contracts:send", [draft.pk]),
        ("contracts:void", [draft.pk]),
        ("contracts:resend", [draft.pk]),
    ]:
        response = client.post(reverse(name, args=args), {"reason": "x"})
        assert response.status_code == 403, name
        assert "Only the deal&#x27;s owner" in response.content.decode()
    assert termed_deal.contract_versions.count() == 1
    assert client.get(reverse("contracts:preview", args=[draft.pk])).status_code == 200


def test_other_teams_cannot_see_contracts(client, other_rep, draft):
    client.force_login(other_rep)
    for name in ["contracts:preview", "contracts:pdf", "contracts:document_html"]:
        assert client.get(reverse(name, args=[draft.pk])).status_code == 404
    assert client.post(reverse("contracts:send", args=[draft.pk])).status_code == 404


def test_anonymous_users_are_sent_to_login(client, draft):
    response = client.get(reverse("contracts:preview", args=[draft.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_admin_edit_saves_a_new_template_version(client, admin_user, default_template):
    """Editing a template's text keeps the old version and makes a new active default."""
    client.force_login(admin_user)
    url = reverse("admin:contracts_contracttemplate_change", args=[default_template.pk])
    body = default_template.body.replace("General terms", "General terms and conditions")
    response = client.post(
        url,
        {"name": default_template.name, "body": body, "is_default": "on", "is_active": "on"},
    )
    assert response.status_code == 302
    versions = list(ContractTemplate.objects.filter(name=default_template.name))
    assert [t.version for t in versions] == [2, 1]
    assert versions[0].is_default and versions[0].is_active
    assert not versions[1].is_default and not versions[1].is_active
    assert versions[1].body == default_template.body


def test_admin_refuses_a_broken_template(client, admin_user, default_template):
    client.force_login(admin_user)
    url = reverse("admin:contracts_contracttemplate_change", args=[default_template.pk])
    response = client.post(
        url, {"name": default_template.name, "body": "{% load static %}", "is_default": "on"}
    )
    assert response.status_code == 200
    assert "The tag “load” is not allowed: it loads tag libraries" in response.content.decode()
    assert ContractTemplate.objects.filter(name=default_template.name).count() == 1
