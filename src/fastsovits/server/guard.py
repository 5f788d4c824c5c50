"""The ASGI layer in front of every route: API key, body limits, request ids, the access log, shutdown.

``GuardMiddleware`` checks, before any route runs: the Bearer key (scheme case-insensitive, as RFC 7235),
the body size (``Content-Length`` and the bytes actually received), and for a JSON body its UTF-8 and its
nesting depth (counted without parsing). It gives each request an id (``X-Request-ID``: the client's when
it is a short token, else a new one), writes one access-log line per request when ``access_log`` is on,
and answers 503 in the error shape when the shutdown timeout cuts a request that has not started its
response.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
import uuid
from dataclasses import dataclass

import numpy as np
from anyio import to_thread

from fastsovits.errors import InvalidParameter
from fastsovits.server.config import ServerConfig
from fastsovits.server.errors import PayloadTooLarge, ShuttingDown, Unauthorized, error_response

access_log = logging.getLogger("fastsovits.access")
OPEN_PATHS = ("/healthz", "/readyz")
ACCESS_KEY = "fastsovits.access"  # scope key of the request's AccessRecord
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BODY_METHODS = ("POST", "PUT", "PATCH")


class StreamAborted(Exception):  # noqa: N818 - not an error type a client sees: the connection is cut
    """A streamed 200 failed after its headers: the connection is closed without the final chunk, so the
    client's HTTP library reports an incomplete body instead of a short file that looks complete."""


@dataclass
class AccessRecord:
    """What the access log says of one request; routes add the audio they sent."""

    request_id: str
    status: int = 0
    audio_seconds: float = 0.0


def access_record(scope: dict) -> AccessRecord | None:
    return scope.get(ACCESS_KEY)


def json_depth(body: bytes) -> int:
    """Deepest nesting of ``{``/``[`` in a JSON text, brackets inside strings not counted (no parsing).

    An upper bound (the number of opening brackets) answers most bodies at once; the exact scan (strings
    removed by one regex, then a cumulative sum) runs only when that bound is not enough.
    """
    skeleton = _JSON_STRING.sub(b"", body).translate(None, bytes(set(range(256)) - set(b"[]{}")))
    if not skeleton:
        return 0
    marks = np.frombuffer(skeleton, dtype=np.uint8)
    steps = np.where((marks == ord("[")) | (marks == ord("{")), 1, -1).astype(np.int64)
    return int(np.cumsum(steps).max())


def _bearer_ok(given: str, key: str) -> bool:
    scheme, _, token = given.strip().partition(" ")
    return hmac.compare_digest(scheme.lower().encode(), b"bearer") & hmac.compare_digest(
        token.strip().encode(), key.encode()
    )


def _is_json(method: str, content_type: str | None) -> bool:
    return method in _BODY_METHODS and (content_type is None or "json" in content_type.lower())


class GuardMiddleware:
    def __init__(self, app, config: ServerConfig) -> None:
        self.app, self.config = app, config

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.monotonic()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given_id = headers.get("x-request-id", "")
        record = AccessRecord(given_id if _REQUEST_ID.match(given_id) else uuid.uuid4().hex[:16])
        scope[ACCESS_KEY] = record

        async def send_logged(message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-request-id", record.request_id.encode())],
                }
            await send(message)

        try:
            await self._guarded(scope, receive, send_logged, headers)
        except StreamAborted:
            # Return without the final chunk: uvicorn closes the connection; the cause is logged already.
            record.status = 500 if record.status == 200 else record.status
        except asyncio.CancelledError:
            # uvicorn's shutdown timeout cancels what is still running: a request that has not started its
            # response gets a 503 it can retry elsewhere, not a plain-text 500.
            if record.status == 0:
                try:
                    await error_response(ShuttingDown("the server is shutting down; retry"))(
                        scope, receive, send_logged
                    )
                except Exception:  # noqa: BLE001 - the connection may be gone already
                    pass
        finally:
            if self.config.access_log:
                access_log.info(
                    "%s %s %s %d %.3f s audio=%.2f s",
                    record.request_id,
                    scope["method"],
                    scope["path"],
                    record.status,
                    time.monotonic() - t0,
                    record.audio_seconds,
                )

    async def _guarded(self, scope, receive, send, headers: dict[str, str]) -> None:
        cfg = self.config
        if cfg.api_key and scope["path"] not in OPEN_PATHS and scope["method"] != "OPTIONS":
            if not _bearer_ok(headers.get("authorization", ""), cfg.api_key):
                resp = error_response(Unauthorized("a valid 'Authorization: Bearer <key>' header is required"))
                resp.headers["WWW-Authenticate"] = "Bearer"
                return await resp(scope, receive, send)
        limit = cfg.max_body_bytes
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await error_response(PayloadTooLarge(f"body of {length} bytes; limit {limit}"))(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise PayloadTooLarge(f"body over {limit} bytes")
            return message

        if not _is_json(scope["method"], headers.get("content-type")):
            return await self.app(scope, limited_receive, send)
        body, more, last = [], True, None
        try:
            while more:  # a JSON body is read whole by the route anyway: check it first, then replay it
                last = await limited_receive()
                if last["type"] != "http.request":
                    break
                body.append(last.get("body", b""))
                more = last.get("more_body", False)
        except PayloadTooLarge as e:
            return await error_response(e)(scope, receive, send)
        data = b"".join(body)
        problem = None
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            problem = InvalidParameter(f"the body is not valid UTF-8 (byte {e.start})")
        depth = data.count(b"[") + data.count(b"{")  # an upper bound, enough for nearly every body
        if problem is None and depth > cfg.max_json_depth:
            depth = await to_thread.run_sync(json_depth, data)
        if problem is None and depth > cfg.max_json_depth:
            problem = InvalidParameter(f"the JSON body nests {depth} levels; at most {cfg.max_json_depth}")
        if problem is not None:
            return await error_response(problem)(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)
