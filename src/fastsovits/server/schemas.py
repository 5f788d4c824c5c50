"""Request bodies (pydantic, with ranges) and their translation to ``SynthesisParams``.

``TTSRequest`` keeps every official ``api_v2`` field and default (``text_split_method="cut5"``
there, unlike ``TTS.run``); fastsovits additions are marked. ``SpeechRequest`` is OpenAI's
``/v1/audio/speech`` body plus the GPT-SoVITS sampling fields as optional extras.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict

from fastsovits.errors import InvalidParameter, TextTooLong
from fastsovits.params import SynthesisParams
from fastsovits.server.config import ServerConfig
from fastsovits.server.errors import PayloadTooLarge

API_V2_MEDIA = ("wav", "raw", "ogg", "aac", "mp3", "flac", "opus")
OPENAI_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
OPENAI_PCM_RATE = 24000  # OpenAI's pcm is 24 kHz 16-bit little-endian
SplitMethod = Literal["cut0", "cut1", "cut2", "cut3", "cut4", "cut5"]
API_V2_SPLIT_METHOD: SplitMethod = "cut5"  # api_v2's default split method (TTS.run's is cut1)
_PARAM_FIELDS = {f.name for f in fields(SynthesisParams)}
TEXT_FIELDS = ("text", "prompt_text", "input", "instructions")  # bounded by max_text_chars; other strings by
# max_field_chars


def _not_bool(value: object) -> object:
    if isinstance(value, bool):  # JSON true/false is not a number (pydantic's lax mode would read it as 1/0)
        raise ValueError("must be a number, not true/false")
    return value


Int = Annotated[int, BeforeValidator(_not_bool)]
Float = Annotated[float, BeforeValidator(_not_bool)]


class SamplingFields(BaseModel):
    """The GPT-SoVITS sampling fields. Left out, a field takes the server's default, then ``SynthesisParams``'s;
    ranges are checked once, by ``SynthesisParams`` (``fastsovits/limits.py``)."""

    NOT_PARAMS: ClassVar[set[str]] = set()  # fields named like SynthesisParams fields that mean something else
    top_k: Int | None = None
    top_p: Float | None = None
    temperature: Float | None = None
    repetition_penalty: Float | None = None
    text_split_method: SplitMethod = API_V2_SPLIT_METHOD
    fragment_interval: Float | None = None
    seed: Int | None = -1  # api_v2 spells "random" -1 (SynthesisParams takes None or -1)
    noise_scale: Float | None = None  # fastsovits addition (official TTS.run knob)
    max_new_tokens: Int | None = None  # fastsovits addition; capped by the server's --max-new-tokens
    overlap_length: Int | None = None
    min_chunk_length: Int | None = None
    guard: bool | None = None  # fastsovits: the sentence guard (re-generates dropped/looping/runaway sentences)
    max_retries: Int | None = None  # fastsovits: the guard's attempts after the first


class TTSRequest(SamplingFields):
    """``GET/POST /tts`` exactly as ``api_v2`` takes it (plus ``voice``)."""

    model_config = ConfigDict(extra="ignore")
    NOT_PARAMS: ClassVar[set[str]] = {"streaming_mode"}  # api_v2's mode 0-3, mapped by streaming_params
    text: str | None = None
    text_lang: str | None = None
    ref_audio_path: str | None = None
    aux_ref_audio_paths: list[str] | None = None
    prompt_lang: str | None = None
    prompt_text: str = ""
    batch_size: Int | None = None
    batch_threshold: Float | None = None
    split_bucket: bool | None = None
    speed_factor: Float | None = None
    media_type: str = "wav"
    streaming_mode: bool | int | str = False
    parallel_infer: bool | None = None
    sample_steps: Int | None = None
    super_sampling: bool | None = None
    voice: str | None = None  # fastsovits addition: a registered voice instead of ref_audio_path


class SpeechRequest(SamplingFields):
    """OpenAI ``POST /v1/audio/speech``; unknown extra fields are ignored, as OpenAI clients may send more."""

    model_config = ConfigDict(extra="ignore")
    model: str = "tts-1"
    input: str
    voice: str | dict
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: Float | None = None  # OpenAI's speed: our speed_factor
    instructions: str | None = None  # accepted, not used (GPT-SoVITS takes its style from the reference)
    stream_format: Literal["audio", "sse"] | None = None
    stream: bool | None = None  # fastsovits: False asks for one complete file
    language: str | None = None  # text language (default: the voice's)
    streaming_mode: bool = False  # token-chunk streaming inside a sentence (when the engine has it)
    timestamps: bool | None = None  # fastsovits: word timestamps (SSE done event, else the X-Timestamps header)


class VoiceCreate(BaseModel):
    """JSON form of ``POST /v1/audio/voices`` (the multipart form has the same fields, ``audio`` as a file)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    audio: str  # base64 of the clip's file bytes
    text: str | None = None
    language: str | None = None
    aux: list[str] = []  # base64 clips averaged into the style
    model: str | None = None
    replace: bool = False
    type: Literal["audio_sample"] = "audio_sample"  # OpenAI's field: voices are made from an audio sample
    consent: str | None = None  # OpenAI's consent recording id: accepted, not used


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
                    raise TextTooLong(
                        f"{name} has {len(item)} characters; this server accepts "
                        f"{config.max_text_chars} (--max-text-chars)"
                    )
            elif len(item) > config.max_field_chars:
                raise PayloadTooLarge(
                    f"{name} has {len(item)} characters; this server accepts {config.max_field_chars}"
                )


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


def to_params(body: SamplingFields, config: ServerConfig, **extra: object) -> SynthesisParams:
    """Server defaults, then the request's fields, then ``extra``; fields left out keep ``SynthesisParams``'s
    defaults, except the split method (api_v2's ``cut5``). Only the names ``SynthesisParams`` has are passed."""
    given = {k: v for k, v in body.model_dump(exclude=body.NOT_PARAMS).items() if v is not None and k in _PARAM_FIELDS}
    if "seed" not in body.model_fields_set and "seed" in config.default_params:
        given.pop("seed")  # the operator's default seed over api_v2's "random"
    values = {**config.default_params, **given, **{k: v for k, v in extra.items() if v is not None}}
    if "text_split_method" not in body.model_fields_set:
        values["text_split_method"] = config.default_params.get("text_split_method", API_V2_SPLIT_METHOD)
    values["max_new_tokens"] = min(values.get("max_new_tokens") or config.max_new_tokens, config.max_new_tokens)
    return SynthesisParams(**{k: v for k, v in values.items() if k in _PARAM_FIELDS})


def streaming_params(mode: int) -> dict:
    """api_v2 streaming modes as ``SynthesisParams`` fields (token chunks only where the engine has them)."""
    out: dict = {}
    if mode == 1:
        out["return_fragment"] = True
    if mode >= 2:
        out["streaming_mode"] = True
    if mode == 3:
        out["fixed_length_chunk"] = True
    return out
