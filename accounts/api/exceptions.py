"""One place that turns every error into a JSON answer: no stack trace ever leaves the API."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.errors import ConflictError

logger = logging.getLogger("tributary.api")


def validation_error_body(exc: DjangoValidationError) -> dict:
    if hasattr(exc, "error_dict"):
        return {
            ("non_field_errors" if key == "__all__" else key): [str(m) for m in msgs]
            for key, msgs in exc.message_dict.items()
        }
    return {"non_field_errors": [str(m) for m in exc.messages]}


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        return Response(validation_error_body(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "The request body is too large."}, status=413)
    if isinstance(exc, SuspiciousOperation):
        return Response(
            {"detail": "The request could not be read."}, status=status.HTTP_400_BAD_REQUEST
        )
    if isinstance(exc, ConflictError):
        return Response({exc.field: [exc.message]}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, (Http404, DjangoPermissionDenied)):
        return drf_exception_handler(exc, context)
    response = drf_exception_handler(exc, context)
    if response is not None:
        return response
    if isinstance(exc, IntegrityError):
        logger.warning("integrity error on %s: %s", context.get("view"), exc)
        return Response(
            {
                "detail": "This change conflicts with existing data (a duplicate or a missing reference)."
            },
            status=status.HTTP_409_CONFLICT,
        )
    logger.exception("unhandled error in %s", context.get("view"))
    return Response({"detail": "Internal error; it has been logged."}, status=500)
