"""Per-process server settings (what the operator chooses), apart from per-request parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastsovits.limits import MAX_CLIP_SECONDS, MAX_NEW_TOKENS
from fastsovits.voices.validate import VoiceLimits


@dataclass(frozen=True)
class ModelSpec:
    """Files of one resident model: a converted folder (``path``) or official ``gpt``/``sovits`` files
    (v3/v4: and ``vocoder``; a LoRA ``sovits`` and its ``base``)."""

    name: str
    path: str | None = None
    gpt: str | None = None
    sovits: str | None = None
    hubert_dir: str | None = None
    bert_dir: str | None = None
    sv: str | None = None
    version: str | None = None
    vocoder: str | None = None  # v3/v4 with official files: v4 vocoder.pth or the v3 BigVGAN folder
    base: str | None = None  # a v3/v4 LoRA file's base model

    def with_(self, **changes) -> ModelSpec:
        from dataclasses import replace

        return replace(self, **changes)


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 9880
    api_key: str | None = None  # Bearer token required on every route but /healthz and /readyz
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 20 * 1024 * 1024
    max_text_chars: int = 5000
    max_audio_seconds: float = MAX_CLIP_SECONDS  # uploads longer than this are refused before any model sees them
    max_aux_clips: int = 8  # auxiliary reference clips one request may name (api_v2 aux_ref_audio_paths)
    max_clip_bytes: int = 16 * 1024 * 1024  # size of one reference file a client names by path, checked before reading
    max_field_chars: int = 1024  # every string field other than the texts (names, paths, languages, formats)
    max_json_depth: int = 8  # nesting of a JSON body ({ and [), checked before parsing
    queue_limit: int = 64  # requests admitted at once (running + waiting); beyond it 503 + Retry-After
    retry_after_s: int = 1
    request_timeout_s: float = 300.0
    shutdown_timeout_s: float = 30.0
    ref_root: Path | None = None  # the only folder whose files a client may name (api_v2 paths)
    weights_root: Path | None = None  # the only folder /set_gpt_weights and /set_sovits_weights may load from
    voices_file: Path | None = None
    data_dir: Path | None = None  # the voice store's folder (None: $FASTSOVITS_DATA_DIR or the user data folder)
    voice_limits: VoiceLimits = field(default_factory=VoiceLimits)  # a new voice's text, clips and durations
    allow_control: bool = False  # /control?command=exit shuts the server down
    max_models: int = 2  # resident models (LRU)
    max_model_bytes: int | None = None  # memory bound over resident models (weights + KV cache)
    num_slots: int | None = None
    max_len: int | None = None
    device: str = "auto"
    dtype: str = "auto"  # model weights: auto, float32, bfloat16, float16 (as TTS.from_pretrained)
    cuda_graphs: bool | None = None  # T2S step from CUDA graphs (None: on for CUDA), as TTS.from_pretrained
    max_new_tokens: int = MAX_NEW_TOKENS  # cap on semantic tokens per sentence for every request
    default_params: dict = field(default_factory=dict)  # SynthesisParams overrides applied before a request's own
    access_log: bool = False  # one INFO line per request on the 'fastsovits.access' logger
