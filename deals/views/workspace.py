"""The rep's workspace: My day, accounts, contacts. Thin views over selectors and services."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.views.decorators.http import require_GET

from ..models import Account, Contact
from ..selectors import deals_visible


@require_GET
@login_required
def home(request):
    deals = deals_visible(request.user).open().select_related("account", "owner")[:50]
    return render(request, "deals/home.html", {"deals": deals})


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


urlpatterns = [
    path("accounts/<int:pk>/", account_detail, name="account_detail"),
    path("contacts/<int:pk>/", contact_detail, name="contact_detail"),
]
