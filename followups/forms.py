"""Forms of the follow-up panel: snoozing a reminder, scheduling the review meeting."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from deals.models import Contact, Deal

SNOOZE_CHOICES = [
    ("1", gettext_lazy("1 day")),
    ("3", gettext_lazy("3 days")),
    ("7", gettext_lazy("1 week")),
    ("14", gettext_lazy("2 weeks")),
]


class SnoozeForm(forms.Form):
    days = forms.TypedChoiceField(
        choices=SNOOZE_CHOICES, coerce=int, label=gettext_lazy("Snooze for")
    )


class ReviewMeetingForm(forms.Form):
    """Times are entered in the rep's own time zone."""

    starts_at = forms.DateTimeField(
        label=gettext_lazy("Date and time"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )
    duration_minutes = forms.TypedChoiceField(
        label=gettext_lazy("Length"),
        coerce=int,
        initial=45,
        choices=[
            (30, gettext_lazy("30 minutes")),
            (45, gettext_lazy("45 minutes")),
            (60, gettext_lazy("1 hour")),
            (90, gettext_lazy("1½ hours")),
        ],
    )
    attendees = forms.ModelMultipleChoiceField(
        queryset=Contact.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        label=gettext_lazy("Attendees from the buying group"),
        error_messages={"required": "Invite at least one person from the buying group."},
    )
    location = forms.CharField(
        required=False,
        max_length=200,
        help_text=gettext_lazy("A room, an address or a video link."),
    )
    agenda = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, deal: Deal, zone, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = zone
        self.fields["attendees"].queryset = Contact.objects.filter(
            stakeholder_roles__deal=deal, archived_at__isnull=True
        ).distinct()
        self.fields["attendees"].label_from_instance = lambda c: (
            f"{c.full_name} ({c.email})" if c.email else f"{c.full_name} (no email)"
        )

    def clean_starts_at(self):
        value = self.cleaned_data["starts_at"]
        # The browser sends a wall-clock time; it is the rep's, not the server's.
        naive = value.replace(tzinfo=None) if timezone.is_aware(value) else value
        aware = naive.replace(tzinfo=self.zone)
        if aware <= timezone.now() + dt.timedelta(minutes=5):
            raise forms.ValidationError(gettext("Pick a time in the future."))
        return aware


class DealEmailForm(forms.Form):
    """The rep's email to one buying-group contact (templates over the deal's fields)."""

    contact = forms.ModelChoiceField(queryset=None, label=gettext_lazy("To"), empty_label=None)
    subject = forms.CharField(max_length=200)
    body = forms.CharField(
        label=gettext_lazy("Message"),
        widget=forms.Textarea(attrs={"rows": 12}),
        max_length=20000,
        help_text=(
            gettext_lazy(
                "You can use {{ contact.first_name }}, {{ deal.title }}, {{ deal.amount }}, "
                "{{ deal.currency }}, {{ account.name }} and {{ rep.first_name }}."
            )
        ),
    )

    def __init__(self, *args, recipients, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contact"].queryset = Contact.objects.filter(pk__in=[c.pk for c in recipients])
        self.fields["contact"].label_from_instance = lambda c: f"{c.full_name} <{c.email}>"
