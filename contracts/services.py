"""Every write about contracts: generate, send, resend, void, view, sign, decline, webhooks.

Each function is atomic and puts a "contract" event on the deal's timeline through
`deals.services.deal_activity_record`. Deal state changes go through
`deals.services.deal_transition`. Talking to the e-signature provider happens in Celery
tasks started with `transaction.on_commit`, never inside a transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext

from deals import services as deal_services
from deals.models import (
    OPEN_STATES,
    Concession,
    Deal,
    DealEvent,
    DealState,
    can_work_deal,
    in_sentence,
)
from deals.services import DealConflict, DealError, NotPermitted
from deals.templatetags.crm_format import money_text

from . import documents
from .models import (
    FINAL_STATUSES,
    OUT_STATUSES,
    OUTSTANDING_STATUSES,
    PROVIDER_LABELS,
    SIGNER_WAITING,
    ContractSigner,
    ContractTemplate,
    ContractVersion,
    EnvelopeEvent,
    WebhookDelivery,
)
from .selectors import default_template, version_by_envelope
from .signals import (
    contract_revision_ready,
    contract_sent,
    contract_signed,
    contract_signed_late,
    contract_viewed,
    contract_withdrawn,
)

log = logging.getLogger(__name__)
Status = ContractVersion.Status
SignerStatus = ContractSigner.Status
Withdrawal = ContractVersion.Withdrawal


def provider_name(provider: str) -> str:
    """How a provider is named in timeline text (the brand is "DocuSign")."""
    return PROVIDER_LABELS.get(provider, provider)


#: States in which a completed signature wins the deal (mark_won's sources).
_WINNABLE = [DealState.AGREEMENT_SENT, DealState.FOLLOW_UP, DealState.NEGOTIATING]


class ContractError(DealError):
    """A contract action was refused; the message is for the rep or the buyer."""


class ContractConflict(ContractError, DealConflict):
    """The version's status changed meanwhile (someone else acted first): a 409."""


# --- helpers -------------------------------------------------------------------


def _require_workable(deal: Deal, by) -> None:
    if not can_work_deal(deal, by):
        raise NotPermitted(can_work_deal.denied_message)


def _timeline(version: ContractVersion, by, reason: str, **data: Any) -> DealEvent:
    return deal_services.deal_activity_record(
        deal=version.deal,
        by=by,
        kind=DealEvent.Kind.CONTRACT,
        reason=reason,
        version=version.number,
        version_id=version.pk,
        **data,
    )


def _locked(version: ContractVersion) -> ContractVersion:
    """Lock the deal's row, then the version's, and reload both in place (the caller runs
    in a transaction). Deal first, as transitions lock it, so two writers never deadlock."""
    deal = deal_services.row_lock(version.deal)
    deal_services.row_lock(version)
    version.deal = deal
    return version


def _locked_by_id(version_id: int) -> ContractVersion:
    """`_locked` for a task that only has the version's id (deal row first, then the version)."""
    deal_id = ContractVersion.objects.filter(pk=version_id).values_list("deal_id", flat=True).get()
    Deal.objects.select_for_update().filter(pk=deal_id).values_list("pk").first()
    return ContractVersion.objects.select_for_update().select_related("deal").get(pk=version_id)


def _withdraw(
    version: ContractVersion,
    *,
    status: str,
    reason: str,
    withdrawal: str = "",
    followup_reason: str = "",
) -> None:
    """The version stops being signable; listeners (reminders) learn it in this transaction.

    `withdrawal` says why, for the buyer's page (replaced, revised, deal closed, by the rep).
    """
    was_out = version.status in OUT_STATUSES
    now = timezone.now()
    version.status = status
    version.status_reason = reason
    fields = ["status", "status_reason"]
    if status == Status.VOIDED:
        version.withdrawal = withdrawal or Withdrawal.BY_REP
        fields.append("withdrawal")
    if status == Status.VOIDED:
        version.voided_at = now
        fields.append("voided_at")
    elif status == Status.DECLINED:
        version.declined_at = now
        fields.append("declined_at")
    version.save(update_fields=fields)
    if was_out:
        contract_withdrawn.send(sender=ContractVersion, version=version, reason=followup_reason)


def _back_to_negotiating(deal_id: int, *, by, why: str) -> None:
    """Nothing is out for signature any more: a deal waiting for a signature goes back to
    negotiating (the rep sends a new version from there), so the two never disagree."""
    deal = Deal.objects.get(pk=deal_id)
    if deal.state not in (DealState.AGREEMENT_SENT, DealState.FOLLOW_UP):
        return
    if ContractVersion.objects.filter(deal=deal, status__in=OUTSTANDING_STATUSES).exists():
        return
    deal_services.deal_transition(
        deal=deal, transition="negotiate", by=by, as_system=by is None, reason=why
    )


def _enqueue(task_name: str, *args: Any) -> None:
    from . import tasks

    task = getattr(tasks, task_name)

    def enqueue() -> None:
        try:
            task.delay(*args)
        except Exception:  # broker down: the work is recorded; reconcile picks it up
            log.exception("Could not enqueue %s%r", task_name, args)

    transaction.on_commit(enqueue)


# --- signers ---------------------------------------------------------------------

#: How buyer signers are routed: one after another, or all at the same time.
ROUTINGS = ("sequence", "parallel")


def team_countersigner(team):
    """Who countersigns the team's contracts: its chosen countersigner, else its manager
    (the first active one); None when the team does not countersign or has no one."""
    from deals.models import User

    if team is None or not team.countersign_contracts:
        return None
    chosen = team.countersigner
    if chosen is not None and chosen.is_active and chosen.email:
        return chosen
    return (
        User.objects.filter(team=team, role=User.Role.MANAGER, is_active=True)
        .exclude(email="")
        .order_by("pk")
        .first()
    )


def signing_plan(
    deal: Deal, *, routing: str = "sequence", countersigner: bool = True
) -> list[dict[str, Any]]:
    """The signers a new version of `deal` gets, in routing order (ContractSigner fields);
    `countersigner=False`: the buyer's signers only."""
    from deals.models import Stakeholder

    holders = (
        deal.stakeholders.filter(role=Stakeholder.Role.SIGNER, contact__archived_at__isnull=True)
        .exclude(contact__email="")
        .select_related("contact")
        .order_by("pk")
    )
    plan: list[dict[str, Any]] = []
    seen: set[str] = set()
    for holder in holders:
        contact = holder.contact
        if contact.email.lower() in seen:
            continue
        seen.add(contact.email.lower())
        plan.append(
            {
                "routing_order": len(plan) + 1 if routing == "sequence" else 1,
                "role": ContractSigner.Role.BUYER,
                "contact": contact,
                "name": contact.full_name,
                "email": contact.email,
            }
        )
    counter = team_countersigner(deal.team) if countersigner else None
    if plan and counter is not None and counter.email.lower() not in seen:
        plan.append(
            {
                "routing_order": max(p["routing_order"] for p in plan) + 1,
                "role": ContractSigner.Role.COUNTERSIGNER,
                "user": counter,
                "name": counter.get_full_name() or counter.username,
                "email": counter.email,
            }
        )
    return plan


