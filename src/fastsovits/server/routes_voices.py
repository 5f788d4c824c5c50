"""Voices: ``GET/POST /v1/audio/voices``, ``GET/DELETE /v1/audio/voices/{name}`` (OpenAI's shape) and the
same routes under ``/v1/voices``. Uploaded voices live in the voice store and survive a restart.

A new voice is checked before anything is stored or encoded, cheapest first: the body size (the
server's limit), the number of auxiliary clips (before any is decoded from base64 or read), the
name, text length and language, then each clip's header (mono, 16-48 kHz, the reference 3-10 s,
the auxiliary clips' durations), then the decoded clips. It is then encoded on its model under
the same admission limit and timeout as a synthesis request, refused if its prompt leaves the
model's cache too little room for a sentence, and stored with its features in one transaction.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from fastsovits.errors import InvalidParameter
from fastsovits.server.errors import RequestTimeout, status_of
from fastsovits.server.schemas import VoiceCreate
from fastsovits.server.voices import Conflict, Voice
from fastsovits.voices.features import reference_to_bytes
from fastsovits.voices.store import NewVoice
from fastsovits.voices.validate import ClipInfo, VoiceLimits, check_fields, decode_clips, probe_clips

if TYPE_CHECKING:
    from fastsovits.api import Reference
    from fastsovits.server.app import ServerState
    from fastsovits.server.config import ServerConfig

router = APIRouter()
MULTIPART_FIELDS = 16  # name, text, language, model, replace, type, consent: anything beyond is not ours


@dataclass(frozen=True)
class Upload:
    name: object
    text: str | None
    language: str | None
    model: str | None
    clips: list[bytes]
    replace: bool


def limits_of(config: ServerConfig) -> VoiceLimits:
    """The configured voice limits, no looser than the server's ``max_audio_seconds`` for any one clip."""
    lim = config.voice_limits
    return replace(lim, max_clip_seconds=min(lim.max_clip_seconds, config.max_audio_seconds))


