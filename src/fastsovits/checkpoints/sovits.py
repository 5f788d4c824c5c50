"""Official SoVITS (s2) ``.pth`` files <-> :class:`fastsovits.models.sovits.Synthesizer`.

File layout (official ``process_ckpt.savee``): ``{"weight": {key: fp16, no "enc_q.*"}, "config":
<pickled utils.HParams>, "info": "<epoch>epoch_<step>iteration"}``. Weight-normalised convs are
stored as ``<name>.weight_g`` ``[out, 1, 1]`` + ``<name>.weight_v``; we fold them into one weight
``w = v * (g / ||v||)`` (norm over every dim but 0) at load and split them again at export
(``v = w``, ``g = ||w||``). v2Pro/v2ProPlus files replace the zip's leading ``PK`` by ``05``/``06``.

Version detection follows the official order: MD5 of the first 8 KiB against the shipped
pretrained files, then the two-byte header, then the file size; the symbol table is then read off
``enc_p.text_embedding.weight`` (322 rows: v1, otherwise v2), which also fixes the model version of
non-Pro files.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import types
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from fastsovits.checkpoints.common import HPARAMS_GLOBAL, HParamsStandIn, read_torch_file
from fastsovits.checkpoints.sovits_keys import (
    KeyEntry,
    key_entries,
    norm_except_first,
    official_layout,
    official_state_dict,
)
from fastsovits.errors import CheckpointError, InvalidParameter, MissingResource
from fastsovits.models.sovits import N_SYMBOLS, PRO_VERSIONS, VERSIONS, SovitsConfig, Synthesizer, as_plain_dict

__all__ = [
    "KeyEntry",
    "SovitsInfo",
    "detect_sovits_version",
    "detect_sovits_version_fast",
    "export_sovits",
    "fold_weight_norm",
    "key_entries",
    "load_sovits",
    "official_layout",
    "official_state_dict",
]

# MD5 of the first 8192 bytes of the official pretrained generators -> (symbols, model, is_lora)
KNOWN_FILE_MD5: dict[str, tuple[str, str, bool]] = {
    "dc3c97e17592963677a4a1681f30c653": ("v2", "v2", False),  # s2G488k.pth (really v1; fixed by the row count)
    "43797be674a37c1c83ee81081941ed0f": ("v2", "v3", False),  # s2Gv3.pth
    "6642b37f3dbb1f76882b69937c95a5f3": ("v2", "v2", False),  # s2G2333k.pth
    "4f26b9476d0c5033e04162c486074374": ("v2", "v4", False),  # gsv-v4-pretrained/s2Gv4.pth
    "c7e9fce2223f3db685cdfa1e6368728a": ("v2", "v2Pro", False),  # v2Pro/s2Gv2Pro.pth
    "66b313e39455b57ab1b0bc0b239c9d0a": ("v2", "v2ProPlus", False),  # v2Pro/s2Gv2ProPlus.pth
}
HEADER_VERSIONS: dict[bytes, tuple[str, str, bool]] = {
    b"00": ("v1", "v1", False),
    b"01": ("v2", "v2", False),
    b"02": ("v2", "v3", False),
    b"03": ("v2", "v3", True),
    b"04": ("v2", "v4", True),
    b"05": ("v2", "v2Pro", False),
    b"06": ("v2", "v2ProPlus", False),
}
VERSION_HEADERS = {"v2Pro": b"05", "v2ProPlus": b"06"}  # what export writes instead of b"PK"
V1_MAX_BYTES = 82978 * 1024  # legacy PK files smaller than this are v1
V2_MAX_BYTES = 700 * 1024 * 1024  # ... smaller than this v2, larger ones v3
HASHED_BYTES = 8192
TEXT_EMBEDDING = "enc_p.text_embedding.weight"
SKIPPED_PREFIX = "enc_q."  # the posterior encoder: training only, never in exported files


@dataclass
class SovitsInfo:
    """What an official SoVITS file says besides its weights."""

    symbol_version: str  # "v1" / "v2"
    model_version: str  # "v1", "v2", "v2Pro", "v2ProPlus"
    is_lora: bool
    header_tag: str | None  # e.g. "05" when the file did not start with "PK"
    info: str | None  # e.g. "8epoch_96iteration"
    official_config: dict[str, Any] = field(default_factory=dict)  # the whole hps as nested dicts


def fold_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """w = v * (g / ||v||), the norm taken over every dim but 0 (legacy ``weight_norm``, dim 0)."""
    return v * (g / norm_except_first(v))


# ---- version detection ---------------------------------------------------------------------------
def _read_head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(HASHED_BYTES)
    except FileNotFoundError as e:
        raise MissingResource(f"SoVITS file {str(path)!r} does not exist") from e
    except OSError as e:
        raise CheckpointError(f"cannot read SoVITS file {str(path)!r}: {e}") from e


def detect_sovits_version_fast(path: str | Path) -> tuple[str, str, bool]:
    """The official fast detection (hash, header, size) without reading the weights."""
    path = Path(path)
    head = _read_head(path)
    known = KNOWN_FILE_MD5.get(hashlib.md5(head).hexdigest())
    if known is not None:
        return known
    tag = head[:2]
    if tag != b"PK":
        if tag not in HEADER_VERSIONS:
            raise CheckpointError(
                f"{str(path)!r} starts with {tag!r}: neither a zip ('PK') nor a known SoVITS version tag "
                f"{sorted(t.decode() for t in HEADER_VERSIONS)}"
            )
        return HEADER_VERSIONS[tag]
    size = path.stat().st_size
    if size < V1_MAX_BYTES:
        return ("v1", "v1", False)
    if size < V2_MAX_BYTES:
        return ("v2", "v2", False)
    return ("v2", "v3", False)


def _refine(fast: tuple[str, str, bool], weight: Mapping[str, Any]) -> tuple[str, str, bool]:
    """Symbol version from the text-embedding rows; non-Pro v1/v2 models follow it."""
    _, model_version, is_lora = fast
    emb = weight.get(TEXT_EMBEDDING)
    symbols = "v1" if isinstance(emb, torch.Tensor) and emb.shape[0] == N_SYMBOLS["v1"] else "v2"
    if model_version in ("v3", "v4") or model_version in PRO_VERSIONS:
        return symbols, model_version, is_lora
    return symbols, symbols, is_lora


def detect_sovits_version(path: str | Path) -> tuple[str, str, bool]:
    """(symbol_version, model_version, is_lora) as the official loader ends up with them.

    Reads the file (through the restricted unpickler) to count the text-embedding rows.
    """
    fast = detect_sovits_version_fast(path)
    obj, _ = _read_checked(Path(path))
    return _refine(fast, obj["weight"])


# ---- loading -----------------------------------------------------------------------------------
def _describe_kind(obj: Any) -> str | None:
    """A sentence naming what the file is, if it is clearly not an official SoVITS file."""
    if not isinstance(obj, Mapping):
        return f"it holds a {type(obj).__name__}, not a dict with 'weight' and 'config'"
    weight = obj.get("weight")
    if not isinstance(weight, Mapping):
        tensors = [str(k) for k, v in obj.items() if isinstance(v, torch.Tensor)]
        if tensors:
            return f"it is a bare state_dict (keys like {tensors[:3]}), not an exported SoVITS .pth"
        return f"it has no 'weight' dict (top-level keys: {sorted(map(str, obj))[:8]})"
    keys = [str(k) for k in weight]
    if keys and all(k.startswith("model.") for k in keys):
        return f"its weights are GPT (s1) keys such as {keys[:2]}: this is a GPT .ckpt, not a SoVITS .pth"
    if "dec.conv_pre.weight" not in weight and "cfm.estimator.time_embed.time_mlp.0.weight" not in weight:
        return f"its weights lack SoVITS keys such as 'dec.conv_pre.weight' (found e.g. {keys[:3]})"
    if not isinstance(obj.get("config"), (HParamsStandIn, Mapping)):
        return f"its 'config' is a {type(obj.get('config')).__name__}, not the utils.HParams object"
    return None


def _read_checked(path: Path) -> tuple[dict, str | None]:
    loaded = read_torch_file(path, extra={HPARAMS_GLOBAL: HParamsStandIn})
    problem = _describe_kind(loaded.obj)
    if problem is not None:
        raise CheckpointError(f"{str(path)!r} is not an official SoVITS (s2) file: {problem}")
    return loaded.obj, loaded.header_tag


def remap_state_dict(
    weight: Mapping[str, Any], entries: Sequence[KeyEntry], version: str, where: str, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """An official SoVITS ``weight`` dict -> our state dict: every key checked (present, floating, shape),
    weight norm folded, cast to ``dtype``. ``entries`` map official names to ours (v1-v2ProPlus or v3/v4)."""
    wanted = {e.official: e for e in entries}
    present = {str(k) for k in weight if not str(k).startswith(SKIPPED_PREFIX)}
    missing = [k for k in wanted if k not in present]
    unexpected = sorted(k for k in present if k not in wanted)
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: weights do not match SoVITS {version}: missing {len(missing)} keys "
            f"{missing[:4]}, unexpected {len(unexpected)} keys {unexpected[:4]}"
        )
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, e in wanted.items():
        t = weight[key]
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise CheckpointError(f"{where}: {key!r} is not a floating tensor ({type(t).__name__})")
        if tuple(t.shape) != e.shape:
            raise CheckpointError(
                f"{where}: {key!r} has shape {tuple(t.shape)}, SoVITS {version} with this config needs {e.shape}"
            )
        parts.setdefault(e.ours, {})[e.kind] = t.to(torch.float32)
    return {
        ours: (fold_weight_norm(p["g"], p["v"]) if "g" in p else p["plain"]).to(dtype).contiguous()
        for ours, p in parts.items()
    }


def load_sovits(
    path: str | Path,
    version: str | None = None,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    with_posterior: bool = False,
) -> tuple[Synthesizer, SovitsConfig, SovitsInfo]:
    """Load an official SoVITS v1/v2/v2Pro/v2ProPlus ``.pth`` (fp16 -> ``dtype``) in eval mode.

    ``version`` forces the model version (as the official harness does for files it cannot
    detect); otherwise it is detected. ``with_posterior`` adds a freshly initialised posterior
    encoder (training), which the files never contain.
    """
    path = Path(path)
    if version is not None and version not in VERSIONS:
        raise InvalidParameter(f"SoVITS version must be one of {VERSIONS}, got {version!r}")
    fast = detect_sovits_version_fast(path)
    obj, tag = _read_checked(path)
    symbols, model_version, is_lora = _refine(fast, obj["weight"])
    if version is not None:
        model_version = version
        if (symbols == "v1") != (version == "v1"):
            raise CheckpointError(
                f"{str(path)!r}: version {version!r} was requested but the text embedding has "
                f"{obj['weight'][TEXT_EMBEDDING].shape[0]} rows (symbol table {symbols})"
            )
    if any(str(k).startswith("cfm.") for k in obj["weight"]):
        raise CheckpointError(
            f"{str(path)!r} has cfm.* weights: it is a SoVITS v3/v4 file; load it with "
            "fastsovits.checkpoints.sovits_v3.load_sovits_v3"
        )
    if is_lora or model_version not in VERSIONS or "lora_rank" in obj:
        raise CheckpointError(
            f"{str(path)!r} is a SoVITS {model_version}{' LoRA' if is_lora else ''} file; only "
            f"{', '.join(VERSIONS)} are supported"
        )
    hps = as_plain_dict(obj["config"])
    try:
        config = SovitsConfig.from_official(hps, model_version)
    except (InvalidParameter, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{str(path)!r}: unusable SoVITS config: {e}") from e
    config = replace(config, semantic_frame_rate="25hz")  # the official loader forces it
    with torch.device("meta"):
        model = Synthesizer(config, with_posterior=False)
    state = remap_state_dict(obj["weight"], key_entries(model), model.config.version, repr(str(path)), dtype)
    model.load_state_dict(state, strict=True, assign=True)
    if with_posterior:
        model.posterior = model.build_posterior().to(dtype)
    model = model.to(device).eval()
    info = obj.get("info")
    return (
        model,
        config,
        SovitsInfo(
            symbol_version=symbols,
            model_version=model_version,
            is_lora=is_lora,
            header_tag=tag,
            info=str(info) if info is not None else None,
            official_config=hps if isinstance(hps, dict) else {},
        ),
    )


# ---- export ------------------------------------------------------------------------------------
class _HParamsOut:
    """Written to the pickle as ``utils.HParams`` (attributes in ``__dict__``), like the official config."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        for k, v in values.items():
            setattr(self, k, _HParamsOut(v) if isinstance(v, Mapping) else v)


