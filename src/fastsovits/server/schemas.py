"""Request bodies (pydantic, with ranges) and their translation to ``SynthesisParams``.

``TTSRequest`` keeps every official ``api_v2`` field and default (``text_split_method="cut5"``
there, unlike ``TTS.run``); fastsovits additions are marked. ``SpeechRequest`` is OpenAI's
``/v1/audio/speech`` body plus the GPT-SoVITS sampling fields as optional extras.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from fastsovits.errors import InvalidParameter, TextTooLong
from fastsovits.params import SynthesisParams
from fastsovits.server.config import ServerConfig
from fastsovits.server.errors import PayloadTooLarge

API_V2_MEDIA = ("wav", "raw", "ogg", "aac", "mp3", "flac", "opus")
OPENAI_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
OPENAI_PCM_RATE = 24000  # OpenAI's pcm is 24 kHz 16-bit little-endian
_PARAM_FIELDS = {f.name for f in fields(SynthesisParams)}
TEXT_FIELDS = ("text", "prompt_text", "input", "instructions")  # bounded by max_text_chars; other strings by
# max_field_chars


def _not_bool(value: object) -> object:
    if isinstance(value, bool):  # JSON true/false is not a number (pydantic's lax mode would read it as 1/0)
        raise ValueError("must be a number, not true/false")
    return value


Int = Annotated[int, BeforeValidator(_not_bool)]
Float = Annotated[float, BeforeValidator(_not_bool)]


class _Sampling(BaseModel):
    top_k: Int = Field(15, ge=1, le=1025)
    top_p: Float = Field(1.0, gt=0, le=1)
    temperature: Float = Field(1.0, gt=0, le=10)
    repetition_penalty: Float = Field(1.35, gt=0, le=10)
    text_split_method: Literal["cut0", "cut1", "cut2", "cut3", "cut4", "cut5"] = "cut5"
    fragment_interval: Float = Field(0.3, ge=0, le=10)
    seed: Int = Field(-1, ge=-1, lt=2**63)
    noise_scale: Float = Field(0.5, ge=0, le=2)  # fastsovits addition (official TTS.run knob)
    max_new_tokens: Int | None = Field(None, ge=1, le=1500)  # fastsovits addition; capped by the server
    overlap_length: Int = Field(2, ge=0, le=64)
    min_chunk_length: Int = Field(16, ge=1, le=1500)


class TTSRequest(_Sampling):
    """``GET/POST /tts`` exactly as ``api_v2`` takes it (plus ``voice``)."""

    model_config = ConfigDict(extra="ignore")
    text: str | None = None
    text_lang: str | None = None
    ref_audio_path: str | None = None
    aux_ref_audio_paths: list[str] | None = None
    prompt_lang: str | None = None
    prompt_text: str = ""
    batch_size: Int = Field(1, ge=1, le=1024)
    batch_threshold: Float = Field(0.75, ge=0, le=1)
    split_bucket: bool = True
    speed_factor: Float = Field(1.0, ge=0.25, le=4)
    media_type: str = "wav"
    streaming_mode: bool | int | str = False
    parallel_infer: bool = True
    sample_steps: Int = Field(32, ge=1, le=128)
    super_sampling: bool = False
    voice: str | None = None  # fastsovits addition: a registered voice instead of ref_audio_path


class SpeechRequest(_Sampling):
    """OpenAI ``POST /v1/audio/speech``; unknown extra fields are ignored, as OpenAI clients may send more."""

    model_config = ConfigDict(extra="ignore")
    model: str = "tts-1"
    input: str
    voice: str | dict
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: Float = Field(1.0, ge=0.25, le=4)
    instructions: str | None = None  # accepted, not used (GPT-SoVITS takes its style from the reference)
    stream_format: Literal["audio", "sse"] | None = None
    stream: bool | None = None  # fastsovits: False asks for one complete file
    language: str | None = None  # text language (default: the voice's)
    streaming_mode: bool = False  # token-chunk streaming inside a sentence (when the engine has it)


class VoiceCreate(BaseModel):
    """JSON form of ``POST /v1/voices`` (the multipart form has the same fields, ``audio`` as a file)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    audio: str  # base64 of the clip's file bytes
    text: str | None = None
    language: str | None = None
    aux: list[str] = []  # base64 clips averaged into the style
    model: str | None = None
    replace: bool = False


def check_sizes(body: BaseModel, config: ServerConfig) -> None:
    """Every client string bounded (texts by ``max_text_chars``, the rest by ``max_field_chars``), lists counted."""
    for name, value in body:
        if isinstance(value, dict):  # OpenAI's voice object: only its id is used
            value = value.get("id")
            if value is not None and not isinstance(value, str):
                raise InvalidParameter(f"{name}.id must be a string")
        values = value if isinstance(value, list) else [value]
        for item in values:
            if not isinstance(item, str):
                continue
            if name in TEXT_FIELDS:
                if len(item) > config.max_text_chars:
                    raise TextTooLong(f"{name} has {len(item)} characters; this server accepts "
                                      f"{config.max_text_chars} (--max-text-chars)")
            elif len(item) > config.max_field_chars:
                raise PayloadTooLarge(f"{name} has {len(item)} characters; this server accepts {config.max_field_chars}")


def api_v2_streaming(value) -> int:
    """api_v2's ``streaming_mode``: False/0 none, True/1 per sentence, 2 token chunks, 3 fixed-length chunks."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        value = {"true": 1, "false": 0}.get(lowered, lowered)
        try:
            value = int(value)
        except ValueError:
            raise InvalidParameter(f"streaming_mode={value!r} must be a bool or 0-3") from None
    value = int(value)
    if value not in (0, 1, 2, 3):
        raise InvalidParameter(f"streaming_mode={value!r} must be a bool or 0-3")
    return value


def to_params(body: _Sampling, config: ServerConfig, **extra) -> SynthesisParams:
    """Server defaults, then the request's fields; only the names ``SynthesisParams`` has are passed."""
    values = {**config.default_params, **body.model_dump(exclude_unset=True), **extra}
    for name in ("text_split_method", "top_k", "top_p", "temperature", "repetition_penalty", "seed"):
        values.setdefault(name, getattr(body, name))  # the schema's defaults (api_v2's cut5) over TTS.run's
    values["max_new_tokens"] = min(values.get("max_new_tokens") or config.max_new_tokens, config.max_new_tokens)
    return SynthesisParams(**{k: v for k, v in values.items() if k in _PARAM_FIELDS})


def streaming_params(mode: int) -> dict:
    """api_v2 streaming modes as ``SynthesisParams`` fields (token chunks only where the engine has them)."""
    out: dict = {}
    if mode == 1:
        out["return_fragment"] = True
    if mode >= 2:
        out["streaming_mode"] = True
    if mode == 3 and "fixed_length_chunk" in _PARAM_FIELDS:
        out["fixed_length_chunk"] = True
    return out
