"""Template tags that put contract information on other apps' pages."""

from django import template
from django.conf import settings

from deals.models import DealEvent, can_work_deal

from ..models import ContractVersion
from ..selectors import deal_contract_versions

register = template.Library()


@register.inclusion_tag("contracts/_deal_panel.html", takes_context=True)
def contract_panel(context, deal):
    """The contract versions panel of the deal page (actions only for who may work the deal)."""
    from ..esign.builtin import signing_url

    user = context["user"]
    versions = deal_contract_versions(deal)
    rows = []
    for version in versions:
        links = []
        if version.provider == "builtin" and version.is_out and version.envelope_id:
            people = [s for s in version.signers.all() if s.is_due] or [None]
            links = [(person, signing_url(version, person)) for person in people]
        rows.append({"v": version, "links": links, "signers": list(version.signers.all())})
    events = DealEvent.objects.filter(deal=deal, kind=DealEvent.Kind.CONTRACT).select_related(
        "actor"
    )[:8]
    from ..services import signing_plan, team_countersigner

    # One query for the buying group's signers: the first is who the contract addresses.
    plan = signing_plan(deal, countersigner=False) if deal.is_open else []
    signer = plan[0]["contact"] if plan else None
    candidates = []
    if signer is None and deal.is_open:
        candidates = list(deal.account.contacts.active().exclude(email="").order_by("last_name"))
    return {
        "deal": deal,
        "signer": signer,
        "buyer_signers": [p for p in plan if p["role"] == "buyer"],
        "countersigner": team_countersigner(deal.team) if plan else None,
        "signer_candidates": candidates,
        "messages": context.get("messages"),
        "docusign": settings.ESIGN_PROVIDER == "docusign",
        "rows": rows,
        "has_draft": any(v.status == ContractVersion.Status.DRAFT for v in versions),
        "events": events,
        "can_work": can_work_deal(deal, user),
        "user": user,
        "request": context.get("request"),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("contracts/_late_signature.html", takes_context=True)
def late_signature_banner(context, deal):
    """A banner when a version was signed after the deal closed (or after it was withdrawn);
    the team's manager gets the one-step action that turns it into a win."""
    from deals.models import can_manage_deal

    from ..selectors import deal_late_signature

    user = context["user"]
    return {
        "deal": deal,
        "version": deal_late_signature(deal),
        "can_manage": can_manage_deal(deal, user),
        "csrf_token": context.get("csrf_token"),
    }
