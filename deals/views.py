"""Deal pages. Views are thin: they read through selectors and write through services."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from .models import Account, Contact
from .selectors import deal_get_visible, deals_visible, state_graph_mermaid


@require_GET
@login_required
def home(request):
    deals = deals_visible(request.user).open().select_related("account", "owner")[:50]
    return render(request, "deals/home.html", {"deals": deals})


@require_GET
@login_required
def deal_detail(request, pk: int):
    deal = deal_get_visible(request.user, pk)
    events = deal.events.select_related("actor")[:100]
    return render(request, "deals/deal_detail.html", {"deal": deal, "events": events})


@require_GET
@login_required
def account_detail(request, pk: int):
    visible_accounts = Account.objects.filter(deals__in=deals_visible(request.user)).distinct()
    account = get_object_or_404(visible_accounts, pk=pk)
    return render(request, "deals/account_detail.html", {"account": account})


@require_GET
@login_required
def contact_detail(request, pk: int):
    visible = Contact.objects.filter(account__deals__in=deals_visible(request.user)).distinct()
    contact = get_object_or_404(visible.select_related("account"), pk=pk)
    return render(request, "deals/contact_detail.html", {"contact": contact})


@require_GET
@login_required
def state_machine(request):
    return render(request, "deals/state_machine.html", {"mermaid": state_graph_mermaid()})
