"""A safe, fast model format: safetensors weights + a JSON config, loaded without any pickle.

``convert(gpt=..., sovits=..., out_dir=...)`` reads official files once (through the restricted
unpickler) and writes ``out_dir/gpt.safetensors``, ``out_dir/sovits.safetensors`` and
``out_dir/config.json`` (our architecture dataclasses, versions, the sha256 of each source file,
the format version). HuBERT/BERT/SV folders are not copied: they are already safe formats
(safetensors/HF folders) and are recorded by path only when given.

``load_converted(dir)`` builds the modules on the ``meta`` device and assigns memory-mapped
safetensors tensors, so peak memory is about one copy of the weights and no pickle is involved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from fastsovits.errors import CheckpointError, MissingResource
from fastsovits.hashing import sha256_file

FORMAT = "fastsovits-converted"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
GPT_FILE = "gpt.safetensors"
SOVITS_FILE = "sovits.safetensors"




def _save(state: dict[str, torch.Tensor], path: Path, dtype: torch.dtype | None) -> None:
    from safetensors.torch import save_file

    tensors = {k: _narrow(v, dtype).contiguous() for k, v in state.items()}
    save_file(tensors, str(path), metadata={"format": FORMAT})


def _narrow(t: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """Store in ``dtype`` only when that loses nothing: weights folded from weight-norm at load
    are fp32 values, which stay fp32 (so converted models compute exactly what the originals do)."""
    if dtype is None or not t.is_floating_point():
        return t
    small = t.to(dtype)
    return small if torch.equal(small.to(t.dtype), t) else t


def convert(
    *,
    out_dir: str | Path,
    gpt: str | Path | None = None,
    sovits: str | Path | None = None,
    sovits_version: str | None = None,
    hubert_dir: str | Path | None = None,
    bert_dir: str | Path | None = None,
    sv: str | Path | None = None,
    dtype: torch.dtype | None = torch.float16,
) -> Path:
    """Convert official GPT/SoVITS files into ``out_dir`` (fp16 where exact, as the official files)."""
    if gpt is None and sovits is None:
        raise MissingResource("convert: give at least one of gpt= or sovits=")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION}
    from fastsovits import __version__

    config["fastsovits_version"] = __version__
    if gpt is not None:
        from fastsovits.checkpoints.gpt import load_gpt

        model, cfg, info = load_gpt(gpt)
        _save(model.state_dict(), out / GPT_FILE, dtype)
        config["gpt"] = {"config": cfg.to_dict(), "max_sec": info.max_sec, "info": info.info,
                         "source": str(gpt), "source_sha256": sha256_file(Path(gpt))}
    if sovits is not None:
        from fastsovits.checkpoints.sovits import load_sovits

        model, cfg, info = load_sovits(sovits, sovits_version)
        _save(model.state_dict(), out / SOVITS_FILE, dtype)
        config["sovits"] = {"config": _jsonable(cfg.to_dict()), "source": str(sovits),
                            "source_sha256": sha256_file(Path(sovits))}
    config["paths"] = {k: str(v) for k, v in (("hubert_dir", hubert_dir), ("bert_dir", bert_dir), ("sv", sv)) if v}
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False), "utf-8")
    return out


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _tuples(obj: Any) -> Any:
    return tuple(_tuples(v) for v in obj) if isinstance(obj, list) else obj


@dataclass
class ConvertedModels:
    """What :func:`load_converted` returns: the modules (or None) and the saved config."""

    t2s: Any
    t2s_config: Any
    sovits: Any
    sovits_config: Any
    config: dict[str, Any]


def _load_tensors(path: Path, device: str | torch.device) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device=str(device))  # memory-mapped
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{str(path)!r} is not a readable safetensors file: {e}") from e


def _assign(model: torch.nn.Module, state: dict[str, torch.Tensor], dtype: torch.dtype, path: Path) -> None:
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as e:
        raise CheckpointError(f"{str(path)!r} does not match its config: {e}") from e


def load_converted(
    directory: str | Path, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> ConvertedModels:
    """Load a converted folder without any pickle (models built on ``meta``, weights assigned)."""
    from fastsovits.models.sovits import SovitsConfig, Synthesizer
    from fastsovits.models.t2s import T2SConfig, Text2Semantic

    d = Path(directory)
    cfg_path = d / CONFIG_FILE
    if not cfg_path.is_file():
        raise MissingResource(f"{d} has no {CONFIG_FILE}: not a converted fastsovits folder")
    try:
        config = json.loads(cfg_path.read_text("utf-8"))
    except ValueError as e:
        raise CheckpointError(f"{cfg_path}: invalid JSON: {e}") from e
    if config.get("format") != FORMAT or config.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{cfg_path}: not a {FORMAT} v{FORMAT_VERSION} folder")
    t2s = t2s_cfg = synth = synth_cfg = None
    if "gpt" in config:
        t2s_cfg = T2SConfig.from_dict(config["gpt"]["config"])
        with torch.device("meta"):
            t2s = Text2Semantic(t2s_cfg)
        _assign(t2s, _load_tensors(d / GPT_FILE, device), dtype, d / GPT_FILE)
        t2s.reset_tables()
        t2s = t2s.to(device).eval()
    if "sovits" in config:
        raw = config["sovits"]["config"]
        names = {f.name for f in fields(SovitsConfig)}
        synth_cfg = SovitsConfig(**{k: (v if k == "extra" else _tuples(v)) for k, v in raw.items() if k in names})
        with torch.device("meta"):
            synth = Synthesizer(synth_cfg, with_posterior=False)
        _assign(synth, _load_tensors(d / SOVITS_FILE, device), dtype, d / SOVITS_FILE)
        synth = synth.to(device).eval()
    return ConvertedModels(t2s, t2s_cfg, synth, synth_cfg, config)