def _locked_signers(version: ContractVersion) -> list[ContractSigner]:
    """The version's signers, locked (the caller holds the deal's and the version's locks
    first: deal, version, signers, the order every contract action takes)."""
    return list(
        ContractSigner.objects.select_for_update()
        .filter(version=version)
        .order_by("routing_order", "pk")
    )


def _make_due(signers: list[ContractSigner], *, now=None) -> list[ContractSigner]:
    """The next routing group whose turn it is becomes due (when nobody is due or waiting
    in an earlier group); returns the signers who just became due."""
    now = now or timezone.now()
    waiting = [s for s in signers if s.status in SIGNER_WAITING]
    if not waiting or any(s.is_due for s in waiting):
        return []
    order = min(s.routing_order for s in waiting)
    made = [s for s in waiting if s.routing_order == order]
    for person in made:
        person.status = SignerStatus.DUE
        person.due_at = now
        person.save(update_fields=["status", "due_at"])
    return made


def _signer_words(signers) -> str:
    return ", ".join(s.name for s in signers)


# --- templates ------------------------------------------------------------------


def template_check(body: str) -> None:
    """Compile and render with sample terms; TemplateProblem explains what is wrong."""
    documents.render_template(body, documents.SAMPLE_TERMS)


@transaction.atomic
def template_save_new_version(*, template: ContractTemplate, body: str) -> ContractTemplate:
    """Admins edit a template by saving a new version; the old one stays for its contracts."""
    template_check(body)
    latest = (
        ContractTemplate.objects.filter(name=template.name).aggregate(n=Max("version"))["n"] or 0
    )
    new = ContractTemplate.objects.create(
        name=template.name,
        body=body,
        version=latest + 1,
        is_default=template.is_default,
        is_active=True,
    )
    ContractTemplate.objects.filter(name=template.name).exclude(pk=new.pk).update(
        is_active=False, is_default=False
    )
    return new


def _shipped_default() -> ContractTemplate | None:
    """With no template at all (e.g. a flushed database), put the shipped default back."""
    if ContractTemplate.objects.exists():
        return None
    import importlib

    shipped = importlib.import_module("contracts.migrations.0002_initial")
    return ContractTemplate.objects.create(
        name=shipped.DEFAULT_NAME, body=shipped.DEFAULT_BODY, is_default=True
    )


# --- generating ---------------------------------------------------------------


@transaction.atomic
def contract_generate(
    *,
    deal: Deal,
    by,
    template: ContractTemplate | None = None,
    reason: str = "",
    signer=None,
    routing: str = "sequence",
) -> ContractVersion:
    """Render the deal's terms into a new draft version (HTML, PDF, SHA-256).

    The contract is addressed to the buying group's signers. `signer` (a contact of the
    account, chosen by the rep) is added to the buying group as the signer first; with no
    signer in the group and none given, the rep is asked to choose. With several buyer
    signers, `routing` says whether they sign one after another ("sequence", in the order
    they joined the buying group) or at the same time ("parallel"); the team's
    countersigner (when the team countersigns) signs last.
    """
    if routing not in ROUTINGS:
        raise ContractError("Choose whether the signers sign one after another or together.")
    _require_workable(deal, by)
    deal_services.row_lock(deal)  # the stored state checked below, and the numbering
    if not deal.is_live:
        raise ContractError(
            gettext("This deal is closed or archived: no new contract can be generated.")
        )
    if signer is not None:
        _signer_choose(deal=deal, by=by, contact=signer)
    elif documents.deal_signer(deal) is None:
        raise ContractError(
            gettext(
                "Choose who signs the contract: the signer is not always the decision maker "
                "(often procurement, legal or finance signs), so it is never guessed."
            )
        )
    template = template or default_template() or _shipped_default()
    if template is None:
        raise ContractError(gettext("There is no contract template yet. An admin can add one."))
    number = (ContractVersion.objects.filter(deal=deal).aggregate(n=Max("number"))["n"] or 0) + 1
    terms = documents.deal_terms(deal, number=number)
    try:
        html = documents.render_template(template.body, terms)
        pdf = documents.html_to_pdf(html)
    except documents.TemplateProblem as exc:
        raise ContractError(
            gettext("%(exc)s An admin needs to fix template “%(template)s”.")
            % {"exc": exc, "template": template}
        ) from None
    for draft in ContractVersion.objects.select_for_update().filter(deal=deal, status=Status.DRAFT):
        _withdraw(
            draft,
            status=Status.VOIDED,
            reason=f"Replaced by version {number}.",
            withdrawal=Withdrawal.REPLACED,
        )
    version = ContractVersion(
        deal=deal,
        number=number,
        template=template,
        terms=terms,
        html=html,
        sha256=documents.sha256_hex(pdf),
        signer_name=terms["signer"]["name"],
        signer_email=terms["signer"]["email"],
        created_by=by,
    )
    version.pdf.save(f"deal-{deal.pk}-v{number}.pdf", ContentFile(pdf), save=False)
    version.save()
    ContractSigner.objects.bulk_create(
        ContractSigner(version=version, **plan) for plan in signing_plan(deal, routing=routing)
    )
    amount_text = money_text(terms["amount"], terms["currency"])
    _timeline(
        version,
        by,
        reason or f"Contract version {number} generated ({amount_text}).",
        action="generated",
        sha256=version.sha256,
    )
    return version


def _signer_choose(*, deal: Deal, by, contact) -> None:
    """Make `contact` the deal's signer in the buying group (inside the caller's transaction)."""
    from deals.models import Stakeholder

    if contact.account_id != deal.account_id:
        raise ContractError(gettext("The signer must be a contact of the deal's account."))
    if not contact.email:
        raise ContractError(
            gettext("%(contact)s has no email address: add one to send them the contract.")
            % {"contact": contact}
        )
    signers = deal.stakeholders.filter(role=Stakeholder.Role.SIGNER).select_related("contact")
    other = signers.exclude(contact=contact).first()
    if other is not None:
        raise ContractError(
            gettext(
                "%(contact)s is already the signer. To choose someone else, remove them "
                "as signer from the buying group first."
            )
            % {"contact": other.contact}
        )
    if not signers.exists():
        deal_services.stakeholder_add(
            deal=deal, by=by, contact=contact, role=Stakeholder.Role.SIGNER
        )