class _HParamsPickler(pickle._Pickler):  # the pure-Python pickler lets us name the class's global
    def save_global(self, obj: Any, name: str | None = None) -> None:
        if obj is _HParamsOut:
            self.write(pickle.GLOBAL + b"utils\nHParams\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def _pickle_module() -> types.ModuleType:
    mod = types.ModuleType("fastsovits_hparams_pickle")
    mod.Pickler = _HParamsPickler  # type: ignore[attr-defined]
    return mod


def default_official_config(config: SovitsConfig) -> dict[str, Any]:
    """A minimal official ``hps`` (train/data/model) that the official loader accepts."""
    return {
        "train": {"segment_size": config.segment_frames * config.hop_length},
        "data": {
            "sampling_rate": config.sampling_rate,
            "filter_length": config.filter_length,
            "hop_length": config.hop_length,
            "win_length": config.win_length,
            "n_speakers": 300,
        },
        "model": {},
    }


def export_sovits(
    model: Synthesizer,
    config: SovitsConfig,
    path: str | Path,
    version: str | None = None,
    *,
    info: str = "0epoch_0iteration",
    official_config: Mapping[str, Any] | None = None,
) -> None:
    """Write ``model`` as an official SoVITS file: fp16, no posterior, ``utils.HParams`` config,
    header ``05``/``06`` for v2Pro/v2ProPlus (``PK`` otherwise).

    ``official_config``: an ``hps`` to carry over (e.g. ``SovitsInfo.official_config``); its
    ``model`` section is replaced by ``config``.
    """
    version = version or config.version
    if version != config.version or model.config != config:
        raise InvalidParameter(
            f"export_sovits: version {version!r} / model config {model.config.version!r} do not match "
            f"config {config.version!r}"
        )
    hps = dict(as_plain_dict(official_config) if official_config is not None else default_official_config(config))
    hps["model"] = {**dict(hps.get("model") or {}), **config.to_official()}
    hps["version"] = version
    obj = OrderedDict(weight=dict(official_state_dict(model)), config=_HParamsOut(hps), info=info)
    buf = io.BytesIO()
    torch.save(obj, buf, pickle_module=_pickle_module(), pickle_protocol=2)
    data = buf.getvalue()
    header = VERSION_HEADERS.get(version)
    if header is not None:
        data = header + data[2:]
    tmp = Path(f"{path}.partial-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
