"""The one place that maps error types to HTTP status codes and JSON bodies.

Every error body carries the official api_v2 keys (``message``, and ``Exception`` for failures)
and an OpenAI-style ``error`` object ``{"message", "type", "code"}`` naming the typed error class.
"""

from __future__ import annotations

import logging

from fastapi.responses import JSONResponse

from fastsovits.errors import Cancelled, CapacityError, FastSovitsError, InvalidInput, MissingResource

log = logging.getLogger("fastsovits.server")


class ServerError(FastSovitsError):
    status = 500


class Unauthorized(ServerError):
    """Missing or wrong Bearer API key."""

    status = 401


class Forbidden(InvalidInput):
    """The server's operator has not allowed this (a control command, a path)."""

    status = 403


class ForbiddenPath(Forbidden):
    """A client named a server path outside the operator's allowed folder (or no folder is allowed)."""


class NotFound(InvalidInput):
    """An unknown voice or model name."""

    status = 404


class PayloadTooLarge(InvalidInput):
    """A body, text or audio beyond the server's limits."""

    status = 413


class RequestTimeout(FastSovitsError):
    """The request ran past the server's per-request timeout; its job was cancelled."""

    status = 504


class NotSupported(ServerError):
    status = 501


class ShuttingDown(ServerError):
    """The server's shutdown timeout ended this request before it could answer."""

    status = 503


class InvalidWeights(InvalidInput):
    """A weights file a client named cannot be loaded as the kind of model asked for."""


def status_of(exc: BaseException) -> int:
    if isinstance(exc, (ServerError, Forbidden, NotFound, PayloadTooLarge, RequestTimeout)) or hasattr(exc, "status"):
        return exc.status
    if isinstance(exc, InvalidInput):
        return 400
    if isinstance(exc, (CapacityError, Cancelled)):
        return 503
    if isinstance(exc, MissingResource):
        return 400  # e.g. Chinese text on a server started without --bert: the request asks for what is absent
    return 500


def error_response(exc: BaseException, retry_after: int = 1) -> JSONResponse:
    status = status_of(exc)
    kind = type(exc).__name__
    if status >= 500 and status not in (501, 503, 504):
        log.error("request failed", exc_info=exc)
    elif status == 499:  # the client went away: nobody reads this answer, and it is no server fault
        log.info("request cancelled: %s", exc)
    message = str(exc) or kind
    if status == 500 and not isinstance(exc, FastSovitsError):
        # An unexpected failure: its text may hold server paths or object reprs; the log has the traceback.
        message = f"internal error ({kind}); the server log has the details"
    body = {
        "message": message if status < 500 else "tts failed",
        "Exception": message,
        "error": {"message": message, "type": kind, "code": status},
    }
    headers = {"Retry-After": str(retry_after)} if status == 503 else None
    return JSONResponse(body, status_code=status, headers=headers)