@transaction.atomic
def contract_revise_for_concession(*, concession: Concession, by) -> ContractVersion | None:
    """An accepted concession changed the deal's terms: the buyer can no longer sign the old
    ones. Every version still out is withdrawn at once ("a revised contract is coming"), the
    next version is generated from the new terms, and the rep is told to send it today.

    Called by the receiver of `deals.signals.concession_accepted`, inside its transaction.
    """
    deal = Deal.objects.get(pk=concession.deal_id)
    if deal.state not in OPEN_STATES or not deal.contract_versions.exists():
        return None
    for older in ContractVersion.objects.select_for_update().filter(
        deal=deal, status__in=OUTSTANDING_STATUSES
    ):
        reason = "The terms changed with an accepted concession; a revised contract is coming."
        _withdraw(older, status=Status.VOIDED, reason=reason, withdrawal=Withdrawal.REVISED)
        _timeline(
            older,
            by,
            f"Version {older.number} withdrawn: the terms changed ({concession}).",
            action="voided",
        )
        if older.envelope_id and older.provider != "builtin":
            _enqueue("void_envelope", older.pk, reason)
    _back_to_negotiating(
        deal.pk, by=by, why=f"The terms changed ({concession}); a revised contract is coming."
    )
    try:
        with transaction.atomic():
            version = contract_generate(
                deal=deal,
                by=by,
                reason=f"Contract revised for the accepted concession: {concession}.",
            )
    except ContractError as exc:
        # A broken template must not block deciding the concession: say so on the timeline.
        deal_services.deal_activity_record(
            deal=deal,
            by=by,
            kind=DealEvent.Kind.CONTRACT,
            reason=f"The contract could not be revised for the concession: {exc.message}",
        )
        return None
    contract_revision_ready.send(sender=ContractVersion, version=version, by=by)
    return version


@transaction.atomic
def contracts_settle_for_closed_deal(*, deal: Deal, by, why: str) -> int:
    """The deal left the open states (lost, won by override, archived): void every version
    still outstanding in this transaction. Built-in links refuse at once (they check the
    version on every use); DocuSign envelopes are voided through the provider after commit,
    retried by the task. Returns how many versions were voided."""
    count = 0
    for version in ContractVersion.objects.select_for_update().filter(
        deal=deal, status__in=[*OUTSTANDING_STATUSES, Status.DRAFT]
    ):
        was_outstanding = version.status in OUTSTANDING_STATUSES
        _withdraw(
            version,
            status=Status.VOIDED,
            reason=f"Withdrawn: {why}",
            withdrawal=Withdrawal.DEAL_CLOSED,
            followup_reason=why.rstrip("."),
        )
        if was_outstanding:
            _timeline(version, by, f"Version {version.number} withdrawn: {why}", action="voided")
            count += 1
        if version.envelope_id and version.provider != "builtin":
            _enqueue("void_envelope", version.pk, "The seller withdrew this contract.")
    return count


# --- sending ------------------------------------------------------------------


@transaction.atomic
def contract_send(
    *,
    version: ContractVersion,
    by,
    expected_state: str | None = None,
    embedded: bool = False,
    notify: bool = True,
    provider: str | None = None,
) -> ContractVersion:
    """Send a draft to its signer; an earlier version still out is voided.

    The deal moves to agreement_sent unless it is already there (or in follow-up).
    The provider is called by a Celery task after commit (`notify=False`: no email, for
    the demo seed replaying history). `provider` overrides `ESIGN_PROVIDER` (the demo seed
    always uses the built-in signer: it must never send through an outside provider).
    """
    deal = version.deal
    _require_workable(deal, by)
    _locked(version)
    if not Deal.objects.get(pk=deal.pk).is_live:  # the stored state (locked by _locked)
        raise ContractError(
            gettext("This deal is closed or archived: the contract cannot be sent.")
        )
    if version.status != Status.DRAFT:
        raise ContractConflict(
            gettext(
                "Version %(number)s is “%(status)s”: only a draft can be sent. Generate "
                "a new version to change it."
            )
            % {"number": version.number, "status": version.get_status_display()}
        )
    if not version.signer_email:
        raise ContractError(
            gettext(
                "The contract names no signer with an email. Add the signer to the buying group, "
                "then generate the contract again."
            )
        )
    signers = _locked_signers(version)
    if not signers:
        raise ContractError(
            "The contract names no signer with an email. Add the signer to the buying group, "
            "then generate the contract again."
        )
    provider = provider or settings.ESIGN_PROVIDER
    for older in ContractVersion.objects.select_for_update().filter(
        deal=deal, status__in=OUT_STATUSES
    ):
        _withdraw(
            older,
            status=Status.VOIDED,
            reason=f"Replaced by version {version.number}.",
            withdrawal=Withdrawal.REPLACED,
        )
        _timeline(older, by, f"Version {older.number} voided: replaced by {version.number}.")
        if older.envelope_id and older.provider != "builtin":
            _enqueue("void_envelope", older.pk, f"Replaced by version {version.number}.")
    now = timezone.now()
    version.provider = provider
    version.embedded_signing = embedded and provider == "docusign"
    version.send_attempts = 0
    if provider == "builtin":
        from .esign.builtin import new_envelope_id

        version.envelope_id = new_envelope_id()
    if provider == "builtin" and not notify:
        version.status = Status.SENT  # the demo seed replaying history: no email
        version.sent_at = now
    else:
        # Out once the provider accepted it (the email left, the envelope exists); a
        # failure shows "sending failed" with a retry, and no follow-ups start before.
        version.status = Status.SENDING
    version.save(
        update_fields=[
            "provider",
            "embedded_signing",
            "send_attempts",
            "envelope_id",
            "status",
            "sent_at",
        ]
    )
    due = _make_due(signers, now=now)
    if len(signers) == 1:
        to = f"{version.signer_name} <{version.signer_email}>"
    else:
        to = (
            f"{_signer_words(due)} (signer {len(due)} of {len(signers)}"
            if len(due) == 1
            else (f"{_signer_words(due)} ({len(due)} of {len(signers)} signers")
        )
        to += f"; then {_signer_words([p for p in signers if p not in due])})"
    _timeline(
        version,
        by,
        f"Contract version {version.number} sent to {to} for signature "
        f"({provider_name(provider)}).",
        action="sent",
        provider=provider,
    )
    if deal.state not in (DealState.AGREEMENT_SENT, DealState.FOLLOW_UP):
        deal_services.deal_transition(
            deal=deal,
            transition="send_agreement",
            by=by,
            expected_state=expected_state,
            reason=f"Contract version {version.number} sent for signature.",
            use_case="contract_send",
        )
    if version.status == Status.SENT:
        contract_sent.send(sender=ContractVersion, version=version, by=by)
    else:
        _enqueue("send_version", version.pk)
    return version


@transaction.atomic
def contract_resend(*, version: ContractVersion, by) -> ContractVersion:
    """Email the signing link again (built-in), or retry a send that failed."""
    _require_workable(version.deal, by)
    _locked(version)
    if version.status == Status.FAILED:
        if not Deal.objects.get(pk=version.deal_id).is_live:
            raise ContractError(
                gettext("This deal is closed or archived: the contract cannot be sent.")
            )
        version.status = Status.SENDING
        version.send_attempts = 0
        version.status_reason = ""
        version.save(update_fields=["status", "send_attempts", "status_reason"])
        _timeline(version, by, f"Retrying to send version {version.number}.", action="retry")
        _enqueue("send_version", version.pk)
        return version
    if version.provider == "builtin" and version.status in OUT_STATUSES:
        _timeline(
            version,
            by,
            f"Signing link for version {version.number} emailed again to "
            f"{', '.join(p.email for p in version.signers.all() if p.is_due)}.",
            action="resent",
        )
        _enqueue("send_version", version.pk)
        return version
    raise ContractConflict(
        gettext(
            "Version %(number)s is “%(status)s”: there is nothing to resend. "
            "DocuSign reminds the signer itself; void and send a new version to "
            "restart."
        )
        % {"number": version.number, "status": version.get_status_display()}
    )


