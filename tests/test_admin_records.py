"""No raw edits in the Django admin: records that have a use case are read-only there, and
what an admin may do to them are actions that call the services (permissions, guards
and the audit log hold; each row's success or refusal is reported)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from contracts import services as contract_services
from contracts.models import ContractVersion, EnvelopeEvent, WebhookDelivery
from deals import services
from deals.models import (
    Account,
    Ask,
    BuyingSignal,
    Concession,
    Contact,
    Deal,
    DealEvent,
    Objection,
    OnboardingStep,
    Stakeholder,
)
from followups.models import Reminder, RepTask, ReviewMeeting
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def signer(deal, rep, contact):
    return services.stakeholder_add(deal=deal, by=rep, contact=contact, role="signer")


@pytest.fixture
def sent_version(deal, rep, signer):
    version = contract_services.contract_generate(deal=deal, by=rep)
    return contract_services.contract_send(version=version, by=rep, notify=False)


@pytest.fixture
def won_deal(deal, manager):
    return services.deal_transition(
        deal=deal, transition="override_won", by=manager, reason="Signed on paper"
    )


def _objection(deal, rep, **_):
    return services.objection_raise(deal=deal, by=rep, category="price", detail="Too much")


def _concession(deal, rep, **_):
    return services.concession_propose(deal=deal, by=rep, give="Monthly billing", get="Case study")


def _ask(deal, rep, **_):
    return services.deal_ask_record(
        deal=deal, by=rep, channel="call", statement="Shall we start?", answer="yes"
    )


def _signal(deal, rep, **_):
    return services.buying_signal_record(
        deal=deal, by=rep, kind="pricing", note="Asked for the price list", channel="call"
    )


def _onboarding_step(request, **_):
    return request.getfixturevalue("won_deal").onboarding_steps.first()


def _version(request, **_):
    return request.getfixturevalue("sent_version")


def _reminder(request, **_):
    return request.getfixturevalue("sent_version").reminders.first()


def _task(deal, rep, **_):
    return RepTask.objects.create(
        owner=rep, deal=deal, kind=RepTask.Kind.CALL, title="Call Ann", due_at=timezone.now()
    )


def _meeting(deal, rep, **_):
    return ReviewMeeting.objects.create(
        deal=deal, organizer=rep, starts_at=timezone.now() + timezone.timedelta(days=3)
    )


#: model → (how to make one, a business field a raw edit would change, the value tried)
RECORDS = {
    Concession: (_concession, "status", Concession.Status.ACCEPTED),
    Ask: (_ask, "answer", "no"),
    Objection: (_objection, "status", Objection.Status.RESOLVED),
    BuyingSignal: (_signal, "note", "Edited afterwards"),
    Stakeholder: (lambda request, **_: request.getfixturevalue("signer"), "role", "champion"),
    OnboardingStep: (_onboarding_step, "due_date", "2030-01-01"),
    ContractVersion: (_version, "status", ContractVersion.Status.COMPLETED),
    Reminder: (_reminder, "due_at", "2030-01-01 10:00:00"),
    RepTask: (_task, "title", "Edited afterwards"),
    ReviewMeeting: (_meeting, "location", "Edited afterwards"),
}


def _make(model, request, deal, rep):
    return RECORDS[model][0](request=request, deal=deal, rep=rep)


def _url(obj, view: str, *args) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", RECORDS, ids=lambda m: m.__name__)
def test_a_record_with_a_use_case_is_read_only_in_the_admin(
    model, request, admin_client, deal, rep
):
    """Its change page shows no editable field and no save button; posting a changed
    field changes nothing; there is no add, no delete and no "delete selected"."""
    obj = _make(model, request, deal, rep)
    field, value = RECORDS[model][1:]
    before = getattr(obj, field)
    page = admin_client.get(_url(obj, "change", obj.pk))
    assert page.status_code == 200
    assert not page.context["adminform"].form.fields
    assert b'name="_save"' not in page.content
    posted = admin_client.post(_url(obj, "change", obj.pk), {field: value})
    assert posted.status_code == 403
    obj.refresh_from_db()
    assert getattr(obj, field) == before
    assert admin_client.get(_url(model, "add")).status_code == 403
    assert admin_client.post(_url(obj, "delete", obj.pk), {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()
    action_form = admin_client.get(_url(model, "changelist")).context["action_form"]
    if action_form is not None:
        assert "delete_selected" not in dict(action_form.fields["action"].choices)


def test_audited_records_cannot_be_deleted_in_the_admin(admin_client, deal, sent_version):
    """Deals, accounts, contacts, the audit log, the webhook inbox and applied envelope
    events have no delete in the admin."""
    delivery = WebhookDelivery.objects.create(provider="docusign", event="x", envelope_id="e")
    applied = EnvelopeEvent.objects.create(
        envelope_id="e", event="envelope-sent", version=sent_version, source="webhook"
    )
    for obj in [
        deal,
        deal.account,
        Contact.objects.first(),
        deal.events.first(),
        delivery,
        applied,
    ]:
        response = admin_client.post(_url(obj, "delete", obj.pk), {"post": "yes"})
        assert response.status_code == 403, obj._meta.model_name
        assert type(obj).objects.filter(pk=obj.pk).exists()


def _act(client, model, action: str, objs, **data):
    response = client.post(
        _url(model, "changelist"),
        {"action": action, "_selected_action": [o.pk for o in objs], **data},
        follow=True,
    )
    assert response.status_code == 200
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_accepting_a_concession_in_the_admin_goes_through_the_service(admin_client, deal, rep):
    """Accept is audited and reported per row; an already decided one is refused."""
    concession = _concession(deal, rep)
    decided = services.concession_propose(deal=deal, by=rep, give="Discount", get="Referral")
    services.concession_decide(concession=decided, by=rep, accepted=False)
    said = _act(admin_client, Concession, "accept_concessions", [concession, decided])
    concession.refresh_from_db()
    decided.refresh_from_db()
    assert (concession.status, decided.status) == ("accepted", "rejected")
    assert any(m.endswith(f"{concession} — accepted.") for m in said)
    assert any(str(decided) in m and "already rejected" in m for m in said)
    accepted = deal.events.filter(
        kind=DealEvent.Kind.CONCESSION, data__concession_id=concession.pk, data__status="accepted"
    )
    assert accepted.count() == 1


def test_rejecting_a_concession_in_the_admin(admin_client, deal, rep):
    concession = _concession(deal, rep)
    said = _act(admin_client, Concession, "reject_concessions", [concession])
    concession.refresh_from_db()
    assert concession.status == Concession.Status.REJECTED
    assert said == [f"{deal} · {concession} — rejected."]


def test_resolving_objections_in_the_admin_asks_how_first(admin_client, deal, rep):
    """The action first asks for the resolution; nothing changes until it is given."""
    objection = _objection(deal, rep)
    first = admin_client.post(
        _url(Objection, "changelist"),
        {"action": "resolve_objections", "_selected_action": [objection.pk]},
    )
    assert first.status_code == 200 and b"How it was resolved" in first.content
    objection.refresh_from_db()
    assert objection.status == Objection.Status.OPEN
    said = _act(
        admin_client,
        Objection,
        "resolve_objections",
        [objection],
        apply="1",
        resolution="Quarterly billing",
    )
    objection.refresh_from_db()
    assert (objection.status, objection.resolution) == ("resolved", "Quarterly billing")
    assert said == [f"{deal} · {objection} — resolved."]
    again = _act(
        admin_client, Objection, "accept_objections_as_loss", [objection], apply="1", resolution="x"
    )
    assert "no longer open" in again[0]
    assert deal.events.filter(kind=DealEvent.Kind.OBJECTION, data__status="resolved").count() == 1


def test_admin_actions_keep_the_services_permissions(client, deal, rep, other_team):
    """A staff user of another team with every admin permission is still refused by the
    service, row by row; nothing changes."""
    outsider = make_user("oscar", other_team, is_staff=True)
    outsider.user_permissions.set(Permission.objects.filter(content_type__app_label="deals"))
    client.force_login(outsider)
    objection = _objection(deal, rep)
    said = _act(
        client, Objection, "resolve_objections", [objection], apply="1", resolution="Mine now"
    )
    assert "Only the deal's owner or the team's manager" in said[0]
    objection.refresh_from_db()
    assert objection.status == Objection.Status.OPEN


def test_admin_actions_need_the_change_permission(client, deal, rep, team):
    """Staff who may only view objections see no actions to run."""
    viewer = make_user("vera", team, is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_objection"))
    client.force_login(viewer)
    objection = _objection(deal, rep)
    page = client.get(_url(Objection, "changelist"))
    assert page.status_code == 200
    assert page.context["action_form"] is None or "resolve_objections" not in dict(
        page.context["action_form"].fields["action"].choices
    )
    client.post(
        _url(Objection, "changelist"),
        {"action": "resolve_objections", "_selected_action": [objection.pk], "apply": "1"},
    )
    objection.refresh_from_db()
    assert objection.status == Objection.Status.OPEN


def test_completing_an_onboarding_step_in_the_admin(admin_client, won_deal, admin_user):
    step = won_deal.onboarding_steps.first()
    said = _act(admin_client, OnboardingStep, "complete_onboarding_steps", [step])
    step.refresh_from_db()
    assert step.done_by == admin_user and said == [f"{won_deal} · {step} — done."]
    again = _act(admin_client, OnboardingStep, "complete_onboarding_steps", [step])
    assert "already done" in again[0]
    done = won_deal.events.filter(kind=DealEvent.Kind.HANDOFF, reason__startswith="Onboarding:")
    assert done.count() == 1


def test_removing_a_stakeholder_in_the_admin(admin_client, deal, signer):
    said = _act(admin_client, Stakeholder, "remove_stakeholders", [signer])
    assert not Stakeholder.objects.filter(pk=signer.pk).exists()
    assert said == [f"{deal} · {signer} — removed from the buying group."]
    assert deal.events.filter(kind=DealEvent.Kind.STAKEHOLDER, data__removed=True).count() == 1


def test_voiding_a_contract_in_the_admin_needs_a_reason(admin_client, deal, sent_version):
    """The void asks why (the signer sees it), then withdraws the version through the
    service, with its timeline event; a second void is refused."""
    first = admin_client.post(
        _url(ContractVersion, "changelist"),
        {"action": "void_versions", "_selected_action": [sent_version.pk], "apply": "1"},
    )
    assert first.status_code == 200 and b"This field is required" in first.content
    said = _act(
        admin_client,
        ContractVersion,
        "void_versions",
        [sent_version],
        apply="1",
        reason="Wrong price",
    )
    sent_version.refresh_from_db()
    assert (sent_version.status, sent_version.status_reason) == ("voided", "Wrong price")
    assert said == [f"{sent_version} — voided."]
    again = _act(
        admin_client, ContractVersion, "void_versions", [sent_version], apply="1", reason="x"
    )
    assert "only a contract out for signature can be voided" in again[0]
    assert deal.events.filter(kind=DealEvent.Kind.CONTRACT, data__action="voided").count() == 1


def test_follow_up_actions_in_the_admin(admin_client, deal, sent_version):
    """Pause and skip go through the services with a timeline line each; retrying a
    follow-up that did not fail is refused for that row."""
    first, second = sent_version.reminders.order_by("sequence")[:2]
    said = _act(admin_client, Reminder, "pause_reminders", [first])
    assert said == [f"{first} — paused."]
    _act(admin_client, Reminder, "skip_reminders", [second])
    refused = _act(admin_client, Reminder, "retry_failed", [second])
    assert "Only a failed follow-up can be retried" in refused[0]
    statuses = dict(
        Reminder.objects.filter(pk__in=[first.pk, second.pk]).values_list("pk", "status")
    )
    assert statuses == {first.pk: "paused", second.pk: "skipped"}
    lines = deal.events.filter(
        kind=DealEvent.Kind.REMINDER, data__reminder_id__in=[first.pk, second.pk]
    )
    assert lines.count() == 2


def test_completing_a_task_in_the_admin(admin_client, deal, rep, admin_user):
    task = _task(deal, rep)
    said = _act(admin_client, RepTask, "complete_tasks", [task])
    task.refresh_from_db()
    assert task.completed_by == admin_user and said == [f"{deal} · {task} — done."]
    assert deal.events.filter(kind=DealEvent.Kind.TASK, data__task_id=task.pk).count() == 1


def test_account_edits_in_the_admin_go_through_the_service(admin_client, account):
    """Name and website are edited; customer status, team and owner cannot be."""
    url = _url(account, "change", account.pk)
    form = admin_client.get(url).context["adminform"].form
    assert set(form.fields) == {"name", "website", "industry", "account_manager"}
    response = admin_client.post(
        url, {"name": "Acme AG", "website": "acme.example", "industry": "", "status": "customer"}
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.name, account.website, account.status) == (
        "Acme AG",
        "acme.example",
        "prospect",
    )


def test_contact_edits_in_the_admin_go_through_the_service(admin_client, contact, other_team):
    """A contact cannot be moved to another account in the admin; its name is checked."""
    url = _url(contact, "change", contact.pk)
    form = admin_client.get(url).context["adminform"].form
    assert "account" not in form.fields
    data = {"first_name": "", "last_name": "", "email": "", "phone": "", "job_title": ""}
    response = admin_client.post(url, data)
    assert response.status_code == 200  # the form's required names refuse it
    contact.refresh_from_db()
    assert contact.full_name == "Ann Buyer"
    assert Account.objects.count() == 1 and Deal.objects.count() == 0
