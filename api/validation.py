"""Input exactly as the OpenAPI schema describes it: JSON types, money strings, query values.

DRF is lenient on purpose (it reads `"5"` as an integer, `1` as true, `123` as a string,
strips spaces before checking lengths and patterns). A generated client relies on the
schema instead, so the API checks each value's JSON type and raw form *before* the
serializer runs. The same rules (`money_pattern`, `text_pattern`) feed the schema in
api.schema, so what is documented and what is accepted cannot drift apart.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ValidationError


def _space_class() -> str:
    """Every character `str.strip()` removes, as a regex class body that ECMA, Python and
    Rust read alike (`\\s` differs between them: Python's strip also removes \\x1c-\\x1f)."""
    return "".join(f"\\u{ord(c):04x}" for c in map(chr, range(0x10000)) if c.isspace())


#: Text fields: no NUL character (PostgreSQL cannot store it, DRF refuses it) and, when
#: they may not be blank, one character that is not white space (DRF trims, then refuses
#: a blank). A field that may be blank takes any NUL-free text: drf-spectacular documents
#: `""` as a oneOf branch of its own, so this branch must not match "" too.
TEXT_PATTERN_NOT_BLANK = rf"^[^\x00]*[^\x00{_space_class()}][^\x00]*$"
TEXT_PATTERN_BLANK_ALLOWED = r"^[^\x00]+$"
INTEGER_TEXT = re.compile(r"-?[0-9]+")


def text_pattern(field: serializers.CharField) -> str:
    return TEXT_PATTERN_BLANK_ALLOWED if field.allow_blank else TEXT_PATTERN_NOT_BLANK


def money_pattern(field: serializers.DecimalField) -> str:
    """Amounts travel as strings with up to two decimals, as in responses ("1250.50")."""
    whole = (field.max_digits or 20) - (field.decimal_places or 0)
    sign = "" if field.min_value is not None and field.min_value >= 0 else "-?"
    fraction = rf"(\.[0-9]{{1,{field.decimal_places}}})?" if field.decimal_places else ""
    top = field.max_value
    if sign == "" and top is not None and top > 1 and str(int(top)).strip("0") == "1":
        # A power-of-ten bound (a percentage's 100) the pattern can state exactly.
        zeros = rf"(\.0{{1,{field.decimal_places}}})?" if field.decimal_places else ""
        below = len(str(int(top))) - 1
        return rf"^({int(top)}{zeros}|[0-9]{{1,{below}}}{fraction})$"
    return rf"^{sign}[0-9]{{1,{whole}}}{fraction}$"


def _json_type_error(field: serializers.Field, value: Any) -> str | None:
    """Why `value` (parsed JSON) is not the type the schema gives `field`, or None."""
    if value is None:
        return None  # the serializer answers null with its own message (allow_null)
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "Must be true or false."
    if isinstance(field, (serializers.IntegerField, serializers.PrimaryKeyRelatedField)):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "Must be an integer."
    if isinstance(field, serializers.DecimalField):
        ok = isinstance(value, str) and re.fullmatch(money_pattern(field), value)
        return None if ok else 'Must be a string such as "1250.50".'
    if isinstance(field, (serializers.DictField, serializers.Serializer)):
        return None if isinstance(value, dict) else "Must be an object."
    if isinstance(field, serializers.ListField):
        return None if isinstance(value, list) else "Must be a list."
    if isinstance(
        field,
        (
            serializers.CharField,
            serializers.ChoiceField,
            serializers.DateField,
            serializers.DateTimeField,
        ),
    ):
        if not isinstance(value, str):
            return "Must be a string."
        if isinstance(field, serializers.CharField):
            return _text_error(field, value)
    return None


def _text_error(field: serializers.CharField, value: str) -> str | None:
    # Lengths and patterns apply to the text as sent (DRF would check it trimmed).
    if field.max_length is not None and len(value) > field.max_length:
        return f"Ensure this field has no more than {field.max_length} characters."
    if isinstance(field, serializers.RegexField):
        pattern = field.validators[-1].regex if field.validators else None
        # fullmatch: `$` in a Python pattern would also accept a trailing newline.
        if pattern is not None and not pattern.fullmatch(value):
            return "This value does not have the expected format."
    return None


def _errors_for(serializer: serializers.Serializer, data: Any) -> dict:
    if not isinstance(data, dict):
        return {}  # the serializer refuses a non-object body with its own message
    errors: dict[str, Any] = {}
    for name, field in serializer.fields.items():
        if field.read_only or name not in data:
            continue
        message = _json_type_error(field, data[name])
        if message:
            errors[name] = [message]
        elif isinstance(field, serializers.Serializer):
            nested = _errors_for(field, data[name])
            if nested:
                errors[name] = nested
    return errors


def validate_body(serializer_class, request, **kwargs) -> dict:
    """The request's JSON body through `serializer_class`, after the exact type checks."""
    data = request.data
    errors = _errors_for(serializer_class(context={"request": request}, **kwargs), data)
    return _run(serializer_class, data, errors, request, **kwargs)


def _run(serializer_class, data, errors: dict, request, **kwargs) -> dict:
    """Validate what passed the raw checks; report both kinds of error together."""
    if errors:
        data = {name: value for name, value in data.items() if name not in errors}
    serializer = serializer_class(data=data, context={"request": request}, **kwargs)
    if serializer.is_valid() and not errors:
        return serializer.validated_data
    found = dict(serializer.errors)
    if errors:
        # Checks on the whole request ran without the refused fields: not meaningful.
        found.pop("non_field_errors", None)
    raise ValidationError({**found, **errors})


def single_query_values(request, names) -> dict[str, str]:
    """Each named query parameter once: a repeated one is refused, not silently read last."""
    values: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for name in names:
        given = request.query_params.getlist(name)
        if len(given) > 1:
            errors[name] = ["Give this parameter once."]
        elif given:
            values[name] = given[0]
    if errors:
        raise ValidationError(errors)
    return values


def validate_query(serializer_class, request) -> dict:
    """Query parameters through `serializer_class`, with the same raw-text checks as bodies."""
    serializer = serializer_class(context={"request": request})
    data = single_query_values(request, serializer.fields)
    errors: dict[str, list[str]] = {}
    for name, value in data.items():
        field = serializer.fields[name]
        if isinstance(field, serializers.IntegerField) and not INTEGER_TEXT.fullmatch(value):
            errors[name] = ["Must be an integer."]
        elif isinstance(field, serializers.CharField):
            message = _text_error(field, value)
            if message:
                errors[name] = [message]
    return _run(serializer_class, data, errors, request)
