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
        link = ""
        if version.provider == "builtin" and version.is_out and version.envelope_id:
            link = signing_url(version)
        rows.append({"v": version, "link": link})
    events = DealEvent.objects.filter(deal=deal, kind=DealEvent.Kind.CONTRACT).select_related(
        "actor"
    )[:8]
    from ..documents import deal_signer

    signer = deal_signer(deal) if deal.is_open else None
    candidates = []
    if signer is None and deal.is_open:
        candidates = list(deal.account.contacts.active().exclude(email="").order_by("last_name"))
    return {
        "deal": deal,
        "signer": signer,
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
