"""The Django admin: transitions as actions through the services; the audit log is read-only."""

import pytest
from django.urls import reverse

from deals.models import DealEvent, DealState


@pytest.fixture
def admin_client_logged(client, admin_user):
    client.force_login(admin_user)
    return client


def test_every_model_has_an_admin_page(admin_client_logged):
    """Every model is in the admin: its own page, or inline on its parent's page."""
    from django.apps import apps
    from django.contrib import admin

    inlined = {
        inline.model
        for model_admin in admin.site._registry.values()
        for inline in model_admin.inlines
    }
    for app in ("deals", "contracts", "followups"):
        for model in apps.get_app_config(app).get_models():
            if not admin.site.is_registered(model):
                assert model in inlined, f"{model.__name__} is not in the admin"
                continue
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
            assert admin_client_logged.get(url).status_code == 200, url


def test_transition_action_goes_through_the_service(admin_client_logged, deal, rep):
    """An admin action fires the transition through the service, with its audit event."""
    from tests.conftest import record_ask

    record_ask(deal, rep)
    url = reverse("admin:deals_deal_changelist")
    response = admin_client_logged.post(
        url, {"action": "transition_negotiate", "_selected_action": [deal.pk]}, follow=True
    )
    assert response.status_code == 200
    deal.refresh_from_db()
    assert deal.state == DealState.NEGOTIATING
    assert deal.events.filter(kind=DealEvent.Kind.TRANSITION, transition="negotiate").count() == 1


def test_forbidden_transition_action_reports_the_reason(admin_client_logged, deal):
    url = reverse("admin:deals_deal_changelist")
    response = admin_client_logged.post(
        url, {"action": "transition_follow_up", "_selected_action": [deal.pk]}, follow=True
    )
    assert "cannot do" in response.content.decode()
    deal.refresh_from_db()
    assert deal.state == DealState.INTENT_SPOTTED


def test_lost_action_asks_for_a_reason_first(admin_client_logged, deal):
    url = reverse("admin:deals_deal_changelist")
    first = admin_client_logged.post(
        url, {"action": "transition_mark_lost", "_selected_action": [deal.pk]}
    )
    assert first.status_code == 200 and b"Loss reason" in first.content
    deal.refresh_from_db()
    assert deal.state == DealState.INTENT_SPOTTED
    admin_client_logged.post(
        url,
        {
            "action": "transition_mark_lost",
            "_selected_action": [deal.pk],
            "apply": "1",
            "reason": "Chose a competitor",
            "loss_reason": "competitor",
        },
    )
    deal.refresh_from_db()
    assert (deal.state, deal.loss_reason) == (DealState.CLOSED_LOST, "competitor")


def test_edits_in_admin_are_logged(admin_client_logged, deal):
    url = reverse("admin:deals_deal_change", args=[deal.pk])
    page = admin_client_logged.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    data.update(
        {
            "title": "Renamed",
            "amount": "9000",
            "currency": "EUR",
            "term_months": 12,
            "billing": "annually",
            "line_items-TOTAL_FORMS": 0,
            "line_items-INITIAL_FORMS": 0,
            "stakeholders-TOTAL_FORMS": 0,
            "stakeholders-INITIAL_FORMS": 0,
            "events-TOTAL_FORMS": 0,
            "events-INITIAL_FORMS": 0,
        }
    )
    for key in ("expected_close_date", "next_step_due", "start_date", "review_meeting_at"):
        data.pop(key, None)
    response = admin_client_logged.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    deal.refresh_from_db()
    assert deal.title == "Renamed"
    assert deal.events.filter(kind=DealEvent.Kind.EDITED).exists()


def test_audit_log_is_read_only_in_admin(admin_client_logged, deal):
    event = deal.events.first()
    change = admin_client_logged.get(reverse("admin:deals_dealevent_change", args=[event.pk]))
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    assert admin_client_logged.get(reverse("admin:deals_dealevent_add")).status_code == 403
    delete = admin_client_logged.get(reverse("admin:deals_dealevent_delete", args=[event.pk]))
    assert delete.status_code == 403
