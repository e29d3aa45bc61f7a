"""Forms of the workspace (deals, accounts, contacts, filters): they validate; services write."""

from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext_lazy as _

from .models import (
    Account,
    BillingFrequency,
    Contact,
    Currency,
    Deal,
    DealState,
    User,
    single_line,
    user_display_name,
)
from .selectors import DEAL_LIST_SORTS, accounts_visible, deal_filter_owners
from .templatetags.crm_format import day_text, money_text
from .widgets import options_html

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
#: The largest amount a deal can hold (12 digits before the point, 2 after).
MAX_AMOUNT = 999_999_999_999.99
MONTH = forms.DateInput(attrs={"type": "month"})


def _people(users) -> list[tuple[int, str]]:
    """(id, name as `User.__str__` gives it) for each user, read as plain values: the
    filters and the bulk bar list every person in scope (hundreds for an admin) on every
    page, and building a user object for each is most of their cost."""
    rows = users.values_list("pk", "first_name", "last_name", "username")
    return [(pk, user_display_name(*names)) for pk, *names in rows]


def _owner_filter_choices(user, anyone: str) -> list[tuple[str, str]]:
    return [
        ("", anyone),
        ("me", gettext("Only mine")),
        *[(str(pk), name) for pk, name in _people(deal_filter_owners(user)) if pk != user.pk],
    ]


class UserChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        name = obj.get_full_name() or obj.username
        return f"{name} ({obj.team})" if obj.team_id else name


class DealForm(forms.ModelForm):
    """A deal's details. On creation also its account and owner; never its state.

    The contract review meeting is scheduled from the deal page (follow-ups), which also
    books the rep's meeting task: one way to set it.
    """

    account = forms.ModelChoiceField(
        queryset=Account.objects.none(), empty_label=gettext_lazy("Choose…")
    )
    owner = UserChoiceField(queryset=Deal.owner.field.related_model.objects.none(), required=False)

    class Meta:
        model = Deal
        fields = [
            "title",
            "account",
            "owner",
            "amount",
            "currency",
            "expected_close_date",
            "next_step",
            "next_step_due",
            "term_months",
            "start_date",
            "billing",
            "metrics",
            "identified_pain",
            "decision_criteria",
            "decision_process",
            "competition",
        ]
        widgets = {
            "expected_close_date": DATE,
            "next_step_due": DATE,
            "start_date": DATE,
            "metrics": forms.Textarea(attrs={"rows": 2}),
            "identified_pain": forms.Textarea(attrs={"rows": 2}),
            "decision_criteria": forms.Textarea(attrs={"rows": 2}),
            "decision_process": forms.Textarea(attrs={"rows": 2}),
        }
        labels = {
            "title": gettext_lazy("Deal name"),
            "expected_close_date": gettext_lazy("Expected close"),
            "next_step_due": gettext_lazy("Next step due"),
            "term_months": gettext_lazy("Term (months)"),
        }
        help_texts = {"next_step": gettext_lazy("The one thing that moves this deal forward.")}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["title"].widget.attrs["autofocus"] = True
        for name in ("title", "next_step", "competition"):
            self.fields[name].validators.append(single_line)
        self.fields["currency"].choices = Currency.choices
        self.fields["billing"].choices = BillingFrequency.choices
        if self.instance.pk:
            # Account and owner are fixed once the deal exists.
            del self.fields["account"]
            del self.fields["owner"]
            return
        self.fields["account"].queryset = accounts_visible(user).select_related("team")
        owners = deal_filter_owners(user).filter(team__isnull=False)
        self.fields["owner"].queryset = owners
        if user.is_manager or (user.is_superuser and user.team_id):
            self.fields["owner"].help_text = "Whose deal this is. Empty: yours."
            self.fields["owner"].empty_label = "Me"
        elif user.is_superuser:
            self.fields["owner"].help_text = "Whose deal this is. Empty: the account's owner."
            self.fields["owner"].empty_label = "The account's owner"
        else:
            del self.fields["owner"]
        if user.team_id:
            self.fields["currency"].initial = user.team.currency
        amount = self.fields["amount"]
        amount.error_messages["max_digits"] = (
            f"That is more than the largest amount a deal can hold ({money_text(MAX_AMOUNT)})."
        )
        amount.error_messages["max_whole_digits"] = amount.error_messages["max_digits"]
        amount.error_messages["max_decimal_places"] = "Give at most 2 decimal places (cents)."

    def clean_amount(self):
        amount = self.cleaned_data.get("amount")
        if amount is not None and amount < 0:
            raise forms.ValidationError(gettext("The amount cannot be negative."))
        if amount is not None and not self.instance.pk and amount == 0:
            raise forms.ValidationError(
                gettext(
                    "Enter the amount you expect this deal to bring (more than 0); "
                    "you can change it as the deal takes shape."
                )
            )
        return amount

    def clean(self):
        data = super().clean()
        account, owner = data.get("account"), data.get("owner")
        if account and owner and owner.team_id != account.team_id:
            self.add_error("owner", gettext("The owner must be in the account's team."))
        due, step = data.get("next_step_due"), data.get("next_step")
        if due and not step:
            self.add_error(
                "next_step", gettext("Say what the next step is, since it has a due date.")
            )
        if not self.instance.pk:
            # A new deal plans forward; a past date is almost always a typo (2019 for 2029).
            today = timezone.localdate()
            for field in ("expected_close_date", "next_step_due"):
                value = data.get(field)
                if value and value < today:
                    self.add_error(
                        field,
                        gettext("%(value)s is in the past: a new deal needs today or a later date.")
                        % {"value": day_text(value)},
                    )
        return data

    def past_date_warnings(self) -> list[str]:
        """For an edit: the planning dates that lie in the past (allowed, but said)."""
        today = timezone.localdate()
        labels = {
            "expected_close_date": gettext("The expected close"),
            "next_step_due": gettext("The next step's due date"),
        }
        return [
            f"{label} ({day_text(self.cleaned_data[field])}) is in the past."
            for field, label in labels.items()
            if self.cleaned_data.get(field) and self.cleaned_data[field] < today
        ]

    def _post_clean(self):
        # Only the form's own validation: the services check the business rules and write.
        pass


