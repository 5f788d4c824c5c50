"""OpenAI-compatible routes: ``POST /v1/audio/speech`` and ``GET /v1/models``.

``voice`` is a registered voice; OpenAI's built-in names (alloy, nova, ...) and ``default`` mean
the server's default voice. ``model`` is a declared model name; ``tts-1``/``tts-1-hd``/``gpt-sovits``
mean the voice's model (or the default). The response streams (chunked) as OpenAI's does, except
``flac``, sent whole because its header needs the length; ``"stream": false`` asks for one file;
``"stream_format": "sse"`` sends OpenAI's server-sent events (base64 audio deltas, then a done event).
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from fastsovits.errors import EmptyText, InvalidParameter
from fastsovits.server.errors import NotFound
from fastsovits.server.schemas import OPENAI_PCM_RATE, SpeechRequest, check_sizes, to_params
from fastsovits.server.speech import SpeechJob, respond

router = APIRouter()
MODEL_ALIASES = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-sovits", "fastsovits")
OPENAI_VOICES = (
    "default",
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
)


def named_voice(st, voice):
    name = voice.get("id") if isinstance(voice, dict) else voice
    if isinstance(name, str) and name in st.voices:
        return st.voices.get(name)
    if name in OPENAI_VOICES and st.default_voice() is not None:
        return st.default_voice()
    raise NotFound(f"voice {name!r} does not exist (GET /v1/voices lists them; POST /v1/voices adds one)")


@router.post("/v1/audio/speech")
async def speech(request: Request, body: SpeechRequest):
    st = request.app.state.fastsovits
    check_sizes(body, st.config)
    if not body.input.strip():
        raise EmptyText("input is empty")
    sse = body.stream_format == "sse"
    if sse and body.stream is False:
        raise InvalidParameter("stream_format='sse' streams; it cannot be combined with stream=false")
    voice = named_voice(st, body.voice)
    model = None if body.model in MODEL_ALIASES else st.models.spec(body.model).name
    language = (body.language or voice.language or "auto").lower()
    params = to_params(body, st.config, speed_factor=body.speed)
    fmt = body.response_format
    out_rate = OPENAI_PCM_RATE if fmt == "pcm" else None
    streaming = sse or (body.stream is not False and fmt != "flac" and not params.timestamps)  # X-Timestamps: whole
    if sse and fmt == "flac":
        raise InvalidParameter("stream_format='sse' needs a streamable response_format (pcm, wav, mp3, opus, aac)")
    job = SpeechJob(body.input, language, voice, params, model)
    return await respond(st.service, job, "/v1/audio/speech", fmt, streaming, request, out_rate, sse=sse)


@router.get("/v1/models")
async def models(request: Request):
    st = request.app.state.fastsovits
    reg = st.models
    data = [
        {
            "id": name,
            "object": "model",
            "created": 0,
            "owned_by": "fastsovits",
            "resident": name in reg.resident,
            "default": name == reg.default_name,
        }
        for name in reg.specs
    ]
    data += [
        {"id": alias, "object": "model", "created": 0, "owned_by": "fastsovits", "alias_of": reg.default_name}
        for alias in MODEL_ALIASES
    ]
    return {"object": "list", "data": data}
