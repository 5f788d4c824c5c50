"""WebSocket ``/v1/audio/speech/stream``: text deltas in (an LLM's tokens), audio out.

The client sends ``{"type": "session.config", "voice", ...}``, then any number of
``{"type": "input.text.delta", "delta"}``, then ``{"type": "input.text.done"}``. The server answers
``session.created`` (the audio format), then binary audio frames framed by ``sentence.start`` and
``sentence.done`` events, and ``done`` (with ``usage``) before it closes the socket normally. A
sentence starts generating as soon as the text closes it (``fastsovits/text_stream.py``). Errors
are an ``error`` event (the same typed errors and codes as the HTTP routes) and a close with code
1008 (bad input), 1013 (server busy) or 1011 (server failure); a client that goes away cancels the
work. The API key is the ``Authorization: Bearer`` header of the upgrade request; a session counts
as one request against ``--queue-limit`` for its whole life.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from typing import Literal, TypeVar

from anyio import to_thread
from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.websockets import WebSocketDisconnect

from fastsovits.errors import Cancelled, CapacityError, InputTimeout, InvalidParameter, TextTooLong
from fastsovits.limits import TextStreamLimits
from fastsovits.server.errors import Unauthorized, error_response, status_of
from fastsovits.server.routes_openai import MODEL_ALIASES, named_voice
from fastsovits.server.schemas import OPENAI_PCM_RATE, SamplingFields, to_params
from fastsovits.server.streaming import stream_encoder
from fastsovits.text_stream import AudioPump, TextStreamSession, wait_for_room

log = logging.getLogger("fastsovits.server")
router = APIRouter()
ROUTE = "/v1/audio/speech/stream"
JSON_OVERHEAD = 256  # bytes of a delta message besides its text
JSON_BYTES_PER_CHAR = 6  # a character written as a JSON \uXXXX escape
M = TypeVar("M", bound=BaseModel)


class SessionConfig(SamplingFields):
    """The first message: the voice, the audio format and the synthesis fields of ``/v1/audio/speech``."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["session.config"]
    voice: str | dict
    model: str = "tts-1"
    language: str | None = None  # text language (default: the voice's)
    response_format: Literal["pcm", "wav", "opus"] = "pcm"
    speed: float | None = None
    streaming_mode: bool = False  # token-chunk streaming inside each sentence


