"""Readers and writers of the official ``logs/<exp>/`` training layout, exact formats.

=========================  ===================================================================
``2-name2text.txt``        one line per item: ``name<TAB>phones<TAB>word2ph<TAB>norm_text``;
                           phones space-separated, word2ph a Python list repr (``[1, 2]``) or
                           ``None`` (every language but zh/yue)
``3-bert/<name>.pt``       zh only: BERT features ``[1024, n_phones]`` (fp16 or fp32)
``4-cnhubert/<name>.pt``   HuBERT features ``[1, 768, T50]`` (fp16 or fp32)
``5-wav32k/<name>``        int16 mono wav at 32 kHz (``name`` keeps the source extension)
``6-name2semantic.tsv``    header ``item_name<TAB>semantic_audio``, rows ``name<TAB>id id ...``
``7-sv_cn/<name>.pt``      v2Pro/ProPlus only: ``[1, 20480]`` speaker-verification features
=========================  ===================================================================

``name`` is the basename of the audio path in the ``.list`` file (``a/b/x.wav`` -> ``x.wav``).
Every writer is atomic: it writes ``<file>.tmp-<pid>`` next to the target then renames it, so a
killed job never leaves a partial file under the final name. Readers raise typed errors:
``MissingResource`` for a missing file, ``InvalidInput`` for content in the wrong format.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from fastsovits.errors import InvalidInput, MissingResource

NAME2TEXT = "2-name2text.txt"
BERT_DIR = "3-bert"
HUBERT_DIR = "4-cnhubert"
WAV_DIR = "5-wav32k"
SEMANTIC = "6-name2semantic.tsv"
SV_DIR = "7-sv_cn"
REPORT = "prepare_report.json"
SEMANTIC_HEADER = "item_name\tsemantic_audio"

SAMPLE_RATE = 32000
BERT_DIM = 1024
SSL_DIM = 768
SV_DIM = 20480
CODEBOOK = 1024  # semantic ids are in [0, CODEBOOK)


# ---- atomic writes ------------------------------------------------------------------------------
@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _read_lines(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise MissingResource(f"{str(path)!r} does not exist: run `fastsovits prepare` first")
    return [ln.rstrip("\r") for ln in path.read_text(encoding="utf-8").split("\n") if ln.strip()]


# ---- 2-name2text.txt ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TextEntry:
    name: str
    phones: list[str]
    word2ph: list[int] | None  # None for languages without BERT alignment (official prints "None")
    norm_text: str

    def to_line(self) -> str:
        for field, value in (("name", self.name), ("norm_text", self.norm_text)):
            if "\t" in value or "\n" in value:
                raise InvalidInput(f"{field} {value!r} must not contain tabs or newlines")
        if not self.phones:
            raise InvalidInput(f"item {self.name!r} has no phones")
        w2p = "None" if self.word2ph is None else repr([int(v) for v in self.word2ph])
        return f"{self.name}\t{' '.join(self.phones)}\t{w2p}\t{self.norm_text}"

    @classmethod
    def from_line(cls, line: str) -> TextEntry:
        parts = line.split("\t")
        if len(parts) != 4:
            raise InvalidInput(f"a {NAME2TEXT} line needs 4 tab-separated fields, got {len(parts)}: {line[:80]!r}")
        name, phones, w2p, norm = parts
        word2ph: list[int] | None = None
        if w2p.strip() != "None":
            try:
                value = ast.literal_eval(w2p)
            except (ValueError, SyntaxError) as e:
                raise InvalidInput(f"bad word2ph {w2p[:40]!r} for {name!r}") from e
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) for v in value):
                raise InvalidInput(f"word2ph for {name!r} must be a list of ints, got {w2p[:40]!r}")
            word2ph = list(value)
        return cls(name=name, phones=phones.split(), word2ph=word2ph, norm_text=norm)


def read_name2text(path: str | Path) -> dict[str, TextEntry]:
    """name -> entry, in file order (a later duplicate name wins, as a dict would in the official loaders)."""
    return {e.name: e for e in (TextEntry.from_line(ln) for ln in _read_lines(path))}


def write_name2text(path: str | Path, entries: Iterable[TextEntry]) -> None:
    _write_text(path, "".join(e.to_line() + "\n" for e in entries))


# ---- 6-name2semantic.tsv ------------------------------------------------------------------------
def read_semantic(path: str | Path) -> dict[str, list[int]]:
    """name -> semantic ids; the first line must be the official header."""
    lines = _read_lines(path)
    if not lines or lines[0] != SEMANTIC_HEADER:
        raise InvalidInput(f"{str(path)!r} must start with the header {SEMANTIC_HEADER!r}")
    out: dict[str, list[int]] = {}
    for line in lines[1:]:
        parts = line.split("\t")
        if len(parts) != 2:
            raise InvalidInput(f"a {SEMANTIC} row needs 2 tab-separated fields: {line[:80]!r}")
        try:
            codes = [int(v) for v in parts[1].split()]
        except ValueError as e:
            raise InvalidInput(f"non-integer semantic ids for {parts[0]!r}") from e
        out[parts[0]] = codes
    return out


def semantic_row(name: str, codes: Iterable[int]) -> str:
    return f"{name}\t{' '.join(str(int(c)) for c in codes)}"


def write_semantic(path: str | Path, rows: Mapping[str, Iterable[int]]) -> None:
    body = [SEMANTIC_HEADER] + [semantic_row(n, c) for n, c in rows.items()]
    _write_text(path, "\n".join(body) + "\n")


# ---- tensors (3-bert, 4-cnhubert, 7-sv_cn) ----------------------------------------------------------
def save_tensor(path: str | Path, tensor: Tensor) -> None:
    with atomic_path(path) as tmp:
        torch.save(tensor.detach().cpu().contiguous(), tmp)


def load_tensor(path: str | Path) -> Tensor:
    path = Path(path)
    if not path.is_file():
        raise MissingResource(f"{str(path)!r} does not exist")
    try:
        t = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file becomes one typed error
        raise InvalidInput(f"cannot read {str(path)!r}: {type(e).__name__}: {e}") from e
    if not isinstance(t, Tensor):
        raise InvalidInput(f"{str(path)!r} holds a {type(t).__name__}, not a tensor")
    return t


def _check(t: Tensor, shape: tuple[int | None, ...], what: str) -> Tensor:
    if t.dim() != len(shape) or any(s is not None and s != d for s, d in zip(shape, t.shape, strict=True)):
        raise InvalidInput(f"{what} must have shape {shape} (None = any), got {tuple(t.shape)}")
    if not t.is_floating_point():
        raise InvalidInput(f"{what} must be floating point, got {t.dtype}")
    return t


def check_bert(t: Tensor, n_phones: int | None = None) -> Tensor:
    return _check(t, (BERT_DIM, n_phones), "BERT features")


def check_hubert(t: Tensor) -> Tensor:
    return _check(t, (1, SSL_DIM, None), "HuBERT features")


def check_sv(t: Tensor) -> Tensor:
    return _check(t, (1, SV_DIM), "SV features")


# ---- 5-wav32k -------------------------------------------------------------------------------------
def write_wav32k(path: str | Path, samples: np.ndarray) -> None:
    """Write int16 (or float in [-1, 1], scaled by 32767) mono samples as a 32 kHz PCM_16 wav."""
    import soundfile as sf

    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise InvalidInput(f"wav32k samples must be 1-D, got shape {samples.shape}")
    if samples.dtype != np.int16:
        samples = np.clip(np.round(samples.astype(np.float64) * 32767.0), -32768, 32767).astype(np.int16)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), samples, SAMPLE_RATE, subtype="PCM_16", format="WAV")


def read_wav32k(path: str | Path) -> np.ndarray:
    """int16 samples of a ``5-wav32k`` file (checks the rate)."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise MissingResource(f"{str(path)!r} does not exist")
    try:
        data, sr = sf.read(str(path), dtype="int16", always_2d=False)
    except Exception as e:  # noqa: BLE001
        raise InvalidInput(f"cannot read {str(path)!r}: {type(e).__name__}: {e}") from e
    if sr != SAMPLE_RATE or data.ndim != 1:
        raise InvalidInput(f"{str(path)!r} must be mono {SAMPLE_RATE} Hz, got {sr} Hz, shape {data.shape}")
    return data


