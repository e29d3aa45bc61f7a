"""The deal page and everything a rep does on it. Thin views over selectors and services."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from ..selectors import deal_get_visible, state_graph_mermaid


@require_GET
@login_required
def deal_detail(request, pk: int):
    deal = deal_get_visible(request.user, pk)
    events = deal.events.select_related("actor")[:100]
    return render(request, "deals/deal_detail.html", {"deal": deal, "events": events})


@require_GET
@login_required
def state_machine(request):
    return render(request, "deals/state_machine.html", {"mermaid": state_graph_mermaid()})


urlpatterns = [
    path("deals/<int:pk>/", deal_detail, name="deal_detail"),
    path("state-machine/", state_machine, name="state_machine"),
]