@transaction.atomic
def contract_void(*, version: ContractVersion, by, reason: str) -> ContractVersion:
    _require_workable(version.deal, by)
    _locked(version)
    reason = (reason or "").strip()
    if not reason:
        raise ContractError(gettext("Say why the contract is voided (the signer sees it)."))
    if version.status not in (*OUT_STATUSES, Status.FAILED):
        raise ContractConflict(
            gettext(
                "Version %(number)s is “%(status)s”: only a contract out for signature "
                "can be voided."
            )
            % {"number": version.number, "status": version.get_status_display()}
        )
    _withdraw(version, status=Status.VOIDED, reason=reason, withdrawal=Withdrawal.BY_REP)
    _timeline(version, by, f"Version {version.number} voided: {reason}", action="voided")
    if version.envelope_id and version.provider != "builtin":
        _enqueue("void_envelope", version.pk, reason)
    _back_to_negotiating(
        version.deal_id, by=by, why=f"Contract version {version.number} voided: {reason}"
    )
    return version


def _locked_by_id(version_id: int) -> ContractVersion:
    """The version by id, locked after its deal (see `_locked`)."""
    deal_id = ContractVersion.objects.values_list("deal_id", flat=True).get(pk=version_id)
    deal = deal_services.deal_lock(deal_id)
    version = ContractVersion.objects.select_for_update().get(pk=version_id)
    version.deal = deal
    return version


@transaction.atomic
def contract_send_attempt(*, version_id: int) -> ContractVersion | None:
    """Count one attempt; None when the version no longer needs sending."""
    version = _locked_by_id(version_id)
    if version.status not in OUT_STATUSES:
        return None
    version.send_attempts += 1
    version.save(update_fields=["send_attempts"])
    return version


def _void_envelope_later(version: ContractVersion, envelope_id: str, reason: str) -> None:
    """Withdraw one of the version's envelopes at the provider (after commit, by a task)."""
    _enqueue("void_envelope", version.pk, reason, envelope_id)


@transaction.atomic
def contract_send_succeeded(
    *,
    version_id: int,
    envelope_id: str,
    adopted: bool = False,
    duplicates: tuple[str, ...] | list[str] = (),
) -> ContractVersion:
    """The provider has the envelope (created now, or `adopted` from an earlier attempt).

    `duplicates` are other live envelopes found for the same version: they are voided, so
    the buyer has exactly one envelope to sign.
    """
    version = _locked_by_id(version_id)
    name = provider_name(version.provider)
    if version.status == Status.SENDING:
        version.envelope_id = envelope_id
        version.status = Status.SENT
        version.sent_at = timezone.now()
        version.save(update_fields=["envelope_id", "status", "sent_at"])
        how = "found the envelope of an earlier attempt" if adopted else "accepted"
        _timeline(
            version,
            None,
            f"{name} {how} for version {version.number} (envelope {envelope_id}).",
            action="accepted",
            envelope_id=envelope_id,
        )
        # Follow-ups start only once the buyer really has the contract.
        contract_sent.send(sender=ContractVersion, version=version, by=version.created_by)
    elif version.status == Status.VOIDED and not version.envelope_id and envelope_id:
        # Voided while it was being sent: withdraw the envelope that was created anyway.
        version.envelope_id = envelope_id
        version.save(update_fields=["envelope_id"])
        _void_envelope_later(version, envelope_id, version.status_reason or "Voided")
    elif envelope_id and envelope_id != version.envelope_id:
        duplicates = [envelope_id, *duplicates]
    for duplicate in duplicates:
        if duplicate == version.envelope_id:
            continue
        _timeline(
            version,
            None,
            f"A second {name} envelope ({duplicate}) for version {version.number} was found "
            "and voided: the buyer signs only one.",
            action="duplicate_voided",
            envelope_id=duplicate,
        )
        _void_envelope_later(
            version,
            duplicate,
            f"Duplicate of envelope {version.envelope_id or envelope_id} for contract version "
            f"{version.number} (a retried send); please sign that one.",
        )
    return version


@transaction.atomic
def contract_envelope_adopt(
    *, version_id: int, envelope_id: str, status: str
) -> ContractVersion | None:
    """An envelope DocuSign says carries this version's custom field, unknown here until now.

    It becomes the version's envelope when the version has none (a send that timed out)
    or when it is the signed one; any other live envelope is a duplicate and is voided.
    Returns the version when the envelope is now its own, None when it was a duplicate.
    """
    version = _locked_by_id(version_id)
    if version.envelope_id == envelope_id:
        return version
    name = provider_name(version.provider)
    previous = version.envelope_id
    signed_here = version.status == Status.COMPLETED
    if previous and (status != Status.COMPLETED or signed_here):
        _timeline(
            version,
            None,
            f"A second {name} envelope ({envelope_id}) for version {version.number} was found "
            "and voided: the buyer signs only one.",
            action="duplicate_voided",
            envelope_id=envelope_id,
        )
        if status not in FINAL_STATUSES:
            _void_envelope_later(
                version,
                envelope_id,
                f"Duplicate of envelope {previous} for contract version {version.number}; "
                "please sign that one.",
            )
        return None
    version.envelope_id = envelope_id
    fields = ["envelope_id"]
    if version.status in (Status.SENDING, Status.FAILED):
        version.status = Status.SENT
        version.sent_at = version.sent_at or timezone.now()
        version.status_reason = ""
        fields += ["status", "sent_at", "status_reason"]
        # It reached the buyer after all: follow-ups start now (never before a send succeeded).
        contract_sent.send(sender=ContractVersion, version=version, by=None)
    version.save(update_fields=fields)
    _timeline(
        version,
        None,
        f"{name} envelope {envelope_id} belongs to version {version.number}: adopted.",
        action="adopted",
        envelope_id=envelope_id,
    )
    if previous:
        # The buyer signed the other envelope: the one they did not sign is withdrawn.
        _void_envelope_later(
            version,
            previous,
            f"Contract version {version.number} was signed in envelope {envelope_id}.",
        )
    elif version.status == Status.VOIDED and status not in FINAL_STATUSES:
        _void_envelope_later(version, envelope_id, version.status_reason or "Voided")
    return version


@transaction.atomic
def contract_send_failed(*, version_id: int, message: str) -> ContractVersion:
    version = _locked_by_id(version_id)
    if version.status not in OUT_STATUSES:
        return version
    _withdraw(version, status=Status.FAILED, reason=message)
    _timeline(
        version,
        None,
        f"Version {version.number} could not be sent: {message} Retry it from the contract panel.",
        action="failed",
    )
    return version


