"""Form widget helpers for long lists of options on pages that are rendered all day.

Every `<select>` of a form is already written in Python by the project's form renderer
(closing_crm/form_renderer.py); this is for options a template lays out itself.
"""

from __future__ import annotations

from django.utils.html import conditional_escape as escape
from django.utils.safestring import mark_safe


def options_html(choices, selected=None) -> str:
    """`<option>`s for (value, label) pairs, escaped; the one whose value is `selected`
    (compared as text) is selected (safe HTML)."""
    chosen = None if selected is None else str(selected)
    return mark_safe(  # noqa: S308 - values and labels are escaped
        "".join(
            f'<option value="{escape(value)}"{" selected" if str(value) == chosen else ""}>'
            f"{escape(label)}</option>"
            for value, label in choices
        )
    )
