"""Business errors from the services, as JSON with the plain message and a fitting status."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from deals.services import (
    DealConflict,
    DealError,
    NotPermitted,
    RecordRequired,
    TransitionBlocked,
)


def api_exception_handler(exc, context):
    """DRF's handler, plus: NotPermitted → 403, conflicts and blocked moves → 409, other
    DealError and model validation errors → 400. The body is always {"detail": message}."""
    if isinstance(exc, RecordRequired):
        # The move is made by another endpoint, which also makes its record: name it.
        return Response(
            {"detail": f"{exc.message} Call {exc.api} instead.", "endpoint": exc.api},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, NotPermitted):
        return Response({"detail": exc.message}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, (DealConflict, TransitionBlocked)):
        return Response({"detail": exc.message}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DealError):
        return Response({"detail": exc.message}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)
    return exception_handler(exc, context)