# --- the outcome: signed, declined, viewed -----------------------------------------


def _complete(version: ContractVersion, *, signed_pdf: bytes, audit: dict, by_words: str) -> None:
    """Store the signed PDF and its hash; the deal is won if it was still open and this
    version was still out. Otherwise the signature is "late": recorded, never silent
    (timeline, tasks for the owner and the team's manager, a banner) and a manager decides."""
    version.signed_pdf.save(
        f"deal-{version.deal_id}-v{version.number}-signed.pdf", ContentFile(signed_pdf), save=False
    )
    version.signed_sha256 = documents.sha256_hex(signed_pdf)
    was_out = version.status in OUT_STATUSES
    deal = Deal.objects.select_for_update().get(pk=version.deal_id)
    late = not was_out or not deal.is_live
    version.status = Status.COMPLETED
    version.completed_at = timezone.now()
    version.signature = {**version.signature, **audit}
    # An outside provider's completed envelope means every recipient signed.
    ContractSigner.objects.filter(version=version).exclude(status=SignerStatus.SIGNED).update(
        status=SignerStatus.SIGNED, signed_at=version.completed_at
    )
    version.signed_late = late
    version.save(
        update_fields=[
            "signed_pdf",
            "signed_sha256",
            "status",
            "completed_at",
            "signature",
            "signed_late",
        ]
    )
    if late:
        when = "after the deal closed" if not deal.is_live else "after it was withdrawn"
        _timeline(
            version,
            None,
            f"Version {version.number} was signed by {by_words} {when}. It did not change the "
            "deal: a manager can turn it into a win.",
            action="signed_late",
            signed_sha256=version.signed_sha256,
        )
        log.warning("Contract %s signed late (deal %s, %s)", version.pk, deal.pk, deal.state)
        version.deal = deal
        contract_signed_late.send(sender=ContractVersion, version=version)
        contract_signed.send(sender=ContractVersion, version=version, closed_before=True)
        return
    _timeline(
        version,
        None,
        f"Version {version.number} signed by {by_words}.",
        action="signed",
        signed_sha256=version.signed_sha256,
    )
    closed_before = deal.state not in _WINNABLE
    if not closed_before:
        deal_services.deal_transition(
            deal=deal,
            transition="mark_won",
            by=None,
            as_system=True,
            reason=f"The buyer signed contract version {version.number}.",
        )
    elif deal.state in (DealState.INTENT_SPOTTED, DealState.ASKED):
        log.warning("Contract %s signed while deal %s is %s", version.pk, deal.pk, deal.state)
    version.deal = deal
    contract_signed.send(sender=ContractVersion, version=version, closed_before=closed_before)


def signer_link_due(*, signer_id: int) -> tuple[ContractVersion, ContractSigner] | None:
    """The version and signer whose link the task should email now, or None when their
    turn passed (the version was withdrawn, or they already acted)."""
    person = (
        ContractSigner.objects.select_related("version", "version__deal", "version__deal__owner")
        .filter(pk=signer_id)
        .first()
    )
    if person is None or not person.is_due:
        return None
    version = person.version
    if version.provider != "builtin" or not version.is_out:
        return None
    return version, person


@transaction.atomic
def contract_late_signature_accept(*, version: ContractVersion, by, reason: str) -> Deal:
    """A manager turns a signature that came after the close into the win it records: one
    audited transition; the deal's terms become the signed ones."""
    from deals.models import can_manage_deal

    if not can_manage_deal(version.deal, by):
        raise NotPermitted(gettext("Only the team's manager can turn a late signature into a win."))
    _locked(version)
    if not (version.status == Status.COMPLETED and version.signed_late):
        raise ContractError(
            gettext("Version %(number)s has no late signature to accept.")
            % {"number": version.number}
        )
    if version.late_signature_accepted_at is not None:
        raise deal_services.DealConflict(
            gettext("The late signature of version %(number)s was already accepted.")
            % {"number": version.number}
        )
    deal = Deal.objects.select_for_update().get(pk=version.deal_id)
    signed_terms = documents.agreed_terms_values(version.terms)
    changed = {f: v for f, v in signed_terms.items() if getattr(deal, f) != v}
    deal_services.deal_transition(
        deal=deal,
        transition="accept_late_signature",
        by=by,
        reason=reason,
        use_case="contract_late_signature_accept",
        data={"version": version.number, "version_id": version.pk},
    )
    version.late_signature_accepted_at = timezone.now()
    version.save(update_fields=["late_signature_accepted_at"])
    if changed:
        deal_services.deal_terms_amend(
            deal=deal,
            by=by,
            reason=f"The signed terms of version {version.number} apply (late signature accepted).",
            **changed,
        )
    version.deal = deal
    return deal


def _decline(version: ContractVersion, *, reason: str, who: str = "The signer") -> None:
    _withdraw(version, status=Status.DECLINED, reason=reason)
    _timeline(version, None, f"{who} declined version {version.number}: {reason}")
    deal = Deal.objects.get(pk=version.deal_id)
    deal_services.objection_raise_system(
        deal=deal,
        category="terms",
        detail=gettext("Declined to sign contract version %(number)s: %(reason)s")
        % {"number": version.number, "reason": reason},
    )
    if deal.state in (DealState.AGREEMENT_SENT, DealState.FOLLOW_UP):
        deal_services.deal_transition(
            deal=deal,
            transition="negotiate",
            by=None,
            as_system=True,
            reason="The buyer declined to sign; back to negotiating.",
        )
    version.deal = deal


def _now_text() -> str:
    return timezone.now().strftime("%Y-%m-%d %H:%M:%S UTC")


def _time_text(when) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if when else ""


def _signer_for(signers: list[ContractSigner], signer) -> ContractSigner | None:
    """The locked row of `signer`, or (no signer given: the single-signer callers) the
    first signer whose turn it is, else the first one."""
    if signer is not None:
        return next((s for s in signers if s.pk == signer.pk), None)
    due = [s for s in signers if s.is_due]
    return (due or signers or [None])[0]