class AccountForm(forms.Form):
    name = forms.CharField(
        max_length=200, label=gettext_lazy("Account name"), validators=[single_line]
    )
    website = forms.CharField(max_length=200, required=False)
    industry = forms.CharField(max_length=100, required=False)

    def __init__(self, *args, account: Account | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["name"].widget.attrs["autofocus"] = True
        if account is not None:
            self.fields["account_manager"] = UserChoiceField(
                queryset=account.team.members.filter(is_active=True),
                required=False,
                empty_label=gettext("Not assigned"),
                help_text=gettext("Who looks after the customer once a deal is won."),
            )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(gettext("An account needs a name."))
        return name


class ContactForm(forms.Form):
    account = forms.ModelChoiceField(
        queryset=Account.objects.none(), empty_label=gettext_lazy("Choose…")
    )
    first_name = forms.CharField(max_length=100, required=False, validators=[single_line])
    last_name = forms.CharField(max_length=100, required=False, validators=[single_line])
    email = forms.EmailField(required=False)
    phone = forms.CharField(max_length=50, required=False, validators=[single_line])
    job_title = forms.CharField(max_length=120, required=False, validators=[single_line])

    def __init__(self, *args, user, contact: Contact | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if contact is not None:
            del self.fields["account"]
        else:
            self.fields["account"].queryset = accounts_visible(user)
        self.fields["first_name"].widget.attrs["autofocus"] = True

    def clean(self):
        data = super().clean()
        if not (data.get("first_name", "").strip() or data.get("last_name", "").strip()):
            raise forms.ValidationError(gettext("A contact needs a first or a last name."))
        return data


class DealFilterForm(forms.Form):
    """The deal list's filters; invalid values are simply ignored by the selector."""

    q = forms.CharField(required=False, label=gettext_lazy("Search deals"))
    state = forms.ChoiceField(required=False)
    owner = forms.ChoiceField(required=False)
    close = forms.CharField(required=False, label=gettext_lazy("Closing in"), widget=MONTH)
    sort = forms.ChoiceField(
        required=False, choices=[(k, v[0]) for k, v in DEAL_LIST_SORTS.items()]
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["state"].choices = [
            ("", gettext("Any state")),
            ("open", gettext("All open")),
            ("closed", gettext("All closed")),
            *[(s, DealState(s).label) for s in DealState.values],
        ]
        self.fields["owner"].choices = _owner_filter_choices(user, gettext("Anyone"))


class BoardFilterForm(forms.Form):
    owner = forms.ChoiceField(required=False)
    team = forms.ChoiceField(required=False)
    close = forms.CharField(required=False, label=gettext_lazy("Closing in"), widget=MONTH)

    def __init__(self, *args, user, teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = _owner_filter_choices(user, gettext("Everyone I can see"))
        if user.is_superuser:
            self.fields["team"].choices = [
                ("", gettext("All teams")),
                *[(str(t.pk), t.name) for t in teams],
            ]
        else:
            del self.fields["team"]


class BulkActionForm(forms.Form):
    """The deal list's bulk bar: which deals (ticked, or all matching the filters), what to do,
    and the inputs that action needs, given once for the whole batch. The services check the
    inputs and each deal; this form only reads them."""

    deal = forms.TypedMultipleChoiceField(coerce=int, choices=[], required=False)
    all_matching = forms.BooleanField(required=False)
    action = forms.ChoiceField(label=_("Action"), choices=[])
    new_owner = forms.ModelChoiceField(
        label=_("New owner"), queryset=User.objects.none(), required=False
    )
    loss_reason = forms.ChoiceField(label=_("Loss reason"), required=False)
    reason = forms.CharField(label=_("Reason"), max_length=2000, required=False)
    move_account = forms.BooleanField(label=_("Accounts too"), required=False)
    query = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, user, **kwargs):
        from .models import BulkJob, LossReason
        from .services import _transition_label, bulk_transition_names

        super().__init__(*args, **kwargs)
        self.user = user
        self.can_reassign = user.is_superuser or (user.is_manager and bool(user.team_id))
        moves = [
            (f"move:{name}", _("Move: %(move)s") % {"move": _transition_label(name)})
            for name in bulk_transition_names(user)
        ]
        choices = [("", _("Choose an action…"))]
        if self.can_reassign:
            choices.append((BulkJob.Action.REASSIGN, _("Reassign to…")))
        choices += [*moves, (BulkJob.Action.ARCHIVE, _("Archive")), ("export", _("Export CSV"))]
        self.fields["action"].choices = choices
        self.fields["action"].error_messages["required"] = _("Choose what to do first.")
        self.fields["loss_reason"].choices = [("", _("Loss reason…")), *LossReason.choices]
        if self.can_reassign:
            owners = User.objects.filter(is_active=True, team__isnull=False).select_related("team")
            if not user.is_superuser:
                owners = owners.filter(team_id=user.team_id)
            self.fields["new_owner"].queryset = owners.order_by("first_name", "username")
            self.fields["new_owner"].empty_label = _("New owner…")
        else:
            del self.fields["new_owner"]
            del self.fields["move_account"]
        if self.data:
            values = self.data.getlist("deal") if hasattr(self.data, "getlist") else []
            self.fields["deal"].choices = [(v, v) for v in values if str(v).isdigit()]

    @cached_property
    def new_owner_options(self) -> str:
        """The <option>s of the bulk bar's "New owner" menu: the field's choices (the empty
        label first), written from plain values rather than one user object each."""
        field = self.fields["new_owner"]
        return options_html([("", field.empty_label), *_people(field.queryset)])

    def clean(self):
        data = super().clean()
        if not data.get("all_matching") and not data.get("deal"):
            raise forms.ValidationError(_("Tick the deals first (or choose all matching)."))
        action = data.get("action", "")
        data["transition"] = ""
        if action.startswith("move:"):
            data["transition"] = action.split(":", 1)[1]
            data["action"] = "transition"
        return data
