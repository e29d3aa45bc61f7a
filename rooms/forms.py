"""The rep's inline edit of a close-plan step (the deal page's plan panel)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import PlanStep, Side


def owner_choices(step: PlanStep, *, team_members, group_contacts) -> list[tuple[str, str]]:
    """Who may own this step: the deal's team for a seller step, its buying group for a
    buyer step ("u<id>" / "c<id>", the values the panel's other owner pickers use)."""
    if step.side == Side.SELLER:
        return [(f"u{u.pk}", str(u)) for u in team_members]
    return [(f"c{c.pk}", str(c)) for c in group_contacts]


class StepEditForm(forms.Form):
    version = forms.CharField(widget=forms.HiddenInput, max_length=64)
    title = forms.CharField(label=_("Title"), max_length=200)
    owner = forms.ChoiceField(label=_("Owner"), required=False)
    due_date = forms.DateField(
        label=_("Due date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    note = forms.CharField(
        label=_("Note (only your team sees it)"),
        required=False,
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, owners: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = [("", _("Nobody yet")), *owners]

    @classmethod
    def for_step(cls, step: PlanStep, *, owners, data=None) -> StepEditForm:
        owner = (
            f"u{step.owner_user_id}"
            if step.owner_user_id
            else f"c{step.owner_contact_id}"
            if step.owner_contact_id
            else ""
        )
        initial = {
            "version": step.version,
            "title": step.title,
            "owner": owner,
            "due_date": step.due_date,
            "note": step.note,
        }
        return cls(data, initial=initial, owners=owners, prefix=f"step{step.pk}")