@transaction.atomic
def contract_view_builtin(
    *, version: ContractVersion, ip: str, user_agent: str, signer: ContractSigner | None = None
) -> bool:
    """A signer opened their link: 'viewed' for them; the first time a buyer opens the
    version it is 'viewed' too, with a buying signal for the rep (once)."""
    _locked(version)
    person = _signer_for(_locked_signers(version), signer)
    changed = False
    if person is not None and person.status == SignerStatus.DUE and version.is_out:
        person.status = SignerStatus.VIEWED
        person.viewed_at = timezone.now()
        person.viewed_ip = ip[:64]
        person.viewed_user_agent = user_agent[:300]
        person.save(update_fields=["status", "viewed_at", "viewed_ip", "viewed_user_agent"])
        changed = True
        if len(version.signers.all()) > 1:
            _timeline(version, None, f"{person.name} opened version {version.number}.")
    buyer = person is None or person.role == ContractSigner.Role.BUYER
    if not buyer or version.status not in (Status.SENT, Status.DELIVERED):
        return changed
    name = person.name if person is not None else version.signer_name
    version.status = Status.VIEWED
    version.viewed_at = timezone.now()
    version.signature = {
        **version.signature,
        "viewed_at": _now_text(),
        "viewed_ip": ip,
        "viewed_user_agent": user_agent[:300],
    }
    version.save(update_fields=["status", "viewed_at", "signature"])
    if len(version.signers.all()) <= 1:
        _timeline(version, None, f"{name} opened version {version.number}.")
    deal_services.buying_signal_record_system(
        deal=version.deal,
        kind="contract_viewed",
        note=f"{name} opened contract version {version.number}.",
        channel="email",
    )
    contract_viewed.send(sender=ContractVersion, version=version)
    return True


def _signable(version: ContractVersion) -> None:
    if version.status not in OUT_STATUSES:
        raise ContractConflict(
            gettext("This contract is “%(status)s” and can no longer be signed or declined.")
            % {"status": in_sentence(version.get_status_display())}
        )


def _their_turn(person: ContractSigner | None, signers: list[ContractSigner]) -> ContractSigner:
    """The signer may act now, or a conflict saying why not (signed, declined, not yet)."""
    if person is None:
        raise ContractConflict("This contract names no such signer.")
    if person.status == SignerStatus.SIGNED:
        waiting = [s for s in signers if s.status != SignerStatus.SIGNED]
        then = f" Still to sign: {_signer_words(waiting)}." if waiting else ""
        raise ContractConflict(
            f"You already signed this contract on {_time_text(person.signed_at)}.{then}"
        )
    if person.status == SignerStatus.DECLINED:
        raise ContractConflict("You declined this contract; it can no longer be signed.")
    if person.status == SignerStatus.PENDING:
        before = [
            s
            for s in signers
            if s.routing_order < person.routing_order and s.status != SignerStatus.SIGNED
        ]
        raise ContractConflict(
            f"It is not your turn to sign yet: {_signer_words(before) or 'another signer'} must "
            "sign first. You will get an email with your link when it is your turn."
        )
    return person


