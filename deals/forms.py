"""Forms of the deal page: they validate input; the services make the change."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext, gettext_lazy

from .models import (
    READINESS_ITEMS,
    TECHNIQUE_GUIDES,
    Ask,
    BillingFrequency,
    BuyingSignal,
    Channel,
    ClosingTechnique,
    Contact,
    DealState,
    LossReason,
    Objection,
    Stakeholder,
    User,
    single_line,
)

#: Transitions whose form asks for more than a confirmation.
REASON_REQUIRED = {
    "mark_lost": gettext_lazy("Note for the record"),
    "override_won": gettext_lazy("Why is this deal won without a completed signature?"),
    "reopen": gettext_lazy("Why is the deal reopened?"),
}


class PanelForm(forms.Form):
    """Field ids are prefixed per form: the deal page shows many forms at once."""

    id_prefix = "f"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", f"{self.id_prefix}-%s")
        super().__init__(*args, **kwargs)


class TransitionForm(PanelForm):
    """One move of the state machine; `expected_state` is the state the user saw."""

    id_prefix = "move"
    expected_state = forms.ChoiceField(choices=DealState.choices, widget=forms.HiddenInput)
    loss_reason = forms.ChoiceField(
        label=gettext_lazy("Loss reason"),
        choices=[("", gettext_lazy("Choose a reason…")), *LossReason.choices],
        required=False,
    )
    reason = forms.CharField(
        label=gettext_lazy("Note (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, transition: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.transition = transition
        if transition == "mark_lost":
            self.fields["loss_reason"].required = True
            self.fields["loss_reason"].error_messages["required"] = gettext(
                "Choose a loss reason before closing the deal as lost."
            )
            self.fields["reason"].label = REASON_REQUIRED["mark_lost"]
            self.fields["reason"].help_text = gettext(
                "What happened, in a sentence or two (optional)."
            )
        else:
            del self.fields["loss_reason"]
        if transition in ("override_won", "reopen"):
            self.fields["reason"].required = True
            self.fields["reason"].label = REASON_REQUIRED[transition]
            self.fields["reason"].error_messages["required"] = gettext(
                "Write the reason: it is kept in the deal's history."
            )

    @property
    def needs_input(self) -> bool:
        return self.transition in REASON_REQUIRED

    def clean_reason(self) -> str:
        reason = self.cleaned_data.get("reason", "").strip()
        if self.fields["reason"].required and not reason:
            raise forms.ValidationError(
                gettext("Write the reason: it is kept in the deal's history.")
            )
        return reason


class BuyingSignalForm(PanelForm):
    id_prefix = "signal"

    kind = forms.ChoiceField(
        label=gettext_lazy("What did you notice?"), choices=BuyingSignal.Kind.choices
    )
    channel = forms.ChoiceField(choices=Channel.choices, initial=Channel.CALL)
    note = forms.CharField(
        label=gettext_lazy("The buyer's words"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "“How fast could we start?”"}),
        error_messages={"required": "Write down what the buyer said or did."},
    )


class ReadinessForm(PanelForm):
    """The six readiness items; unticked boxes are simply absent from the POST."""

    id_prefix = "readiness"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field, label in READINESS_ITEMS:
            self.fields[field] = forms.BooleanField(label=label, required=False)


class TechniqueForm(PanelForm):
    id_prefix = "technique"

    technique = forms.ChoiceField(
        label=gettext_lazy("Closing technique"),
        choices=[("", gettext_lazy("No technique chosen")), *ClosingTechnique.choices],
        required=False,
    )


class AskForm(PanelForm):
    """An ask for the sale; a “not yet” must come with the objection behind it."""

    id_prefix = "ask"

    channel = forms.ChoiceField(choices=Channel.choices, initial=Channel.CALL)
    technique = forms.ChoiceField(
        label=gettext_lazy("Technique used"),
        choices=[("", gettext_lazy("The deal's technique")), *ClosingTechnique.choices],
        required=False,
    )
    statement = forms.CharField(
        label=gettext_lazy("How you asked"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "“Shall we start on the 1st?”"}),
        error_messages={"required": "Write down how you asked."},
    )
    answer = forms.ChoiceField(
        label=gettext_lazy("The buyer's answer"),
        choices=Ask.Answer.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Record the buyer's answer: yes, not yet or no."},
    )
    objection_category = forms.ChoiceField(
        label=gettext_lazy("Objection"),
        choices=[("", gettext_lazy("Choose a category…")), *Objection.Category.choices],
        required=False,
    )
    objection_detail = forms.CharField(
        label=gettext_lazy("What is holding them back?"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    objection_is_stall = forms.BooleanField(
        label=gettext_lazy("It is a stall (delays the decision), not a real objection"),
        required=False,
    )
    expected_state = forms.ChoiceField(
        choices=DealState.choices, widget=forms.HiddenInput, required=False
    )

    def clean(self):
        data = super().clean()
        if data.get("answer") == Ask.Answer.NOT_YET:
            if not data.get("objection_category"):
                self.add_error(
                    "objection_category", gettext("A “not yet” needs the objection's category.")
                )
            if not data.get("objection_detail", "").strip():
                self.add_error(
                    "objection_detail",
                    gettext(
                        "A “not yet” comes with an objection: write down what is holding them back."
                    ),
                )
        return data

    def objection(self) -> dict | None:
        data = self.cleaned_data
        if data["answer"] != Ask.Answer.NOT_YET:
            return None
        return {
            "category": data["objection_category"],
            "detail": data["objection_detail"],
            "is_stall": data["objection_is_stall"],
        }


class ObjectionForm(PanelForm):
    id_prefix = "objection"

    category = forms.ChoiceField(choices=Objection.Category.choices)
    detail = forms.CharField(
        label=gettext_lazy("In the buyer's words"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Describe the objection in the buyer's words."},
    )
    is_stall = forms.BooleanField(
        label=gettext_lazy("It is a stall, not a real objection"), required=False
    )


class ObjectionResolveForm(PanelForm):
    id_prefix = "resolve"

    OUTCOMES = [
        ("resolved", gettext_lazy("Resolved")),
        ("accepted_loss", gettext_lazy("Accepted loss (we cannot meet it)")),
    ]

    outcome = forms.ChoiceField(choices=OUTCOMES, initial="resolved")
    resolution = forms.CharField(
        label=gettext_lazy("How was it settled?"),
        max_length=2000,
        error_messages={"required": "Say how the objection was resolved."},
    )


class ConcessionForm(PanelForm):
    id_prefix = "concession"

    give = forms.CharField(label=gettext_lazy("We give"), max_length=200, validators=[single_line])
    get = forms.CharField(
        label=gettext_lazy("We get in return"), max_length=200, validators=[single_line]
    )
    # How the deal's terms change if the buyer accepts (blank: unchanged).
    new_amount = forms.DecimalField(
        label=gettext_lazy("New amount"),
        required=False,
        min_value=0,
        max_digits=14,
        decimal_places=2,
    )
    new_discount_percent = forms.DecimalField(
        label=gettext_lazy("New discount (%)"),
        required=False,
        min_value=0,
        max_value=100,
        decimal_places=2,
    )
    new_term_months = forms.IntegerField(
        label=gettext_lazy("New term (months)"), required=False, min_value=1
    )
    new_billing = forms.ChoiceField(
        label=gettext_lazy("New billing period"),
        required=False,
        choices=[("", gettext_lazy("Unchanged")), *BillingFrequency.choices],
    )
    new_start_date = forms.DateField(
        label=gettext_lazy("New start date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    TERM_FIELDS = (
        "new_amount",
        "new_discount_percent",
        "new_term_months",
        "new_billing",
        "new_start_date",
    )

    def clean(self):
        data = super().clean()
        if not data.get("give", "").strip() or not data.get("get", "").strip():
            raise forms.ValidationError(
                gettext("A concession is a give-get pair: say what you give and what you get.")
            )
        return data


class ConcessionDecideForm(PanelForm):
    id_prefix = "decide"

    decision = forms.ChoiceField(
        choices=[("accept", gettext_lazy("Accept")), ("reject", gettext_lazy("Reject"))]
    )


class StakeholderForm(PanelForm):
    """Add a contact of the deal's account to the buying group, or a new contact inline."""

    id_prefix = "stakeholder"

    contact = forms.ModelChoiceField(
        queryset=Contact.objects.none(), required=False, empty_label=gettext_lazy("New contact…")
    )
    first_name = forms.CharField(required=False, max_length=100, validators=[single_line])
    last_name = forms.CharField(required=False, max_length=100, validators=[single_line])
    email = forms.EmailField(required=False)
    job_title = forms.CharField(required=False, max_length=120, validators=[single_line])
    role = forms.ChoiceField(choices=Stakeholder.Role.choices)
    note = forms.CharField(required=False, max_length=200)

    def __init__(self, *args, account, contacts=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contact"].queryset = Contact.objects.active().filter(account=account)
        if contacts is not None:
            # Reuse the list the page already loaded (no extra query to render the choices).
            self.fields["contact"].choices = [
                ("", gettext("New contact…")),
                *(
                    (c.pk, f"{c.full_name}{f' · {c.job_title}' if c.job_title else ''}")
                    for c in contacts
                ),
            ]

    def clean(self):
        data = super().clean()
        if not data.get("contact") and not (
            data.get("first_name", "").strip() or data.get("last_name", "").strip()
        ):
            raise forms.ValidationError(
                gettext("Pick a contact of the account, or name a new one.")
            )
        return data


class NextStepForm(PanelForm):
    id_prefix = "nextstep"

    next_step = forms.CharField(
        label=gettext_lazy("Next step"), max_length=200, required=False, validators=[single_line]
    )
    next_step_due = forms.DateField(
        label=gettext_lazy("Due"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    expected_close_date = forms.DateField(
        label=gettext_lazy("Expected close"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("next_step_due") and not data.get("next_step", "").strip():
            self.add_error(
                "next_step", gettext("Say what the next step is before giving it a date.")
            )
        return data


class NoteForm(PanelForm):
    id_prefix = "note"

    text = forms.CharField(
        label=gettext_lazy("Note"),
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "The note is empty."},
    )


class ReassignForm(PanelForm):
    """Hand a deal to another active member of its team (the manager's "Change owner")."""

    id_prefix = "owner"

    new_owner = forms.ModelChoiceField(
        label=gettext_lazy("New owner"),
        queryset=User.objects.none(),
        empty_label=gettext_lazy("Choose a teammate…"),
        error_messages={
            "required": "Choose who takes the deal over.",
            "invalid_choice": "Choose an active member of the deal's team.",
        },
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("Kept in the deal's timeline."),
        error_messages={"required": "Say why the deal changes hands."},
    )
    move_account = forms.BooleanField(
        label=gettext_lazy("Hand over the account too"), required=False
    )
    expected_owner = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, deal, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("expected_owner", deal.owner_id)
        super().__init__(*args, **kwargs)
        self.fields["new_owner"].queryset = User.objects.filter(
            team_id=deal.team_id, is_active=True
        ).exclude(pk=deal.owner_id)
        self.fields["move_account"].help_text = f"{deal.account} is owned by {deal.account.owner}."


class FollowOnForm(PanelForm):
    id_prefix = "followon"

    title = forms.CharField(
        label=gettext_lazy("Follow-on deal"), max_length=200, validators=[single_line]
    )
    need = forms.CharField(
        label=gettext_lazy("Need found during the sale"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    amount = forms.DecimalField(
        label=gettext_lazy("Estimated amount"),
        min_value=0,
        max_digits=14,
        decimal_places=2,
        initial=0,
        error_messages={
            "max_digits": "That is more than the largest amount a deal can hold "
            "(999,999,999,999.99).",
            "max_whole_digits": "That is more than the largest amount a deal can hold "
            "(999,999,999,999.99).",
            "max_decimal_places": "Give at most 2 decimal places (cents).",
        },
    )


def technique_guides() -> list[tuple[str, str, str]]:
    """(value, label, one-line guide) for every closing technique."""
    return [(t.value, t.label, TECHNIQUE_GUIDES[t]) for t in ClosingTechnique]
