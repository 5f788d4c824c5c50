"""The WebUI's settings: one dataclass, built once from the command line, read by every tab.

Every limit on what a browser may ask for lives here (one source per limit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastsovits.limits import MAX_NEW_TOKENS

MAX_TEXT_CHARS = 5000  # target text per synthesis
MAX_REF_SECONDS = 30.0  # longest reference upload accepted (the engine wants 3-10 s)
MAX_AUX_REFS = 8  # auxiliary references averaged into the timbre
MAX_BATCH_LINES = 2000  # lines of one batch upload
MAX_UPLOAD_BYTES = 200 * 2**20  # any single uploaded file
MAX_TRAIN_CLIPS = 5000  # clips one fine-tuning experiment may hold
MAX_EPOCHS = 100
LOG_TAIL_LINES = 40


@dataclass(frozen=True)
class WebUIConfig:
    models_dir: Path  # scanned for GPT .ckpt, SoVITS .pth, converted folders and shared components
    data_dir: Path  # voices, batch outputs, fine-tuning experiments, exported models (writable)
    roots: tuple[Path, ...] = ()  # folders whose paths may be typed into the UI (the data dir is always one)
    host: str = "127.0.0.1"
    port: int = 9874
    share: bool = False
    auth: tuple[str, str] | None = None
    language: str = "en"  # UI text: en or zh
    device: str = "auto"
    dtype: str = "auto"
    num_slots: int | None = None  # KV-cache slots per loaded model (None: sized from free memory)
    max_len: int | None = None
    max_models: int = 2  # resident models (LRU; a model in use is never evicted)
    max_new_tokens: int = MAX_NEW_TOKENS  # cap on semantic tokens per sentence
    whisper_dir: Path | None = None  # a faster-whisper model folder for the transcribe step
    train_device: str = "auto"
    extra_model_dirs: tuple[Path, ...] = field(default_factory=tuple)
    voice_data_dir: Path | None = None  # the voice store shared with `fastsovits serve` (None: its default)

    @property
    def voices_dir(self) -> Path:
        return self.data_dir / "voices"

    @property
    def exports_dir(self) -> Path:
        """Fine-tuned models land here; scanned like --models."""
        return self.data_dir / "models"

    @property
    def experiments_dir(self) -> Path:
        return self.data_dir / "experiments"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def allowed_roots(self) -> tuple[Path, ...]:
        return tuple(p.resolve() for p in (self.data_dir, self.models_dir, *self.roots))

    def model_dirs(self) -> tuple[Path, ...]:
        return (self.models_dir, self.exports_dir, *self.extra_model_dirs)