def _same_name(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


#: What a signer agrees to by ticking the box on the built-in page (kept in the audit).
CONSENT_TEXT = "Agreed to sign electronically and to the terms shown"


@transaction.atomic
def contract_sign_builtin(
    *,
    version: ContractVersion,
    full_name: str,
    consent: bool,
    ip: str,
    user_agent: str,
    signer: ContractSigner | None = None,
) -> ContractVersion:
    """A signer signs on the built-in page, in their turn. When the last signer has signed,
    the PDF is stamped (signature blocks and the certificate of completion), sealed with the
    product's certificate, and the deal is won; otherwise the next signers get their links.

    Locks: the deal's row, the version's, then its signers' (two signers of the same
    routing order signing at once are serialised; neither signature is lost).
    """
    _locked(version)
    _signable(version)
    signers = _locked_signers(version)
    person = _their_turn(_signer_for(signers, signer), signers)
    full_name = " ".join((full_name or "").split())
    if not full_name:
        raise ContractError(gettext("Type your full name to sign."))
    if person.name and not _same_name(full_name, person.name):
        raise ContractError(
            gettext("Type your full name as it appears on the contract: %(signer_name)s.")
            % {"signer_name": person.name}
        )
    if not consent:
        raise ContractError(gettext("Tick the box to agree to sign electronically."))
    with version.pdf.open("rb") as handle:
        pdf = handle.read()
    if documents.sha256_hex(pdf) != version.sha256:
        raise ContractError(gettext("The document changed since it was sent; it cannot be signed."))
    now = timezone.now()
    person.status = SignerStatus.SIGNED
    person.signed_at = now
    person.typed_name = full_name
    person.ip = ip[:64]
    person.user_agent = user_agent[:300]
    person.consent_text = CONSENT_TEXT
    person.save(
        update_fields=["status", "signed_at", "typed_name", "ip", "user_agent", "consent_text"]
    )
    remaining = [s for s in signers if s.status != SignerStatus.SIGNED]
    if remaining:
        _timeline(
            version,
            None,
            f"{person.name} signed version {version.number} "
            f"({len(signers) - len(remaining)} of {len(signers)}).",
            action="signer_signed",
            signer=person.email,
        )
        for upcoming in _make_due(signers, now=now):
            _enqueue("email_signing_link", upcoming.pk)
            _timeline(
                version,
                None,
                f"Signing link for version {version.number} emailed to {upcoming.name} "
                f"<{upcoming.email}>: their turn.",
                action="signer_due",
                signer=upcoming.email,
            )
        return version
    _complete_builtin(version, signers, last=person)
    return version


def _signer_audit(person: ContractSigner, number: int) -> dict[str, str]:
    return {
        "name": person.name,
        "typed_name": person.typed_name,
        "email": person.email,
        "role": person.role,
        "role_label": str(person.get_role_display()),
        "order": str(person.routing_order),
        "consent": person.consent_text,
        "due_at": _time_text(person.due_at),
        "viewed_at": _time_text(person.viewed_at),
        "signed_at": _time_text(person.signed_at),
        "ip": person.ip,
        "user_agent": person.user_agent,
        "viewed_ip": person.viewed_ip,
        "viewed_user_agent": person.viewed_user_agent,
    }


def _complete_builtin(
    version: ContractVersion, signers: list[ContractSigner], *, last: ContractSigner
) -> None:
    """Every signer signed: stamp, add the certificate of completion, seal, complete."""
    from . import sealing

    with version.pdf.open("rb") as handle:
        pdf = handle.read()
    people = [_signer_audit(p, n) for n, p in enumerate(signers, start=1)]
    first = people[0]
    audit = {
        **first,
        "name": first["typed_name"] or first["name"],
        "sent_at": _time_text(version.sent_at),
        "signed_at": people[-1]["signed_at"],
        "document_sha256": version.sha256,
        "contract": f"{version.deal.title}, contract {version.deal_id}-{version.number}",
        "signers": people,
    }
    try:
        certificate = sealing.seal_certificate()
    except sealing.SealingUnavailable as exc:
        certificate = None
        log.error("Contract %s not sealed: %s", version.pk, exc)
    stamped = documents.stamp_signed_pdf(
        pdf,
        audit=audit,
        signers=[dict(p) for p in people],
        seal_fingerprint=certificate.fingerprint if certificate else "",
    )
    if certificate is not None:
        final = sealing.seal_pdf(
            stamped,
            certificate=certificate,
            reason=f"Signed by {_signer_words(signers)}; sealed by Closing CRM",
        )
        version.sealed_at = timezone.now()
        version.seal_fingerprint = certificate.fingerprint
        version.save(update_fields=["sealed_at", "seal_fingerprint"])
    else:
        final = stamped
        _timeline(
            version,
            None,
            f"Version {version.number} could not be sealed: no signing certificate is "
            "configured (an admin runs manage.py signing_certificate_create).",
            action="not_sealed",
        )
    words = (
        f"{last.name} (built-in)"
        if len(signers) == 1
        else f"{_signer_words(signers)} (built-in, {len(signers)} signers)"
    )
    _complete(version, signed_pdf=final, audit=audit, by_words=words)


@transaction.atomic
def contract_decline_builtin(
    *,
    version: ContractVersion,
    reason: str,
    ip: str,
    user_agent: str,
    signer: ContractSigner | None = None,
) -> ContractVersion:
    """A signer declines, in their turn: the version ends for everyone (as with one signer)."""
    _locked(version)
    _signable(version)
    signers = _locked_signers(version)
    person = _their_turn(_signer_for(signers, signer), signers)
    reason = (reason or "").strip()
    if not reason:
        raise ContractError(gettext("Tell us why you decline, so we can fix it."))
    person.status = SignerStatus.DECLINED
    person.declined_at = timezone.now()
    person.decline_reason = reason[:2000]
    person.ip = ip[:64]
    person.user_agent = user_agent[:300]
    person.save(update_fields=["status", "declined_at", "decline_reason", "ip", "user_agent"])
    version.signature = {
        **version.signature,
        "declined_by": person.email,
        "declined_at": _now_text(),
        "declined_ip": ip,
        "declined_user_agent": user_agent[:300],
    }
    version.save(update_fields=["signature"])
    who = "The signer" if len(signers) == 1 else person.name
    _decline(version, reason=reason[:2000], who=who)
    return version


# --- webhooks and reconciling -------------------------------------------------------

EVENT_STATUS = {
    "envelope-sent": Status.SENT,
    "envelope-delivered": Status.DELIVERED,
    "envelope-completed": Status.COMPLETED,
    "envelope-declined": Status.DECLINED,
    "envelope-voided": Status.VOIDED,
}


def webhook_receive(*, provider: str, event: str, envelope_id: str, body: bytes) -> WebhookDelivery:
    """Store the verified delivery first; it is processed by a task after commit."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            provider=provider,
            event=event,
            envelope_id=envelope_id,
            body=body.decode("utf-8", "replace"),
        )
        _enqueue("process_webhook", delivery.pk)
    return delivery


def _already_applied(envelope_id: str, event: str) -> bool:
    return EnvelopeEvent.objects.filter(envelope_id=envelope_id, event=event).exists()


def envelope_event_apply(
    *,
    version: ContractVersion,
    event: str,
    source: str,
    signed_pdf: bytes | None = None,
    reason: str = "",
) -> bool:
    """Apply one envelope event once (idempotent by envelope id and event); False: duplicate.

    Out-of-order events are harmless: a status never moves backwards, and a completed
    envelope wins the deal whatever arrived before or after it. `reason` is the signer's
    decline reason or the void reason, as the provider reports it.
    """
    with transaction.atomic():
        try:
            with transaction.atomic():
                EnvelopeEvent.objects.create(
                    envelope_id=version.envelope_id, event=event, version=version, source=source
                )
        except IntegrityError:
            return False
        _locked(version)
        status = version.status
        if event in ("envelope-sent", "envelope-delivered"):
            if event == "envelope-sent" and status == Status.SENDING:
                version.status = Status.SENT
                version.sent_at = version.sent_at or timezone.now()
                version.save(update_fields=["status", "sent_at"])
            elif event == "envelope-delivered" and status in (Status.SENDING, Status.SENT):
                version.status = Status.DELIVERED
                version.delivered_at = timezone.now()
                version.save(update_fields=["status", "delivered_at"])
                _timeline(
                    version, None, f"Version {version.number} delivered to {version.signer_name}."
                )
        elif event == "envelope-completed":
            if status != Status.COMPLETED:
                if signed_pdf is None:
                    raise ValueError("A completed envelope needs its signed document.")
                _complete(
                    version,
                    signed_pdf=signed_pdf,
                    audit={"source": source, "envelope_id": version.envelope_id},
                    by_words=f"{version.signer_name} ({provider_name(version.provider)})",
                )
        elif event == "envelope-declined" and status in OUT_STATUSES:
            name = provider_name(version.provider)
            _decline(version, reason=reason or f"Declined in {name} (no reason given).")
        elif event == "envelope-voided" and status in OUT_STATUSES:
            name = provider_name(version.provider)
            said = f"Voided in {name}: {reason}" if reason else f"Voided in {name}."
            _withdraw(version, status=Status.VOIDED, reason=said)
            _timeline(version, None, f"Version {version.number}: {said}")
            _back_to_negotiating(version.deal_id, by=None, why=f"Version {version.number}: {said}")
    return True


#: Events that end an envelope: confirmed with the provider before they are applied.
TERMINAL_EVENTS = {"envelope-completed", "envelope-declined", "envelope-voided"}


@dataclasses.dataclass(frozen=True)
class _Confirmed:
    """What to apply for an event after asking the provider (network, before any transaction)."""

    event: str | None  # None: the provider does not confirm it; apply nothing
    reason: str = ""
    signed_pdf: bytes | None = None
    said: str = ""  # what the provider reported instead


def _confirm(version: ContractVersion, event: str, details=None) -> _Confirmed:
    """Read the envelope from the provider before applying a terminal event.

    A webhook (even correctly signed) or a status listing is a claim; `get_envelope` with
    its recipients is the truth, and carries the decline or void reason. The signed PDF is
    downloaded here too, outside any transaction.
    """
    if event not in TERMINAL_EVENTS or _already_applied(version.envelope_id, event):
        return _Confirmed(event)
    if event == "envelope-completed" and version.status == Status.COMPLETED:
        return _Confirmed(event)
    from .esign import get_provider

    provider = get_provider(version.provider)
    details = details or provider.envelope_details(version.envelope_id)
    if f"envelope-{details.status}" != event:
        log.warning(
            "%s for envelope %s not applied: the provider reports it as %s",
            event,
            version.envelope_id,
            details.status or "unknown",
        )
        return _Confirmed(None, said=details.status or "unknown")
    signed = provider.fetch_signed_document(version) if event == "envelope-completed" else None
    return _Confirmed(event, reason=details.reason, signed_pdf=signed)


def _apply_confirmed(
    version: ContractVersion, event: str, source: str, details=None
) -> tuple[bool, str]:
    """(applied, why not) for one event, after the provider confirmed it (`details`: the
    envelope as just read, if the caller has it)."""
    confirmed = _confirm(version, event, details)
    if confirmed.event is None:
        return False, f"Not applied: DocuSign reports the envelope as “{confirmed.said}”."
    applied = envelope_event_apply(
        version=version,
        event=confirmed.event,
        source=source,
        signed_pdf=confirmed.signed_pdf,
        reason=confirmed.reason,
    )
    return applied, ""


def _version_from_envelope(provider: str, envelope_id: str) -> tuple[ContractVersion | None, str]:
    """An envelope we have no record of: if the provider says it carries one of our
    versions' custom field (a send that timed out after creating it), adopt it.

    Returns (the version now owning it, or None; a note when it was voided as a duplicate).
    """
    from .esign import ProviderError, get_provider
    from .esign.docusign import VERSION_FIELD

    if provider != "docusign":
        return None, ""
    try:
        details = get_provider(provider).envelope_details(envelope_id)
    except ProviderError as exc:
        if exc.transient:
            raise
        return None, ""  # DocuSign does not know it either (404) or it is not in our account
    version_id = details.custom_fields.get(VERSION_FIELD, "")
    if not version_id.isdigit():
        return None, ""
    if not ContractVersion.objects.filter(pk=int(version_id), provider=provider).exists():
        return None, ""
    version = contract_envelope_adopt(
        version_id=int(version_id), envelope_id=envelope_id, status=details.status
    )
    if version is None:
        return None, f"A duplicate envelope of contract version id {version_id}: voided."
    return ContractVersion.objects.select_related("deal").get(pk=version.pk), ""


def webhook_process(*, delivery_id: int) -> str:
    """Process one inbox delivery; ProviderError propagates so the task retries."""
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    if delivery.processed_at:
        return delivery.outcome
    note = ""
    version = version_by_envelope(delivery.envelope_id, delivery.provider)
    if version is None and delivery.event in EVENT_STATUS:
        version, note = _version_from_envelope(delivery.provider, delivery.envelope_id)
    if version is None and note:
        outcome = WebhookDelivery.Outcome.IGNORED
    elif version is None:
        log.warning(
            "Webhook %s for unknown envelope %s ignored", delivery.event, delivery.envelope_id
        )
        outcome = WebhookDelivery.Outcome.UNKNOWN_ENVELOPE
    elif delivery.event not in EVENT_STATUS:
        outcome = WebhookDelivery.Outcome.IGNORED
    else:
        applied, note = _apply_confirmed(version, delivery.event, "webhook")
        if note:
            outcome = WebhookDelivery.Outcome.IGNORED
        elif applied:
            outcome = WebhookDelivery.Outcome.APPLIED
        else:
            outcome = WebhookDelivery.Outcome.DUPLICATE
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        outcome=outcome, processed_at=timezone.now(), error=note
    )
    return outcome


def contract_envelope_sync(*, version: ContractVersion) -> str:
    """Bring one version up to date with its envelope now (the in-person signer is back).

    Returns the version's status afterwards. Network first, then the same idempotent
    service a webhook uses.
    """
    from .esign import get_provider

    if version.provider == "builtin" or not version.envelope_id:
        return version.status
    details = get_provider(version.provider).envelope_details(version.envelope_id)
    event = f"envelope-{details.status}"
    if event in EVENT_STATUS and details.status != version.status:
        _apply_confirmed(version, event, "return", details)
    version.refresh_from_db()
    return version.status


def webhook_failed(*, delivery_id: int, message: str) -> None:
    WebhookDelivery.objects.filter(pk=delivery_id).update(
        outcome=WebhookDelivery.Outcome.ERROR, error=message[:2000]
    )


def contracts_reconcile() -> dict[str, int]:
    """Catch up on envelopes whose webhooks never came; expire old built-in contracts."""
    from .esign import get_provider

    counts = {"checked": 0, "applied": 0, "expired": 0, "inbox": 0}
    stale = timezone.now() - dt.timedelta(minutes=5)
    for delivery_id in WebhookDelivery.objects.filter(
        processed_at__isnull=True, received_at__lt=stale
    ).values_list("pk", flat=True)[:500]:
        webhook_process(delivery_id=delivery_id)  # deliveries whose task never ran
        counts["inbox"] += 1
    waiting = list(
        ContractVersion.objects.filter(provider="docusign", status__in=OUT_STATUSES)
        .exclude(envelope_id="")
        .select_related("deal")
    )
    if waiting:
        by_envelope = {v.envelope_id: v for v in waiting}
        counts["checked"] = len(waiting)
        for change in get_provider("docusign").changes(waiting):
            version = by_envelope.get(change.envelope_id)
            event = f"envelope-{change.status}"
            if version is None or event not in EVENT_STATUS or change.status == version.status:
                continue
            applied, _ = _apply_confirmed(version, event, "reconcile")
            if applied:
                counts["applied"] += 1
    if not settings.CONTRACT_EXPIRE_AFTER_DAYS:
        return counts
    cutoff = timezone.now() - dt.timedelta(days=settings.CONTRACT_EXPIRE_AFTER_DAYS)
    for version in ContractVersion.objects.filter(
        provider="builtin", status__in=OUT_STATUSES, sent_at__lt=cutoff
    ).select_related("deal"):
        with transaction.atomic():
            _locked(version)
            if version.status in OUT_STATUSES:
                _withdraw(version, status=Status.EXPIRED, reason="Not signed in time: it expired.")
                _timeline(version, None, f"Version {version.number} expired unsigned.")
                _back_to_negotiating(
                    version.deal_id, by=None, why=f"Version {version.number} expired unsigned."
                )
                counts["expired"] += 1
    return counts


@transaction.atomic
def signer_personal_data_erase(*, contact, by) -> dict[str, int]:
    """Erase the contact as a contract signer (part of deals.services.contact_erase).

    Refused while a version is out for signature to them (void it first). Drafts never left
    the company: they are voided and their document (which names the signer) is removed.
    Versions that were sent are kept unchanged: the binding record of what was offered and
    signed (GDPR Art. 17(3)(b) and (e))."""
    from .selectors import signer_versions

    versions = (
        ContractVersion.objects.select_for_update()
        .filter(pk__in=signer_versions(contact).values("pk"))
        .order_by("deal_id", "number")
    )
    out = [v for v in versions if v.status in OUT_STATUSES]
    if out:
        raise ContractError(
            gettext(
                "%(contact)s is the signer of contract version %(number)s of “%(deal)s”, "
                "which is out for signature: void it first, then erase."
            )
            % {"contact": contact, "number": out[0].number, "deal": out[0].deal}
        )
    drafts = [v for v in versions if v.status == Status.DRAFT]
    files = [v.pdf.name for v in drafts if v.pdf]
    ContractVersion.objects.filter(pk__in=[v.pk for v in drafts]).update(
        status=Status.VOIDED,
        voided_at=timezone.now(),
        status_reason="The signer's personal data was erased on request; generate a new version.",
        html="",
        pdf="",
        sha256="",
        signer_name="",
        signer_email="",
    )
    # The drafts' signer rows name the person too; drafts never left the company.
    ContractSigner.objects.filter(version_id__in=[v.pk for v in drafts]).delete()
    if files:
        from django.core.files.storage import default_storage

        transaction.on_commit(lambda: [default_storage.delete(name) for name in files])
    return {
        "contract_drafts_voided": len(drafts),
        "contract_versions_kept_as_legal_record": len(versions) - len(drafts),
    }
