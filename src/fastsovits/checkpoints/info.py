"""Describe a checkpoint or model folder: kind, version, sizes, languages (``fastsovits info``), and
what kind of SoVITS or vocoder file a file is (``fastsovits detect``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastsovits.errors import CheckpointError, MissingResource
from fastsovits.text.frontend import MODES

if TYPE_CHECKING:
    from fastsovits.checkpoints.common import TorchFile


def _languages(symbol_version: str) -> list[str]:
    return list(MODES[symbol_version])


_NEEDS = {
    "v3": ("s2Gv3.pth", "the BigVGAN folder models--nvidia--bigvgan_v2_24khz_100band_256x"),
    "v4": ("gsv-v4-pretrained/s2Gv4.pth", "gsv-v4-pretrained/vocoder.pth"),
}


def _read_any(p: Path) -> TorchFile | None:
    """The file read once through the restricted unpickler, or None when it is not a readable torch file."""
    from fastsovits.checkpoints.common import HPARAMS_GLOBAL, HParamsStandIn, read_torch_file

    try:
        return read_torch_file(p, extra={HPARAMS_GLOBAL: HParamsStandIn})
    except CheckpointError:
        return None


def _is_v4_vocoder(obj: Any) -> bool:
    return isinstance(obj, Mapping) and "conv_pre.weight" in obj and "weight" not in obj


def _vocoder_of(p: Path, loaded: TorchFile | None = None) -> str | None:
    """``"bigvgan"`` / ``"v4"`` when ``p`` is a v3/v4 vocoder (folder or bare state dict), else None."""
    from fastsovits.checkpoints.common import read_torch_file
    from fastsovits.checkpoints.vocoders import BIGVGAN_CONFIG, BIGVGAN_WEIGHTS

    if p.is_dir():
        return "bigvgan" if (p / BIGVGAN_CONFIG).is_file() and (p / BIGVGAN_WEIGHTS).is_file() else None
    obj = (loaded or read_torch_file(p)).obj
    return "v4" if _is_v4_vocoder(obj) else None


def detect(path: str | Path) -> dict[str, Any]:
    """What an official SoVITS ``.pth`` (v1-v4, plain or LoRA) or a v3/v4 vocoder is (``fastsovits detect``)."""
    from fastsovits.checkpoints.common import HPARAMS_GLOBAL, HParamsStandIn, read_torch_file
    from fastsovits.checkpoints.v3_files import inspect_sovits
    from fastsovits.checkpoints.vocoders import VOCODER_KINDS

    p = Path(path)
    if not p.exists():
        raise MissingResource(f"{p}: not found")
    loaded = None if p.is_dir() else read_torch_file(p, extra={HPARAMS_GLOBAL: HParamsStandIn})
    kind = _vocoder_of(p, loaded)
    if kind is not None:
        version = next(v for v, k in VOCODER_KINDS.items() if k == kind)
        return {"file": str(p), "kind": "vocoder", "vocoder": kind, "for_version": version}
    if p.is_dir():
        raise MissingResource(f"{p} is a folder but not a BigVGAN vocoder folder; detect reads one file")
    return {"file": str(p), "kind": "SoVITS", **inspect_sovits(p, loaded).to_dict()}


def _describe_vocoder(p: Path, kind: str) -> dict[str, Any]:
    from fastsovits.checkpoints.vocoders import VOCODER_KINDS, load_vocoder

    version = next(v for v, k in VOCODER_KINDS.items() if k == kind)
    model = load_vocoder(p, version)
    rate = model.config.sampling_rate if kind == "bigvgan" else 48000  # type: ignore[union-attr]
    return {
        "kind": "vocoder",
        "path": str(p),
        "vocoder": kind,
        "for_version": version,
        "sampling_rate": rate,
        "parameters": sum(t.numel() for t in model.parameters()),
    }


def _describe_v3(p: Path, size_mb: float, loaded: TorchFile) -> dict[str, Any]:
    from fastsovits.checkpoints.v3_files import inspect_sovits

    found = inspect_sovits(p, loaded)
    weight = loaded.obj["weight"]
    version = found.model_version
    out: dict[str, Any] = {
        "kind": "SoVITS",
        "path": str(p),
        "size_mb": size_mb,
        "version": version,
        "lora": found.is_lora,
        "lora_rank": found.lora_rank,
        "values_in_file": sum(t.numel() for t in weight.values() if hasattr(t, "numel")),
        "languages": _languages("v2"),
        "info": found.info,
    }
    if version is None:
        out["recorded_version"] = found.recorded_version
        out["note"] = "the official detection cannot tell v3 from v4 here: give the version (--sovits-version)"
    base, vocoder = _NEEDS.get(version or found.recorded_version or "", ("the v3/v4 base", "its vocoder"))
    out["needs"] = ([f"base model {base}"] if found.is_lora else []) + [f"vocoder {vocoder}"]
    return out


def _describe_folder(p: Path) -> dict[str, Any]:
    from fastsovits.checkpoints.convert import CONFIG_FILE
    from fastsovits.checkpoints.convert_v3 import CONFIG_FILE as V3_CONFIG
    from fastsovits.checkpoints.discovery import OFFICIAL_FILES, available_versions

    kind = _vocoder_of(p)
    if kind is not None:
        return _describe_vocoder(p, kind)
    if (p / CONFIG_FILE).is_file() or (p / V3_CONFIG).is_file():
        return _describe_converted(p)
    versions = available_versions(p)
    if not versions:
        raise MissingResource(
            f"{p} holds no model: it has no {CONFIG_FILE} (a folder written by 'fastsovits convert') and no "
            f"complete official file set of {', '.join(OFFICIAL_FILES)} (a pretrained_models folder, as "
            "'fastsovits download' writes)"
        )
    return {"kind": "pretrained_models folder", "path": str(p), "complete_versions": versions}


def _describe_converted(p: Path) -> dict[str, Any]:
    from fastsovits.checkpoints.convert import CONFIG_FILE, read_config
    from fastsovits.checkpoints.convert_v3 import CONFIG_FILE as V3_CONFIG
    from fastsovits.checkpoints.convert_v3 import read_meta

    out: dict[str, Any] = {"kind": "converted folder", "path": str(p)}
    cfg = read_config(p) if (p / CONFIG_FILE).is_file() else {"paths": {}}  # validated: CheckpointError
    if "gpt" in cfg:
        g = cfg["gpt"]["config"]
        out["gpt"] = {"layers": g.get("n_layers"), "d_model": g.get("hidden_dim")}
        out["languages"] = _languages("v1" if g.get("phoneme_vocab_size") == 512 else "v2")
    if "sovits" in cfg:
        version = cfg["sovits"]["config"].get("version", "v2")
        out["sovits"] = {"version": version}
        out["languages"] = _languages("v1" if version == "v1" else "v2")
    if "sovits_v3" in cfg or (p / V3_CONFIG).is_file():
        meta = read_meta(p)
        voc = meta.get("vocoder")
        out["sovits"] = {
            "version": meta["sovits"]["config"].get("version"),
            "lora_merged": bool(meta["sovits"].get("is_lora")),
            "vocoder": voc.get("kind") if isinstance(voc, dict) else None,
        }
        out["languages"] = _languages("v2")
    out["paths"] = cfg["paths"]
    return out


def describe(path: str | Path) -> dict[str, Any]:
    """Kind, version, sizes and languages of a checkpoint file or a model folder (raises for anything else)."""
    p = Path(path)
    if not p.exists():
        raise MissingResource(f"{p}: not found")
    if p.is_dir():
        return _describe_folder(p)
    size_mb = round(p.stat().st_size / 2**20, 2)
    loaded = _read_any(p)
    if loaded is not None and _is_v4_vocoder(loaded.obj):
        return {**_describe_vocoder(p, "v4"), "size_mb": size_mb}
    weight = loaded.obj.get("weight") if loaded is not None and isinstance(loaded.obj, Mapping) else None
    if loaded is not None and isinstance(weight, Mapping) and any(str(k).startswith("cfm.") for k in weight):
        return _describe_v3(p, size_mb, loaded)
    try:
        from fastsovits.checkpoints.sovits import detect_sovits_version, load_sovits

        symbols, version, lora = detect_sovits_version(p)
        model, _, info = load_sovits(p)
        params = sum(t.numel() for t in model.parameters())
        return {
            "kind": "SoVITS",
            "path": str(p),
            "size_mb": size_mb,
            "version": version,
            "lora": lora,
            "parameters": params,
            "languages": _languages(symbols),
            "info": info.info,
        }
    except CheckpointError as sovits_error:
        from fastsovits.checkpoints.gpt import load_gpt

        try:
            t2s, cfg, gpt_info = load_gpt(p)
        except CheckpointError as gpt_error:
            raise CheckpointError(
                f"{p} is neither a SoVITS nor a GPT checkpoint ({sovits_error}; {gpt_error})"
            ) from None
        symbols = "v1" if cfg.phoneme_vocab_size == 512 else "v2"
        return {
            "kind": "GPT",
            "path": str(p),
            "size_mb": size_mb,
            "layers": cfg.n_layers,
            "d_model": cfg.hidden_dim,
            "phoneme_vocab": cfg.phoneme_vocab_size,
            "parameters": sum(t.numel() for t in t2s.parameters()),
            "max_sec": gpt_info.max_sec,
            "languages": _languages(symbols),
            "info": gpt_info.info,
        }
