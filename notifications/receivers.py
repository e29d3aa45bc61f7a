"""Other apps' events become notifications. Receivers run inside the sender's transaction,
so a notification commits (or rolls back) with its event; they only call `notify`."""

from __future__ import annotations

from deals.models import DealState

from .models import Kind
from .services import notify


def _deal_of(version):
    return version.deal


def on_contract_viewed(sender, *, version, **kwargs) -> None:
    deal = _deal_of(version)
    notify(
        recipient=deal.owner,
        kind=Kind.CONTRACT_VIEWED,
        deal=deal,
        key=f"contract_viewed:{version.pk}",
        text=f"{version.signer_name or 'The buyer'} opened contract version {version.number} "
        f"of “{deal.title}”.",
    )


def on_contract_signed(sender, *, version, closed_before: bool = False, **kwargs) -> None:
    deal = _deal_of(version)
    if closed_before:
        notify(
            recipient=deal.owner,
            kind=Kind.SIGNED_AFTER_CLOSE,
            deal=deal,
            key=f"signed_after_close:{version.pk}",
            text=f"{version.signer_name or 'The buyer'} signed contract version "
            f"{version.number} of “{deal.title}”, but the deal was already "
            f"{deal.get_state_display().lower()}: look at it.",
        )
        return
    notify(
        recipient=deal.owner,
        kind=Kind.CONTRACT_SIGNED,
        deal=deal,
        key=f"contract_signed:{version.pk}",
        text=f"{version.signer_name or 'The buyer'} signed contract version {version.number} "
        f"of “{deal.title}”.",
    )


def on_contract_withdrawn(sender, *, version, **kwargs) -> None:
    from contracts.models import ContractVersion

    deal = _deal_of(version)
    if version.status == ContractVersion.Status.DECLINED:
        notify(
            recipient=deal.owner,
            kind=Kind.CONTRACT_DECLINED,
            deal=deal,
            key=f"contract_declined:{version.pk}",
            text=f"{version.signer_name or 'The buyer'} declined contract version "
            f"{version.number} of “{deal.title}”: {version.status_reason}"[:300],
        )
    elif version.status == ContractVersion.Status.FAILED:
        from deals.models import DealEvent

        # One notification per failure: a retried send that fails again is a new event.
        retries = (
            DealEvent.objects.filter(
                deal=deal, kind=DealEvent.Kind.CONTRACT, data__version_id=version.pk
            )
            .filter(data__action="retry")
            .count()
        )
        notify(
            recipient=deal.owner,
            kind=Kind.SENDING_FAILED,
            deal=deal,
            key=f"sending_failed:{version.pk}:{retries}",
            text=f"Contract version {version.number} of “{deal.title}” could not be sent: "
            f"{version.status_reason}"[:300],
        )


def on_deal_state_changed(sender, *, deal, event, by=None, **kwargs) -> None:
    if event.transition == "override_won" and by is not None and by.pk != deal.owner_id:
        notify(
            recipient=deal.owner,
            kind=Kind.MANAGER_OVERRIDE,
            deal=deal,
            key=f"manager_override:{event.pk}",
            text=f"{by} marked “{deal.title}” won without a signature: {event.reason}"[:300],
        )
    if deal.state == DealState.CLOSED_WON:
        account = deal.account
        account.refresh_from_db(fields=["account_manager"])
        manager = account.account_manager
        if manager is not None and (by is None or manager.pk != by.pk):
            notify(
                recipient=manager,
                kind=Kind.CUSTOMER_HANDOFF,
                deal=deal,
                key=f"customer_handoff:{event.pk}",
                text=f"{account} is a customer now (“{deal.title}” won): you take over onboarding.",
            )


def on_deal_reassigned(sender, *, deal, previous_owner=None, by=None, event=None, **kwargs):
    if by is not None and by.pk == deal.owner_id:
        return
    cause = event.pk if event is not None else f"{getattr(previous_owner, 'pk', '')}"
    notify(
        recipient=deal.owner,
        kind=Kind.DEAL_REASSIGNED,
        deal=deal,
        key=f"deal_reassigned:{deal.pk}:{deal.owner_id}:{cause}",
        text=f"“{deal.title}” is yours now"
        + (f" (it was {previous_owner}’s)" if previous_owner else "")
        + (f", assigned by {by}." if by else "."),
    )


def on_buyer_replied(sender, *, deal, email, **kwargs) -> None:
    from followups.inbound import reply_part

    said = " ".join(reply_part(email.text).split())
    words = f"“{said[:160]}{'…' if len(said) > 160 else ''}”" if said else email.subject
    notify(
        recipient=deal.owner,
        kind=Kind.BUYER_REPLIED,
        deal=deal,
        key=f"buyer_replied:{email.pk}",
        text=f"{email.from_address} replied on “{deal.title}”: {words}"[:300],
    )


def on_email_bounced(sender, *, deal, address: str, key: str, reason: str = "", **kwargs):
    notify(
        recipient=deal.owner,
        kind=Kind.REMINDER_BOUNCED,
        deal=deal,
        key=f"reminder_bounced:{key}",
        text=f"Email to {address} on “{deal.title}” bounced; follow-ups are paused. {reason}"[:300],
    )


def connect() -> None:
    from contracts.signals import contract_signed, contract_viewed, contract_withdrawn
    from deals.signals import deal_reassigned, deal_state_changed
    from followups.signals import buyer_replied, email_bounced

    uid = "notifications."
    contract_viewed.connect(on_contract_viewed, dispatch_uid=uid + "viewed")
    contract_signed.connect(on_contract_signed, dispatch_uid=uid + "signed")
    contract_withdrawn.connect(on_contract_withdrawn, dispatch_uid=uid + "withdrawn")
    deal_state_changed.connect(on_deal_state_changed, dispatch_uid=uid + "state")
    deal_reassigned.connect(on_deal_reassigned, dispatch_uid=uid + "reassigned")
    buyer_replied.connect(on_buyer_replied, dispatch_uid=uid + "replied")
    email_bounced.connect(on_email_bounced, dispatch_uid=uid + "bounced")
