"""Other apps' events become notifications. Receivers run inside the sender's transaction,
so a notification commits (or rolls back) with its event; they only call `notify`."""

from __future__ import annotations

from django.utils.translation import gettext

from deals.models import DealState, in_sentence

from .models import Kind
from .services import notify


def _deal_of(version):
    return version.deal


def _signer(version) -> str:
    return version.signer_name or gettext("The buyer")


def on_contract_viewed(sender, *, version, **kwargs) -> None:
    deal = _deal_of(version)
    notify(
        recipient=deal.owner,
        kind=Kind.CONTRACT_VIEWED,
        deal=deal,
        key=f"contract_viewed:{version.pk}",
        text=lambda: (
            gettext("%(signer)s opened contract version %(number)s of “%(deal)s”.")
            % {"signer": _signer(version), "number": version.number, "deal": deal.title}
        ),
    )


def on_contract_signed(sender, *, version, closed_before: bool = False, **kwargs) -> None:
    deal = _deal_of(version)
    if closed_before:
        notify(
            recipient=deal.owner,
            kind=Kind.SIGNED_AFTER_CLOSE,
            deal=deal,
            key=f"signed_after_close:{version.pk}",
            text=lambda: (
                gettext(
                    "%(signer)s signed contract version %(number)s of “%(deal)s”, but the deal was "
                    "already %(state)s: look at it."
                )
                % {
                    "signer": _signer(version),
                    "number": version.number,
                    "deal": deal.title,
                    "state": in_sentence(deal.get_state_display()),
                }
            ),
        )
        return
    notify(
        recipient=deal.owner,
        kind=Kind.CONTRACT_SIGNED,
        deal=deal,
        key=f"contract_signed:{version.pk}",
        text=lambda: (
            gettext("%(signer)s signed contract version %(number)s of “%(deal)s”.")
            % {"signer": _signer(version), "number": version.number, "deal": deal.title}
        ),
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
            text=lambda: (
                gettext("%(signer)s declined contract version %(number)s of “%(deal)s”: %(reason)s")
                % {
                    "signer": _signer(version),
                    "number": version.number,
                    "deal": deal.title,
                    "reason": version.status_reason,
                }
            )[:300],
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
            text=lambda: (
                gettext("Contract version %(number)s of “%(deal)s” could not be sent: %(reason)s")
                % {"number": version.number, "deal": deal.title, "reason": version.status_reason}
            )[:300],
        )


def on_deal_state_changed(sender, *, deal, event, by=None, **kwargs) -> None:
    if event.transition == "override_won" and by is not None and by.pk != deal.owner_id:
        notify(
            recipient=deal.owner,
            kind=Kind.MANAGER_OVERRIDE,
            deal=deal,
            key=f"manager_override:{event.pk}",
            text=lambda: (
                gettext("%(by)s marked “%(deal)s” won without a signature: %(reason)s")
                % {"by": by, "deal": deal.title, "reason": event.reason}
            )[:300],
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
                text=lambda: (
                    gettext(
                        "%(account)s is a customer now (“%(deal)s” won): you take over onboarding."
                    )
                    % {"account": account, "deal": deal.title}
                ),
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
        text=lambda: _reassigned_text(deal, previous_owner, by),
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
        text=lambda: (
            gettext("%(sender)s replied on “%(deal)s”: %(words)s")
            % {"sender": email.from_address, "deal": deal.title, "words": words}
        )[:300],
    )


def on_email_bounced(sender, *, deal, address: str, key: str, reason: str = "", **kwargs):
    notify(
        recipient=deal.owner,
        kind=Kind.REMINDER_BOUNCED,
        deal=deal,
        key=f"reminder_bounced:{key}",
        text=lambda: (
            gettext("Email to %(address)s on “%(deal)s” bounced; follow-ups are paused. %(reason)s")
            % {"address": address, "deal": deal.title, "reason": reason}
        )[:300],
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


def _reassigned_text(deal, previous_owner, by) -> str:
    values = {"deal": deal.title, "previous": previous_owner, "by": by}
    if previous_owner and by:
        text = gettext("“%(deal)s” is yours now (it was %(previous)s’s), assigned by %(by)s.")
    elif previous_owner:
        text = gettext("“%(deal)s” is yours now (it was %(previous)s’s).")
    elif by:
        text = gettext("“%(deal)s” is yours now, assigned by %(by)s.")
    else:
        text = gettext("“%(deal)s” is yours now.")
    return text % values
