"""The OpenAPI schema, made to say exactly what the API accepts and answers.

drf-spectacular derives the schema from the views and serializers; this AutoSchema adds
what it cannot know on its own, so that a generated client works (and schemathesis,
run with every check in tests/api/test_fuzz.py, finds nothing to report):

- every operation lists the error statuses it can answer, each with the one `Error`
  body (api.exceptions): 401/403/429 always, 404 where something is looked up,
  400 where there is input, 409 for writes, 415 where there is a body;
- request text fields carry the pattern the API enforces (no NUL, not only spaces),
  and amounts the exact money pattern (api.validation: the same functions check input);
- read-only fields that may be blank or null in the database say so (`""` next to an
  enum, `null` for an absent actor), instead of promising a value that is not there;
- serializers that refuse unknown fields say `additionalProperties: false`, and a
  serializer's `min_properties` becomes `minProperties`.
"""

from __future__ import annotations

import copy

from django.core.exceptions import FieldDoesNotExist
from django.core.validators import RegexValidator
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from .validation import money_pattern, text_pattern

ERROR_RESPONSES = {
    "400": "The request does not match this schema; `fields` says where.",
    "401": "No credentials, or credentials that are not valid.",
    "403": "You may not do this.",
    "404": "Not found, or not yours to see (also an id in the body that you cannot see).",
    "409": "Well-formed, but refused by the deal's rules in its current state.",
    "415": "The body is not JSON (send `Content-Type: application/json`).",
    "429": "Too many requests: wait the `Retry-After` seconds, then retry.",
}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class ApiAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        # Errors are described here, once, for every operation: whatever a view
        # declared for a 4xx is replaced by the one Error body.
        for code in [code for code in responses if code.startswith("4")]:
            del responses[code]
        error = self.resolve_serializer(self._error_serializer(), "response").ref
        for code in self._error_codes():
            response = {
                "description": ERROR_RESPONSES[code],
                "content": {"application/json": {"schema": error}},
            }
            if code == "429":
                response["headers"] = {
                    "Retry-After": {
                        "schema": {"type": "integer"},
                        "description": "Seconds to wait before the next request.",
                    }
                }
            responses[code] = response
        return dict(sorted(responses.items()))

    def _error_serializer(self):
        # Imported late: this module is loaded through settings, before the models are.
        from .serializers import ErrorSerializer

        return ErrorSerializer

    def _error_codes(self) -> list[str]:
        has_body = self.method in WRITE_METHODS and self.get_request_serializer() is not None
        has_query = self._is_list_view() or bool(
            [p for p in self._get_parameters() if p.get("in") == "query"]
        )
        looks_up = "{" in self.path or self._is_list_view() or has_body
        codes = ["401", "403", "429"]
        if has_body or has_query:
            codes.append("400")
        if looks_up:
            codes.append("404")
        if self.method in WRITE_METHODS:
            codes.append("409")
        if has_body:
            codes.append("415")
        return sorted(codes)

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        if direction == "response" and field.read_only:
            field = _as_stored(field)
        return super()._map_serializer_field(field, direction, bypass_extensions)

    def _map_basic_serializer(self, serializer, direction):
        # _insert_field_validators is not told the direction: remember it (nested
        # serializers are mapped in between, hence the restore).
        outer, self._direction = getattr(self, "_direction", None), direction
        try:
            schema = super()._map_basic_serializer(serializer, direction)
        finally:
            self._direction = outer
        if direction == "request":
            if getattr(serializer, "refuses_unknown_fields", False):
                schema["additionalProperties"] = False
            min_properties = getattr(serializer, "min_properties", None)
            if min_properties:
                schema["minProperties"] = min_properties
        return schema

    def _get_request_body(self, direction="request"):
        body = super()._get_request_body(direction)
        # A body that needs at least one property cannot be left out either.
        if body and getattr(self.get_request_serializer(), "min_properties", None):
            body["required"] = True
        return body

    def _insert_field_validators(self, field, schema):
        direction = getattr(self, "_direction", None)
        if direction == "response" and field.read_only:
            field = _as_stored(field)
        elif direction == "request" and not field.read_only:
            _insert_input_rules(field, schema)
        super()._insert_field_validators(field, schema)


def _insert_input_rules(field, schema) -> None:
    """The checks api.validation makes on input, as schema keywords."""
    if isinstance(field, serializers.DecimalField):
        schema.update(type="string", pattern=money_pattern(field))
        schema.pop("format", None)
    elif (
        isinstance(field, serializers.CharField)
        and schema.get("type") == "string"
        and not {"pattern", "format", "enum"} & schema.keys()
        and not any(isinstance(v, RegexValidator) for v in field.validators)
    ):
        schema["pattern"] = text_pattern(field)


def _as_stored(field):
    """A read-only field, allowing blank and null where its model field does."""
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    if model is None or not field.source or "." in field.source or field.source == "*":
        return field
    try:
        model_field = model._meta.get_field(field.source)
    except FieldDoesNotExist:
        return field
    blank = model_field.blank and isinstance(
        field, (serializers.CharField, serializers.ChoiceField)
    )
    null = model_field.null
    if (blank and not field.allow_blank) or (null and not field.allow_null):
        field = copy.copy(field)
        if blank:
            field.allow_blank = True
        if null:
            field.allow_null = True
    return field
