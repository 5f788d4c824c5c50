"""The converted (pickle-free) format for v3/v4 models: safetensors + JSON, LoRA already merged.

``convert_v3(out_dir, sovits=..., base=..., vocoder=...)`` (or ``convert(..., sovits=<v3/v4 file>)``,
which ``fastsovits convert`` calls) reads an official v3/v4 ``.pth`` (a LoRA
file is merged over its base) and optionally its vocoder (v4 ``vocoder.pth`` or the v3 BigVGAN
folder) once, through the restricted unpickler, and writes into ``out_dir``:

* ``sovits_v3.safetensors``: our state dict (fp16 where exact, fp32 where not: folded weight norm,
  merged LoRA weights), so the converted model computes what the loaded one does;
* ``vocoder.safetensors`` (when a vocoder is given);
* ``sovits_v3.json``: format tag, architecture (:class:`SovitsV3Config`), vocoder kind and config,
  the sha256 of every source file.

``load_converted_v3(out_dir)`` builds the modules on the ``meta`` device and assigns the tensors; no
pickle is involved. The files live beside the ``config.json`` of :mod:`fastsovits.checkpoints.convert`
(which holds the GPT, if any, the HuBERT/BERT paths and a ``sovits_v3`` summary), so one folder holds
a complete v3/v4 model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fastsovits.checkpoints.convert import _assign, _load_tensors, _save, _tuples
from fastsovits.errors import CheckpointError, MissingResource
from fastsovits.hashing import sha256_file
from fastsovits.models.bigvgan import BigVGAN, BigVGANConfig
from fastsovits.models.dit import DiTConfig, text_position_table
from fastsovits.models.sovits_v3 import SovitsV3Config, SynthesizerV3

FORMAT = "fastsovits-converted-v3"
FORMAT_VERSION = 1
CONFIG_FILE = "sovits_v3.json"
SOVITS_FILE = "sovits_v3.safetensors"
VOCODER_FILE = "vocoder.safetensors"


@dataclass
class ConvertedV3:
    model: SynthesizerV3
    config: SovitsV3Config
    vocoder: nn.Module | None
    meta: dict[str, Any]


def _config_from(d: dict[str, Any]) -> SovitsV3Config:
    names = {f.name for f in fields(SovitsV3Config)}
    kw = {k: v for k, v in d.items() if k in names and k != "dit"}
    return SovitsV3Config(dit=DiTConfig(**d["dit"]), **kw)


def convert_v3(
    *,
    out_dir: str | Path,
    sovits: str | Path,
    version: str | None = None,
    base: str | Path | None = None,
    vocoder: str | Path | None = None,
    dtype: torch.dtype | None = torch.float16,
) -> Path:
    """Convert an official v3/v4 SoVITS file (LoRA merged over ``base``) and its vocoder into ``out_dir``.

    The same as :func:`fastsovits.checkpoints.convert.convert` with only a v3/v4 SoVITS file: the folder
    is written complete or not at all, and a file that is not v3/v4 is a ``CheckpointError``.
    """
    from fastsovits.checkpoints.convert import convert
    from fastsovits.checkpoints.v3_files import v3_version_of

    if Path(sovits).exists() and v3_version_of(sovits, version) is None:
        raise CheckpointError(f"{Path(sovits).name!r} is not a SoVITS v3/v4 file (use convert)")
    return convert(out_dir=out_dir, sovits=sovits, sovits_version=version, base=base, vocoder=vocoder, dtype=dtype)


def write_v3(
    out: Path,
    sovits: str | Path,
    version: str | None,
    base: str | Path | None,
    vocoder: str | Path | None,
    dtype: torch.dtype | None,
) -> dict[str, Any]:
    """Write the v3/v4 files into the (temporary) folder ``out``; returns the summary for ``config.json``."""
    from fastsovits.checkpoints.sovits_v3 import load_sovits_v3
    from fastsovits.checkpoints.vocoders import load_vocoder, vocoder_kind

    model, config, info = load_sovits_v3(sovits, version, base=base)
    voc: nn.Module | None = None
    if vocoder is not None:  # checked before the SoVITS file is written
        voc = load_vocoder(vocoder, config.version)
    _save(model.state_dict(), out / SOVITS_FILE, dtype)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sovits": {
            "config": asdict(config),
            "is_lora": info.is_lora,
            "source": str(Path(sovits).resolve()),
            "source_sha256": sha256_file(Path(sovits)),
        },
    }
    if base is not None and info.is_lora:
        meta["sovits"]["base_sha256"] = sha256_file(Path(base))
    kind = None
    if vocoder is not None and voc is not None:
        vpath = Path(vocoder)
        kind = vocoder_kind(vpath)
        if isinstance(voc, BigVGAN):
            meta["vocoder"] = {"kind": "bigvgan", "config": asdict(voc.config)}
            src = vpath / "bigvgan_generator.pt"
        else:
            state = voc.state_dict()
            kernels = [int(state[f"resblocks.{j}.dilated.0.weight"].shape[2]) for j in range(3)]
            channels = int(state["conv_in.weight"].shape[0])
            meta["vocoder"] = {"kind": "v4", "initial_channel": channels, "resblock_kernels": kernels}
            src = vpath
        meta["vocoder"]["source_sha256"] = sha256_file(src)
        _save(voc.state_dict(), out / VOCODER_FILE, dtype)
    (out / CONFIG_FILE).write_text(json.dumps(meta, indent=2), "utf-8")
    return {"version": config.version, "is_lora": info.is_lora, "vocoder": kind, "file": CONFIG_FILE}


_LAYER_KEYS = ("depth", "n_layers", "wns1_layers", "conv_layers")
_MAX_LAYERS = 256
_MAX_INT = 65_536


def _bounded(obj: Any, where: str) -> None:
    """Every architecture integer of an untrusted ``sovits_v3.json`` within a range that keeps building cheap."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        name = f"{where}.{key}"
        if isinstance(value, (dict, list)):
            if key != "extra":
                _bounded(value, name)
        elif isinstance(value, int) and not isinstance(value, bool):
            top = _MAX_LAYERS if key in _LAYER_KEYS else _MAX_INT
            if not 0 <= value <= top:
                raise CheckpointError(f"{CONFIG_FILE}: {name} must be an integer in [0, {top}], got {value}")


