"""The quotas page: a manager sets the team's quotas per rep, period and currency.

Thin view: `deals.services.quota_set` writes (with the history line), `deals.selectors`
reads; the CSV import of quotas is the import page's "Quotas" kind.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from .. import services
from ..models import Currency, QuotaChange, quota_period_label
from ..selectors import (
    quota_history,
    quota_period_choices,
    quota_reps,
    quota_teams_for,
    quotas_of_period,
)
from ..services import DealError


class QuotaForm(forms.Form):
    rep = forms.ChoiceField(label=gettext_lazy("Rep"))
    period = forms.ChoiceField(label=gettext_lazy("Period"))
    currency = forms.ChoiceField(label=gettext_lazy("Currency"), choices=Currency.choices)
    amount = forms.DecimalField(
        label=gettext_lazy("Quota"),
        min_value=0,
        max_digits=14,
        decimal_places=2,
        help_text=gettext_lazy("What the rep is expected to win in the period, in the currency."),
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason (optional)"),
        required=False,
        max_length=500,
        help_text=gettext_lazy("Kept in the quota history with your name and the time."),
    )

    def __init__(self, *args, reps, periods, **kwargs):
        super().__init__(*args, **kwargs)
        self.reps = {str(r.pk): r for r in reps}
        self.fields["rep"].choices = [(str(r.pk), str(r)) for r in reps]
        self.fields["period"].choices = periods


def _team(request: HttpRequest):
    teams = quota_teams_for(request.user)
    if not teams:
        raise PermissionDenied(_("Only managers and admins set quotas."))
    wanted = request.GET.get("team") or request.POST.get("team")
    if wanted:
        team = next((t for t in teams if str(t.pk) == wanted), None)
        if team is None:
            raise Http404(_("No such team."))
        return team, teams
    own = next((t for t in teams if t.pk == request.user.team_id), None)
    return own or teams[0], teams


@require_http_methods(["GET", "POST"])
@login_required
def quotas(request: HttpRequest) -> HttpResponse:
    team, teams = _team(request)
    today = timezone.localdate()
    periods = quota_period_choices(today)
    period_key = request.GET.get("period") or periods[1][0]  # this quarter
    try:
        kind, start = services.quota_period_from_text(period_key)
    except DealError:
        raise Http404(_("No such period.")) from None
    if period_key not in dict(periods):
        periods = [(period_key, quota_period_label(kind, start)), *periods]
    reps = quota_reps(team)
    form = QuotaForm(
        request.POST or None,
        reps=reps,
        periods=periods,
        initial={"period": period_key, "currency": team.currency},
    )
    error = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        kind_set, start_set = services.quota_period_from_text(data["period"])
        try:
            quota, changed = services.quota_set(
                by=request.user,
                rep=form.reps[data["rep"]],
                period_kind=kind_set,
                period_start=start_set,
                currency=data["currency"],
                amount=data["amount"],
                source=QuotaChange.Source.PAGE,
                reason=data["reason"],
            )
        except DealError as problem:
            error = problem.message
        else:
            if changed:
                messages.success(
                    request,
                    _("Quota set: %(rep)s, %(period)s, %(amount)s %(currency)s.")
                    % {
                        "rep": quota.rep,
                        "period": quota.period_label,
                        "amount": f"{quota.amount:,.2f}".removesuffix(".00"),
                        "currency": quota.currency,
                    },
                )
            else:
                messages.info(request, _("That quota already had this amount: nothing changed."))
            query = {"period": quota.period_key}
            if request.user.is_superuser:
                query["team"] = team.pk
            return redirect(reverse("deals:quotas") + "?" + urlencode(query))
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "deals/quotas.html",
        {
            "team": team,
            "teams": teams,
            "periods": periods,
            "period_key": period_key,
            "period_label": quota_period_label(kind, start),
            "quotas": quotas_of_period(team, kind, start),
            "history": quota_history(team),
            "form": form,
            "error": error,
            "reps_count": len(reps),
        },
        status=status,
    )


urlpatterns = [
    path("quotas/", quotas, name="quotas"),
]
