"""api_v2-compatible routes: ``/tts`` (GET and POST), ``/set_*`` (scoped to the server default), ``/control``.

Unlike the official server, a request's voice and model are its own: ``/set_refer_audio``,
``/set_gpt_weights`` and ``/set_sovits_weights`` only change what a request that names no voice
or model gets. Paths are read only inside the operator's ``--ref-root`` / ``--weights-root``.
"""

from __future__ import annotations

import os
import signal
from dataclasses import replace

from anyio import to_thread
from fastapi import APIRouter, BackgroundTasks, Request
from pydantic import ValidationError

from fastsovits.errors import EmptyText, InvalidParameter, TextTooLong
from fastsovits.server.errors import Forbidden, NotSupported
from fastsovits.server.paths import resolve_inside
from fastsovits.server.schemas import API_V2_MEDIA, TTSRequest, api_v2_streaming, streaming_params, to_params
from fastsovits.server.speech import SpeechJob, respond
from fastsovits.server.voices import Voice, check_clip

router = APIRouter()
SUCCESS = {"message": "success"}


def _state(request: Request):
    return request.app.state.fastsovits


def _voice(st, body: TTSRequest) -> Voice:
    """The request's reference: a registered voice, a file under --ref-root, or the server default."""
    cfg = st.config
    name = body.voice or (body.ref_audio_path if body.ref_audio_path in st.voices else None)
    if name:
        return st.voices.get(name)
    if body.ref_audio_path:
        if body.prompt_text and not body.prompt_lang:
            raise InvalidParameter("prompt_lang is required with prompt_text")
        clips = [resolve_inside(cfg.ref_root, p, "reference audio").read_bytes()
                 for p in [body.ref_audio_path, *(body.aux_ref_audio_paths or [])]]
        for clip in clips:
            check_clip(clip, cfg.max_audio_seconds)
        return Voice("(request)", clips[0], body.prompt_text or None, (body.prompt_lang or "").lower() or None,
                     tuple(clips[1:]), source="request")
    default = st.default_voice()
    if default is None:
        raise InvalidParameter("ref_audio_path is required (this server has no default voice)")
    if body.prompt_text:
        default = replace(default, text=body.prompt_text, language=(body.prompt_lang or default.language or "").lower())
    return default


async def _tts(request: Request, body: TTSRequest):
    st = _state(request)
    if not body.text or not body.text.strip():
        raise EmptyText("text is required")
    if len(body.text) > st.config.max_text_chars:
        raise TextTooLong(f"text has {len(body.text)} characters; this server accepts {st.config.max_text_chars}")
    if not body.text_lang:
        raise InvalidParameter("text_lang is required")
    media = body.media_type.lower()
    if media not in API_V2_MEDIA:
        raise InvalidParameter(f"media_type={body.media_type!r} is not supported; use one of {list(API_V2_MEDIA)}")
    mode = api_v2_streaming(body.streaming_mode)
    params = to_params(body, st.config, **streaming_params(mode))
    voice = await to_thread.run_sync(_voice, st, body)
    job = SpeechJob(body.text, body.text_lang.lower(), voice, params)
    return await respond(st.service, job, "/tts", media, mode > 0, request)


@router.get("/tts")
async def tts_get(request: Request):
    query = dict(request.query_params)
    aux = request.query_params.getlist("aux_ref_audio_paths")
    query["aux_ref_audio_paths"] = aux or None
    try:
        body = TTSRequest.model_validate(query)
    except ValidationError as e:
        raise InvalidParameter(_first_error(e)) from None
    return await _tts(request, body)


@router.post("/tts")
async def tts_post(request: Request, body: TTSRequest):
    return await _tts(request, body)


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
    return f"{where}: {err.get('msg')} (got {err.get('input')!r})" if where else str(err.get("msg"))


@router.get("/set_refer_audio")
async def set_refer_audio(request: Request, refer_audio_path: str | None = None):
    st = _state(request)
    if not refer_audio_path:
        raise InvalidParameter("refer_audio_path is required")

    def load() -> Voice:
        data = resolve_inside(st.config.ref_root, refer_audio_path, "reference audio").read_bytes()
        check_clip(data, st.config.max_audio_seconds)
        return Voice("(default)", data, source="set_refer_audio")

    st.set_default_voice(await to_thread.run_sync(load))
    return SUCCESS


async def _set_weights(request: Request, weights_path: str | None, kind: str):
    st = _state(request)
    if not weights_path:
        raise InvalidParameter("weights_path is required")
    path = await to_thread.run_sync(resolve_inside, st.config.weights_root, weights_path, "weights file")
    base = st.models.spec(None)
    if base.path is not None:
        raise NotSupported(f"/set_{kind}_weights needs a server started with --gpt/--sovits files, not a folder")
    spec = base.with_(name=f"{base.name.split('+')[0]}+{kind}:{path.name}", **{kind: str(path)})
    st.models.declare(spec)
    async with st.models.lease(spec.name):  # loads now, so a bad file is this request's 400, not a later one's
        pass
    st.models.default_name = spec.name
    return SUCCESS


@router.get("/set_gpt_weights")
async def set_gpt_weights(request: Request, weights_path: str | None = None):
    return await _set_weights(request, weights_path, "gpt")


@router.get("/set_sovits_weights")
async def set_sovits_weights(request: Request, weights_path: str | None = None):
    return await _set_weights(request, weights_path, "sovits")


@router.api_route("/control", methods=["GET", "POST"])
async def control(request: Request, background: BackgroundTasks, command: str | None = None):
    st = _state(request)
    if command is None and request.method == "POST":
        try:
            command = (await request.json()).get("command")
        except ValueError:
            command = None
    if not command:
        raise InvalidParameter("command is required")
    if not st.config.allow_control:
        raise Forbidden("/control is disabled on this server (start it with --allow-control)")
    if command == "exit":
        background.add_task(os.kill, os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown
        return {"message": "exiting"}
    if command == "restart":
        st.restart_requested = True
        background.add_task(os.kill, os.getpid(), signal.SIGTERM)  # graceful shutdown, then serve() re-executes
        return {"message": "restarting"}
    raise InvalidParameter(f"command={command!r} must be 'exit' or 'restart'")