def read_meta(directory: str | Path) -> dict[str, Any]:
    """The checked ``sovits_v3.json`` of a converted folder (``MissingResource`` without one)."""
    d = Path(directory)
    path = d / CONFIG_FILE
    if not path.is_file():
        raise MissingResource(f"{d.name} has no {CONFIG_FILE}: not a converted v3/v4 folder")
    try:
        meta = json.loads(path.read_text("utf-8"))
    except (ValueError, OSError) as e:
        raise CheckpointError(f"{path.name}: invalid JSON: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path.name}: not a {FORMAT} v{FORMAT_VERSION} file")
    sovits = meta.get("sovits")
    if not isinstance(sovits, dict) or not isinstance(sovits.get("config"), dict):
        raise CheckpointError(f"{path.name}: no sovits.config object")
    if sovits["config"].get("version") not in ("v3", "v4"):
        raise CheckpointError(f"{path.name}: sovits.config.version must be v3 or v4")
    vocoder = meta.get("vocoder")
    if vocoder is not None and (not isinstance(vocoder, dict) or vocoder.get("kind") not in ("bigvgan", "v4")):
        raise CheckpointError(f"{path.name}: vocoder must be an object of kind bigvgan or v4")
    _bounded(sovits["config"], "sovits.config")
    _bounded(vocoder or {}, "vocoder")
    return meta


def load_converted_v3(
    directory: str | Path, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> ConvertedV3:
    """Load what :func:`convert_v3` wrote, without any pickle."""
    from fastsovits.checkpoints.vocoders import build_v4_vocoder

    d = Path(directory)
    meta = read_meta(d)
    path = d / CONFIG_FILE
    try:
        config = _config_from(meta["sovits"]["config"])
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path.name}: unusable converted v3/v4 config: {e}") from e
    with torch.device("meta"):
        model = SynthesizerV3(config)
    _assign(model, _load_tensors(d / SOVITS_FILE, device), dtype, d / SOVITS_FILE)
    model.cfm.estimator.text_embed.freqs_cis = text_position_table(config.dit.text_dim)
    model = model.to(device).eval()
    voc: nn.Module | None = None
    v = meta.get("vocoder")
    if v is not None:
        try:
            with torch.device("meta"):
                if v["kind"] == "bigvgan":
                    voc = BigVGAN(BigVGANConfig(**{k: _tuples(x) for k, x in v["config"].items()}))
                else:
                    voc = build_v4_vocoder(int(v["initial_channel"]), tuple(v["resblock_kernels"]))
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path.name}: unusable vocoder entry: {e}") from e
        _assign(voc, _load_tensors(d / VOCODER_FILE, device), dtype, d / VOCODER_FILE)
        voc = voc.to(device).eval()
    return ConvertedV3(model, config, voc, meta)
