"""api_v2-compatible routes: ``/tts`` (GET and POST), ``/set_*`` (scoped to the server default), ``/control``.

Unlike the official server, a request's voice and model are its own: ``/set_refer_audio``,
``/set_gpt_weights`` and ``/set_sovits_weights`` only change what a request that names no voice
or model gets. Paths are read only inside the operator's ``--ref-root`` / ``--weights-root``.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from anyio import to_thread
from fastapi import APIRouter, BackgroundTasks, Request
from pydantic import ValidationError

from fastsovits.errors import CapacityError, EmptyText, FastSovitsError, InvalidParameter
from fastsovits.server.config import ModelSpec
from fastsovits.server.errors import Forbidden, InvalidWeights, NotSupported, PayloadTooLarge
from fastsovits.server.paths import resolve_inside
from fastsovits.server.schemas import (
    API_V2_MEDIA,
    TTSRequest,
    api_v2_streaming,
    check_sizes,
    streaming_params,
    to_params,
)
from fastsovits.server.speech import SpeechJob, respond
from fastsovits.server.voices import Voice, check_clip

router = APIRouter()
log = logging.getLogger("fastsovits.server")
SUCCESS = {"message": "success"}


def _state(request: Request):
    return request.app.state.fastsovits


def _clip_paths(st, body: TTSRequest) -> list[Path]:
    """The request's clip files: counted, inside --ref-root and sized (``stat`` only) before any is read."""
    cfg = st.config
    aux = body.aux_ref_audio_paths or []
    if len(aux) > cfg.max_aux_clips:
        raise PayloadTooLarge(f"aux_ref_audio_paths names {len(aux)} clips; this server accepts {cfg.max_aux_clips}")
    named = [body.ref_audio_path or "", *aux]
    paths = [resolve_inside(cfg.ref_root, p, "reference audio") for p in named]
    for name, path in zip(named, paths):
        size = path.stat().st_size
        if size > cfg.max_clip_bytes:
            raise PayloadTooLarge(
                f"reference audio {name!r} has {size} bytes; this server reads at most {cfg.max_clip_bytes}"
            )
    return paths


def _read_clips(paths: list[Path], max_seconds: float) -> list[bytes]:
    clips = []
    for path in paths:
        clips.append(path.read_bytes())
        check_clip(clips[-1], max_seconds)
    return clips


def _voice(st, body: TTSRequest) -> Voice | Callable[[], Voice]:
    """The request's reference: a registered voice, files under --ref-root (read after admission), or the
    server default."""
    cfg = st.config
    name = body.voice or (body.ref_audio_path if body.ref_audio_path in st.voices else None)
    if name:
        return st.voices.get(name)
    if body.ref_audio_path:
        if body.prompt_text and not body.prompt_lang:
            raise InvalidParameter("prompt_lang is required with prompt_text")
        paths = _clip_paths(st, body)

        def load() -> Voice:
            clips = _read_clips(paths, cfg.max_audio_seconds)
            return Voice(
                "(request)",
                clips[0],
                body.prompt_text or None,
                (body.prompt_lang or "").lower() or None,
                tuple(clips[1:]),
                source="request",
            )

        return load
    default = st.default_voice()
    if default is None:
        raise InvalidParameter("ref_audio_path is required (this server has no default voice)")
    if body.prompt_text:
        default = replace(default, text=body.prompt_text, language=(body.prompt_lang or default.language or "").lower())
    return default


async def _tts(request: Request, body: TTSRequest):
    st = _state(request)
    check_sizes(body, st.config)
    if not body.text or not body.text.strip():
        raise EmptyText("text is required")
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
    query: dict[str, object] = dict(request.query_params)
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
    got = repr(err.get("input"))
    got = got if len(got) <= 60 else got[:57] + "..."
    return f"{where}: {err.get('msg')} (got {got})" if where else str(err.get("msg"))


@router.get("/set_refer_audio")
async def set_refer_audio(request: Request, refer_audio_path: str | None = None):
    """As a voice upload: the clip is checked (format, mono, rate, length) and encoded on the default model
    (3-10 s, through admission and the timeout) before it replaces the default; a bad clip changes nothing."""
    st = _state(request)
    cfg = st.config
    if not refer_audio_path:
        raise InvalidParameter("refer_audio_path is required")
    if len(refer_audio_path) > cfg.max_field_chars:
        raise PayloadTooLarge(f"refer_audio_path has {len(refer_audio_path)} characters; at most {cfg.max_field_chars}")
    body = TTSRequest(ref_audio_path=refer_audio_path)
    paths = await to_thread.run_sync(_clip_paths, st, body)
    clips = await to_thread.run_sync(_read_clips, paths, cfg.max_audio_seconds)
    voice = Voice("(default)", clips[0], source="set_refer_audio")
    await st.service.reference(voice)
    st.set_default_voice(voice)
    return SUCCESS