# ---- the experiment folder --------------------------------------------------------------------------
@dataclass(frozen=True)
class ExperimentLayout:
    """Paths of one ``logs/<exp>/`` folder."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def name2text(self) -> Path:
        return self.root / NAME2TEXT

    @property
    def semantic(self) -> Path:
        return self.root / SEMANTIC

    @property
    def report(self) -> Path:
        return self.root / REPORT

    @property
    def bert_dir(self) -> Path:
        return self.root / BERT_DIR

    @property
    def hubert_dir(self) -> Path:
        return self.root / HUBERT_DIR

    @property
    def wav_dir(self) -> Path:
        return self.root / WAV_DIR

    @property
    def sv_dir(self) -> Path:
        return self.root / SV_DIR

    def bert(self, name: str) -> Path:
        return self.bert_dir / f"{name}.pt"

    def hubert(self, name: str) -> Path:
        return self.hubert_dir / f"{name}.pt"

    def wav(self, name: str) -> Path:
        return self.wav_dir / name

    def sv(self, name: str) -> Path:
        return self.sv_dir / f"{name}.pt"

    def make_dirs(self, with_bert: bool = True, with_sv: bool = False) -> None:
        dirs = [self.root, self.hubert_dir, self.wav_dir]
        dirs += [self.bert_dir] if with_bert else []
        dirs += [self.sv_dir] if with_sv else []
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)

    # convenience readers
    def read_name2text(self) -> dict[str, TextEntry]:
        return read_name2text(self.name2text)

    def read_semantic(self) -> dict[str, list[int]]:
        return read_semantic(self.semantic)

    def load_bert(self, name: str, n_phones: int | None = None) -> Tensor:
        return check_bert(load_tensor(self.bert(name)), n_phones)

    def load_hubert(self, name: str) -> Tensor:
        return check_hubert(load_tensor(self.hubert(name)))

    def load_sv(self, name: str) -> Tensor:
        return check_sv(load_tensor(self.sv(name)))

    def read_wav(self, name: str) -> np.ndarray:
        return read_wav32k(self.wav(name))


__all__ = [
    "NAME2TEXT",
    "BERT_DIR",
    "HUBERT_DIR",
    "WAV_DIR",
    "SEMANTIC",
    "SV_DIR",
    "REPORT",
    "SEMANTIC_HEADER",
    "SAMPLE_RATE",
    "BERT_DIM",
    "SSL_DIM",
    "SV_DIM",
    "CODEBOOK",
    "atomic_path",
    "TextEntry",
    "read_name2text",
    "write_name2text",
    "read_semantic",
    "semantic_row",
    "write_semantic",
    "save_tensor",
    "load_tensor",
    "check_bert",
    "check_hubert",
    "check_sv",
    "write_wav32k",
    "read_wav32k",
    "ExperimentLayout",
]
