"""The Python-rendered widgets write exactly the HTML of Django's widget templates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.utils import translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from closing_crm.form_renderer import FormRenderer
from deals.forms import AskForm, BuyingSignalForm, ConcessionForm, NextStepForm, StakeholderForm

CHOICES = [
    ("", "---------"),
    ("a", "Plain"),
    ("b&c", "Tom & <Jerry> “quoted”"),
    (3, 1234),
    ("lazy", gettext_lazy("Call")),
    ("safe", mark_safe("<b>bold</b>")),
    ("Group", [("g1", "In a group"), ("g2", gettext_lazy("Email"))]),
]


class Everything(forms.Form):
    plain = forms.ChoiceField(choices=CHOICES)
    chosen = forms.ChoiceField(choices=CHOICES, initial="b&c")
    many = forms.MultipleChoiceField(choices=CHOICES, initial=["a", "g1"])
    attrs = forms.ChoiceField(
        choices=CHOICES,
        widget=forms.Select(
            attrs={"class": "x", "hx-get": "/u?a=1&b=2", "disabled": True, "data-off": False}
        ),
    )
    text = forms.CharField(initial='He said "hi" & left', widget=forms.TextInput({"size": 4}))
    empty = forms.CharField(required=False)
    number = forms.DecimalField(initial=Decimal("1234.50"))
    integer = forms.IntegerField(initial=1234567)
    day = forms.DateField(initial=dt.date(2026, 12, 24), widget=forms.DateInput({"type": "date"}))
    moment = forms.DateTimeField(initial=dt.datetime(2026, 12, 24, 18, 30))
    hidden = forms.CharField(initial="<h>", widget=forms.HiddenInput)
    check = forms.BooleanField(initial=True)
    unchecked = forms.BooleanField(required=False)
    email = forms.EmailField(initial="a&b@example.com")
    url = forms.URLField(initial="https://example.com/?a=1&b=2")
    password = forms.CharField(widget=forms.PasswordInput(render_value=True), initial="pw")


def rendered(form_class, renderer, **kwargs) -> list[str]:
    form = form_class(renderer=renderer, **kwargs)
    return [str(field) for field in form]


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("bound", [False, True])
def test_select_and_input_widgets_match_the_templates(language, bound):
    """Every select (groups, selected, multiple, escaping, lazy and safe labels) and input
    (values, localized numbers and dates, booleans as attributes) is byte for byte Django's."""
    data = {"plain": "b&c", "many": ["3", "g2"], "text": "<script>", "number": "1,5"}
    kwargs = {"data": data} if bound else {}
    with translation.override(language):
        ours = rendered(Everything, FormRenderer(), **kwargs)
        django = rendered(Everything, DjangoTemplates(), **kwargs)
    assert ours == django
    assert any("<optgroup" in html for html in ours)


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "de"])
def test_the_deal_page_forms_match_the_templates(language, deal):
    """The forms of the deal page render the same as with Django's templates."""
    forms_ = [
        (AskForm, {"initial": {"expected_state": deal.state}}),
        (BuyingSignalForm, {}),
        (ConcessionForm, {}),
        (NextStepForm, {"initial": {"next_step_due": dt.date(2026, 1, 2)}}),
        (StakeholderForm, {"account": deal.account}),
    ]
    with translation.override(language):
        for form_class, kwargs in forms_:
            ours = rendered(form_class, FormRenderer(), **kwargs)
            assert ours == rendered(form_class, DjangoTemplates(), **kwargs), form_class