def _b64(data: str, field: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameter(f"{field} must be base64 of an audio file") from None


def _text(value: object, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidParameter(f"multipart field {field!r} must be text, not a file")


async def _read_body(request: Request, limits: VoiceLimits) -> Upload:
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        try:  # at most the reference and max_aux_clips files: a form with more is refused while it is parsed
            form = await request.form(max_files=limits.max_aux_clips + 1, max_fields=MULTIPART_FIELDS)
        except HTTPException as e:
            raise InvalidParameter(f"the multipart body cannot be read: {e.detail}") from None
        try:
            audio = form.get("audio") or form.get("audio_sample")  # audio_sample: OpenAI's field name
            if audio is None or isinstance(audio, str):
                raise InvalidParameter("multipart field 'audio' (or 'audio_sample') must be a file")
            aux = [a for a in form.getlist("aux") if not isinstance(a, str)]
            if len(aux) != len(form.getlist("aux")):
                raise InvalidParameter("multipart field 'aux' must be files")
            if _text(form.get("type"), "type") not in (None, "audio_sample"):
                raise InvalidParameter("voices are made from an audio sample; type must be 'audio_sample'")
            fields = {k: _text(form.get(k), k) for k in ("name", "text", "language", "model", "replace")}
            check_fields(fields["name"], fields["text"], fields["language"], len(aux), limits)
            clips = [await audio.read()] + [await a.read() for a in aux]
        finally:
            await form.close()
        flag = (fields["replace"] or "false").lower() in ("1", "true", "yes")
        return Upload(fields["name"], fields["text"], fields["language"], fields["model"], clips, flag)
    if kind and not kind.startswith("application/json"):
        raise InvalidParameter("send the voice as multipart/form-data or application/json")
    try:
        body = VoiceCreate.model_validate_json(await request.body())
    except ValidationError as e:
        err = e.errors()[0]
        raise InvalidParameter(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    check_fields(body.name, body.text, body.language, len(body.aux), limits)  # before any base64 is decoded
    clips = [_b64(body.audio, "audio")] + [_b64(a, "aux") for a in body.aux]
    return Upload(body.name, body.text, body.language, body.model, clips, body.replace)


def _shape(info: dict, request: Request) -> dict:
    if request.url.path.startswith("/v1/audio/"):
        return {**info, "object": "audio.voice", "type": "audio_sample"}
    return info


async def _build(st: ServerState, voice: Voice, infos: list[ClipInfo]) -> tuple[Reference | None, str | None]:
    """Decode the clips (bounded by their headers), then encode the voice where the service encodes."""
    await to_thread.run_sync(decode_clips, [voice.audio, *voice.aux], infos)
    return await st.service.build_voice(voice)


@router.post("/v1/audio/voices", status_code=201)
@router.post("/v1/voices", status_code=201)
async def create_voice(request: Request) -> JSONResponse:
    st = request.app.state.fastsovits
    route = "/v1/audio/voices" if request.url.path.startswith("/v1/audio/") else "/v1/voices"
    limits = limits_of(st.config)
    up = await _read_body(request, limits)
    name, text, language = check_fields(up.name, up.text, up.language, len(up.clips) - 1, limits)
    model = up.model or None
    if model:
        st.models.spec(model)
    if st.voices.in_memory(name):
        raise Conflict(f"voice {name!r} is declared in the server's voices file; choose another name")
    if name in st.service.creating or (not up.replace and name in st.voices):
        raise Conflict(f"voice {name!r} exists; delete it first or pass replace=true")
    infos = probe_clips(up.clips, limits)  # headers only: nothing decoded yet
    service = st.service
    service.admission.enter()  # from here on a voice counts as a request in flight (503 beyond the limit)
    service.creating.add(name)
    t0, status, work = time.monotonic(), 500, None
    try:
        voice = Voice(name, up.clips[0], text, language, tuple(up.clips[1:]), model)
        work = asyncio.ensure_future(_build(st, voice, infos))
        remaining = st.config.request_timeout_s - (time.monotonic() - t0)
        try:
            ref, identity = await asyncio.wait_for(asyncio.shield(work), max(remaining, 0.0))
        except asyncio.TimeoutError:
            service.metrics.cancelled.labels("timeout").inc()
            raise RequestTimeout(f"creating the voice ran past {st.config.request_timeout_s} s") from None
        store = st.voices.store
        if store is None or ref is None or identity is None:
            st.voices.add(voice, replace=up.replace)
            info = voice.info()
        else:
            new = NewVoice(name, voice.audio, text, language, voice.aux, model)
            summary = await to_thread.run_sync(store.add, new, {identity: reference_to_bytes(ref)}, up.replace)
            service.remember(identity, summary.id, ref)
            info = st.voices.info(name)
        status = 201
        return JSONResponse(_shape(info, request), status_code=201)
    except BaseException as e:
        status = 499 if isinstance(e, asyncio.CancelledError) else status_of(e)
        service.metrics.errors.labels(type(e).__name__).inc()
        raise
    finally:
        service.creating.discard(name)
        if work is not None and not work.done():  # timed out or client gone: the slot is held until the work stops
            work.add_done_callback(lambda task: (task.cancelled() or task.exception(), service.admission.exit()))
        else:
            service.admission.exit()
        service.metrics.requests.labels(route, str(status)).inc()
        service.metrics.latency.labels(route).observe(time.monotonic() - t0)


@router.get("/v1/audio/voices")
@router.get("/v1/voices")
async def list_voices(request: Request) -> dict:
    st = request.app.state.fastsovits
    data = [_shape(info, request) for info in await to_thread.run_sync(st.voices.infos)]
    return {"object": "list", "data": data, "default": st.voices.default}


@router.get("/v1/audio/voices/{name}")
@router.get("/v1/voices/{name}")
async def get_voice(request: Request, name: str) -> dict:
    st = request.app.state.fastsovits
    return _shape(await to_thread.run_sync(st.voices.info, name), request)


@router.delete("/v1/audio/voices/{name}")
@router.delete("/v1/voices/{name}")
async def delete_voice(request: Request, name: str) -> dict:
    st = request.app.state.fastsovits
    await to_thread.run_sync(st.voices.remove, name)
    obj = "audio.voice" if request.url.path.startswith("/v1/audio/") else "voice"
    return {"id": name, "object": obj, "deleted": True}
