"""Template tags that put contract information on other apps' pages."""

from django import template

register = template.Library()


@register.inclusion_tag("contracts/_deal_panel.html", takes_context=True)
def contract_panel(context, deal):
    """The contract versions panel of the deal page."""
    return {"deal": deal, "versions": deal.contract_versions.all(), "user": context["user"],
            "request": context.get("request")}
