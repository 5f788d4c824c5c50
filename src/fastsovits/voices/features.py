"""A voice's computed features as bytes (safetensors, never pickle), the model they belong to, and
whether a voice's prompt fits the engine's cache.

The features are the fields of :class:`fastsovits.api.Reference`: prompt tokens, prompt phones,
prompt BERT features and the style vector ``ge`` (v3/v4 voices also their in-context window: prompt
features and normalised reference mel). They depend on the SoVITS model (its quantizer
and style encoder), the HuBERT, BERT and speaker models, the symbol version, the dtype and the
device kind; :func:`model_identity` names that combination from the model files' sizes and
modification times, so features are reused across restarts and recomputed when a file changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from fastsovits.errors import InvalidInput, InvalidParameter, TextTooLong

if TYPE_CHECKING:
    from fastsovits.api import TTS, Reference

log = logging.getLogger(__name__)
FORMAT = "fastsovits-reference/1"
_FIELDS = ("prompt_semantic", "prompt_phones", "prompt_bert", "ge")
_IN_CONTEXT = ("in_context_fea", "in_context_mel")  # v3/v4: InContextPrompt.fea / .mel
MAX_FOLDER_FILES = 10_000  # a model folder listed for its identity; beyond this it is not a model folder
ROLES = ("folder", "sovits", "hubert", "bert", "sv")  # the files the features depend on
MIN_SENTENCE_ROOM = 32  # cache positions a voice must leave for the text it reads (its phones and tokens)


class BadFeatures(InvalidInput):
    """Stored feature bytes that are not what :func:`reference_to_bytes` writes (they are recomputed)."""


def reference_to_bytes(ref: Reference) -> bytes:
    """A ``Reference`` -> safetensors bytes (tensors on the CPU; the device each lived on is noted)."""
    from safetensors.torch import save

    tensors, meta = {}, {"format": FORMAT, "key": ref.key}
    named = {name: getattr(ref, name) for name in _FIELDS}
    if ref.in_context is not None:
        named.update(in_context_fea=ref.in_context.fea, in_context_mel=ref.in_context.mel)
    for name, t in named.items():
        if t is None:
            continue
        tensors[name] = t.detach().to("cpu").contiguous()
        meta[f"{name}.on_model_device"] = "0" if t.device.type == "cpu" else "1"
    return save(tensors, metadata=meta)


def _metadata(data: bytes) -> dict[str, str]:
    if len(data) < 8:
        raise BadFeatures("feature bytes are truncated")
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        raise BadFeatures("feature bytes are truncated")
    try:
        header = json.loads(data[8 : 8 + size])
    except ValueError:
        raise BadFeatures("feature bytes have an unreadable header") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BadFeatures(f"feature bytes are not {FORMAT}")
    return meta


def reference_from_bytes(data: bytes, device: str = "cpu") -> Reference:
    """Safetensors bytes -> ``Reference`` on ``device`` (the tensors that were on the model's device)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    from fastsovits.api import Reference

    meta = _metadata(data)
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise BadFeatures(f"feature bytes cannot be read: {e}") from None
    if "ge" not in tensors or ("prompt_semantic" in tensors) != ("prompt_phones" in tensors):
        raise BadFeatures("feature bytes lack the style vector or half of the prompt")
    for name, t in tensors.items():
        if meta.get(f"{name}.on_model_device") == "1":
            tensors[name] = t.to(device)
    get = tensors.get
    in_context = None
    if any(name in tensors for name in _IN_CONTEXT):
        from fastsovits.models.v3_synthesis import InContextPrompt

        if not all(name in tensors for name in _IN_CONTEXT):
            raise BadFeatures("feature bytes hold half of a v3/v4 in-context window")
        in_context = InContextPrompt(tensors["in_context_fea"], tensors["in_context_mel"], tensors["ge"])
    return Reference(
        meta.get("key", ""),
        get("prompt_semantic"),
        get("prompt_phones"),
        get("prompt_bert"),
        tensors["ge"],
        in_context,
    )


# --------------------------------------------------------------------------------- identity
def _fingerprint(path: str | Path | None) -> list | None:
    """Size and modification time of a file, or of every file under a folder (no content is read)."""
    if path is None:
        return None
    p = Path(path).expanduser()
    try:
        if p.is_file():
            st = p.stat()
            return [str(p.resolve()), st.st_size, st.st_mtime_ns]
        if p.is_dir():
            files = []
            for i, f in enumerate(sorted(x for x in p.rglob("*") if x.is_file())):
                if i >= MAX_FOLDER_FILES:
                    break
                st = f.stat()
                files.append([str(f.relative_to(p)), st.st_size, st.st_mtime_ns])
            return [str(p.resolve()), files]
    except OSError:
        pass
    return [str(path), "missing"]


def model_identity(
    version: str, files: Mapping[str, str | Path | None], dtype: str = "float32", device: str = "cpu"
) -> str:
    """A short stable name for what the features depend on, e.g. ``"v2Pro-1f0c…"``.

    ``files``: the model's files by role (``sovits``, ``hubert``, ``bert``, ``sv``, or ``folder``
    for a converted or pretrained folder); roles left out or ``None`` are the same thing, and a
    ``gpt`` entry is ignored (the GPT model does not change the features).
    """
    from fastsovits import __version__

    unknown = set(files) - set(ROLES) - {"gpt"}
    if unknown:
        raise InvalidParameter(f"model files by role take {list(ROLES)} (and 'gpt', not used), not {sorted(unknown)}")
    named = {role: _fingerprint(p) for role, p in sorted(files.items()) if role in ROLES and p is not None}
    kind = str(device).split(":")[0]
    parts = {
        "fastsovits": __version__,
        "version": version,
        "dtype": str(dtype).replace("torch.", ""),
        "device": kind,
        "files": named,
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]
    return f"{version}-{digest}"


def tts_identity(tts: TTS, files: Mapping[str, str | Path | None]) -> str:
    """:func:`model_identity` of a loaded ``TTS`` (its version, its SoVITS dtype and its device)."""
    dtype = next(tts.synthesizer.parameters()).dtype
    return model_identity(tts.version, files, str(dtype), str(tts.device))


# --------------------------------------------------------------------------------- cache fit
def cache_positions(tts: TTS) -> int:
    """Positions one sentence may use in the engine's KV cache (prompt + text + generated tokens)."""
    return tts.stats().max_len


def prompt_positions(ref: Reference) -> int:
    """Cache positions a voice's prompt takes in every sentence: its phones and its clip's tokens."""
    if ref.prompt_phones is None or ref.prompt_semantic is None:
        return 0
    return int(ref.prompt_phones.numel()) + int(ref.prompt_semantic.numel())


def check_prompt_fits(ref: Reference, text: str | None, positions: int) -> None:
    """Refuse a voice whose prompt leaves fewer than ``MIN_SENTENCE_ROOM`` of ``positions`` for the text
    it will read (every later use would fail or be cut short)."""
    used = prompt_positions(ref)
    if used + MIN_SENTENCE_ROOM <= positions:
        return
    shown = text if text is None or len(text) <= 60 else text[:57] + "..."
    phones = 0 if ref.prompt_phones is None else int(ref.prompt_phones.numel())
    raise TextTooLong(
        f"the voice's text {shown!r} is too long for this model: its {phones} phones and the clip's "
        f"{used - phones} tokens take {used} of the {positions} positions a sentence has, leaving less than "
        f"{MIN_SENTENCE_ROOM} for the text to read; use a shorter voice text (and clip)"
    )