async def _set_weights(request: Request, weights_path: str | None, kind: str):
    st = _state(request)
    if not weights_path:
        raise InvalidParameter("weights_path is required")
    if len(weights_path) > st.config.max_field_chars:
        raise PayloadTooLarge(f"weights_path has {len(weights_path)} characters; at most {st.config.max_field_chars}")
    path = await to_thread.run_sync(resolve_inside, st.config.weights_root, weights_path, "weights file")
    base = st.models.spec(None)
    if base.path is not None:
        raise NotSupported(f"/set_{kind}_weights needs a server started with --gpt/--sovits files, not a folder")
    files = {"gpt": base.gpt, "sovits": base.sovits, kind: str(path)}
    root = base.name.split("+")[0]
    # The name shows both files; the registry also keys its resident model by the whole spec, so a name
    # that comes back with other files behind it is reloaded, never reused.
    spec = base.with_(name=f"{root}+{Path(files['gpt'] or '-').name}+{Path(files['sovits'] or '-').name}", **files)
    known = st.models.specs.get(spec.name)
    st.models.declare(spec)
    st.service.admission.enter()  # loading is heavy: it counts against the queue limit as synthesis does
    try:
        async with st.models.lease(spec.name):  # loads now, so a bad file is this request's 4xx, not a later one's
            pass
    except CapacityError:
        _undeclare(st, spec, known)
        raise
    except FastSovitsError as e:  # its message may name server paths: the client gets its own name back
        _undeclare(st, spec, known)
        log.info("/set_%s_weights %r failed: %s: %s", kind, weights_path, type(e).__name__, e)
        raise InvalidWeights(
            f"weights_path {weights_path!r} is not a usable {kind.upper()} weights file for "
            f"this model ({type(e).__name__})"
        ) from None
    except Exception as e:  # noqa: BLE001 - a file of the wrong kind fails anywhere in the loader
        _undeclare(st, spec, known)
        log.info("/set_%s_weights %r failed: %s: %s", kind, weights_path, type(e).__name__, e)
        raise InvalidWeights(
            f"weights_path {weights_path!r} is not a usable {kind.upper()} weights file for this model"
        ) from None
    finally:
        st.service.admission.exit()
    st.models.default_name = spec.name
    return SUCCESS


def _undeclare(st, spec: ModelSpec, previous: ModelSpec | None) -> None:
    if previous is None:
        st.models.specs.pop(spec.name, None)
    else:
        st.models.specs[spec.name] = previous


@router.get("/set_gpt_weights")
async def set_gpt_weights(request: Request, weights_path: str | None = None):
    return await _set_weights(request, weights_path, "gpt")


@router.get("/set_sovits_weights")
async def set_sovits_weights(request: Request, weights_path: str | None = None):
    return await _set_weights(request, weights_path, "sovits")


@router.api_route("/control", methods=["GET", "POST"])
async def control(request: Request, background: BackgroundTasks, command: str | None = None):
    st = _state(request)
    if not st.config.allow_control:  # before reading anything the client sent
        raise Forbidden("/control is disabled on this server (start it with --allow-control)")
    if command is None and request.method == "POST":
        try:
            body = await request.json()
        except ValueError:
            raise InvalidParameter('the body must be a JSON object such as {"command": "exit"}') from None
        if not isinstance(body, dict):
            raise InvalidParameter(f"the body must be a JSON object, not {type(body).__name__}")
        command = body.get("command")
    if not command:
        raise InvalidParameter("command is required")
    if not isinstance(command, str) or len(command) > st.config.max_field_chars:
        raise InvalidParameter("command must be 'exit' or 'restart'")
    if command == "exit":
        background.add_task(os.kill, os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown
        return {"message": "exiting"}
    if command == "restart":
        st.restart_requested = True
        background.add_task(os.kill, os.getpid(), signal.SIGTERM)  # graceful shutdown, then serve() re-executes
        return {"message": "restarting"}
    raise InvalidParameter(f"command={command!r} must be 'exit' or 'restart'")