class TextDelta(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["input.text.delta"]
    delta: str


class TextDone(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["input.text.done"]


def _close_code(exc: BaseException) -> int:
    status = status_of(exc)
    return 1013 if status == 503 else 1008 if status < 500 else 1011


def _authorized(ws: WebSocket, key: str | None) -> bool:
    given = ws.headers.get("authorization", "")
    return not key or hmac.compare_digest(given.encode(), f"Bearer {key}".encode())


async def _message(ws: WebSocket, timeout: float, limit_bytes: int) -> dict:
    """The next JSON message (a disconnect raises ``WebSocketDisconnect``)."""
    try:
        msg = await asyncio.wait_for(ws.receive(), timeout)
    except asyncio.TimeoutError:
        raise InputTimeout(f"no message for {timeout:g} s") from None
    if msg["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(msg.get("code", 1000))
    text = msg.get("text")
    if text is None:
        raise InvalidParameter("messages are JSON text; binary messages are not accepted")
    if len(text) > limit_bytes:
        raise TextTooLong(f"a message of {len(text)} characters; the limit is {limit_bytes}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidParameter(f"a message is not valid JSON: {e.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise InvalidParameter('every message is a JSON object with a "type"')
    return data


def _parse(model: type[M], data: dict) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err.get("loc", ()))
        raise InvalidParameter(f"{data.get('type')}: {where}: {err.get('msg', 'invalid')}") from None


async def _read_text(ws: WebSocket, session: TextStreamSession, limit_bytes: int) -> None:
    """Deltas into the session until ``input.text.done``; then watch for the client going away."""
    while not session.input_done:
        data = await _message(ws, session.limits.max_session_s, limit_bytes)
        if data["type"] == "input.text.delta":
            delta = _parse(TextDelta, data).delta
            await wait_for_room(session)
            await to_thread.run_sync(session.push, delta)
        elif data["type"] == "input.text.done":
            _parse(TextDone, data)
            await to_thread.run_sync(session.finish)
        else:
            raise InvalidParameter(f"unknown message type {data['type']!r} (input.text.delta or input.text.done)")
    while True:  # later messages are ignored; a disconnect cancels the rest
        if (await ws.receive())["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(1000)


async def _send_audio(ws: WebSocket, session: TextStreamSession, encoder) -> dict:
    """Audio frames framed by sentence events; returns the ``done`` event."""
    pump = AudioPump(session)
    started, samples, results = -1, 0, []
    while (chunk := await pump.get()) is not None:
        if chunk.samples.size and chunk.index != started:
            started = chunk.index
            await ws.send_json(
                {"type": "sentence.start", "index": chunk.index, "text": session.sentences[chunk.index].strip()}
            )
        if chunk.samples.size:
            samples += len(chunk.samples)
            data = await to_thread.run_sync(encoder.feed, chunk.samples)
            if data:
                await ws.send_bytes(data)
        if chunk.sentence is not None:
            results.append(chunk.sentence.to_dict())
            await ws.send_json({"type": "sentence.done", **chunk.sentence.to_dict()})
    tail = await to_thread.run_sync(encoder.finish)
    if tail:
        await ws.send_bytes(tail)
    seconds = samples / session.tts.sample_rate
    return {
        "type": "done",
        "usage": {
            "input_characters": session.chars,
            "sentences": len(results),
            "audio_seconds": round(seconds, 3),
            "input_tokens": session.chars,
            "output_tokens": samples,
            "total_tokens": session.chars + samples,
        },
        "sentences": results,
    }


@router.websocket(ROUTE)
async def speech_stream(ws: WebSocket) -> None:
    st = ws.app.state.fastsovits
    config = st.config
    if not _authorized(ws, config.api_key):
        try:
            await ws.send_denial_response(
                error_response(Unauthorized("a valid 'Authorization: Bearer <key>' header is required"))
            )
        except RuntimeError:  # the server has no denial-response extension: a plain refusal (HTTP 403)
            await ws.close(code=1008)
        return
    await ws.accept()
    limits = TextStreamLimits(max_chars=config.max_text_chars, max_session_s=config.request_timeout_s)
    limit_bytes = limits.max_delta_chars * JSON_BYTES_PER_CHAR + JSON_OVERHEAD
    t0, status, admitted, res, session, audio_seconds = time.monotonic(), 499, False, None, None, 0.0
    tasks: list[asyncio.Task] = []
    try:
        data = await _message(ws, limits.idle_timeout_s, limit_bytes)
        if data["type"] != "session.config":
            raise InvalidParameter(f"the first message must be session.config, not {data['type']!r}")
        cfg = _parse(SessionConfig, data)
        voice = named_voice(st, cfg.voice)
        model = None if cfg.model in MODEL_ALIASES else st.models.spec(cfg.model).name
        language = (cfg.language or voice.language or "auto").lower()
        params = to_params(cfg, config, speed_factor=cfg.speed)
        st.service.admission.enter()
        admitted = True
        res = await st.models.acquire(model or voice.model)
        reference = await to_thread.run_sync(st.service.reference_of, res, voice)
        session = TextStreamSession(res.tts, reference, language, params, limits)
        encoder = stream_encoder(
            cfg.response_format, res.tts.sample_rate, OPENAI_PCM_RATE if cfg.response_format == "pcm" else None
        )
        await ws.send_json(
            {
                "type": "session.created",
                "response_format": cfg.response_format,
                "sample_rate": encoder.out_rate,
                "channels": 1,
                "sample_format": "s16le",
            }
        )
        sender = asyncio.create_task(_send_audio(ws, session, encoder))
        reader = asyncio.create_task(_read_text(ws, session, limit_bytes))
        tasks = [sender, reader]
        remaining = limits.max_session_s - (time.monotonic() - t0)
        await asyncio.wait(tasks, timeout=max(0.0, remaining), return_when=asyncio.FIRST_COMPLETED)
        if reader.done() and reader.exception() is not None:
            session.fail(reader.exception())  # type: ignore[arg-type]
            raise reader.exception()  # type: ignore[misc]
        if not sender.done():
            raise InputTimeout(f"the session ran past {limits.max_session_s:g} s")
        done = sender.result()
        audio_seconds = done["usage"]["audio_seconds"]
        await ws.send_json(done)
        status = 200
        await ws.close(code=1000)
    except (WebSocketDisconnect, Cancelled, asyncio.CancelledError) as e:
        st.metrics.cancelled.labels("disconnect").inc()
        if isinstance(e, asyncio.CancelledError):
            raise
    except Exception as e:  # noqa: BLE001 - reported to the client as an error event, then a close
        status = status_of(e)
        st.metrics.errors.labels(type(e).__name__).inc()
        if status >= 500 and not isinstance(e, CapacityError):
            log.error("text stream failed", exc_info=e)
        message = str(e) if status < 500 or isinstance(e, CapacityError) else "tts failed"
        try:
            error = {"type": type(e).__name__, "message": message, "code": status}
            if status == 503:
                error["retry_after"] = config.retry_after_s  # seconds, as the HTTP routes' Retry-After
            await ws.send_json({"type": "error", "error": error})
            await ws.close(code=_close_code(e))
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client is already gone
    finally:
        for task in tasks:
            task.cancel()
        if session is not None:
            session.cancel()
        if res is not None:
            st.models.release(res)
        if admitted:
            st.service.admission.exit()
        st.metrics.audio_seconds.inc(audio_seconds)
        st.metrics.latency.labels(ROUTE).observe(time.monotonic() - t0)
        st.metrics.requests.labels(ROUTE, str(status)).inc()
