"""Describe a checkpoint or model folder: kind, version, sizes, languages (``fastsovits info``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastsovits.errors import CheckpointError, MissingResource
from fastsovits.text.frontend import MODES


def _languages(symbol_version: str) -> list[str]:
    return list(MODES[symbol_version])


def _describe_folder(p: Path) -> dict[str, Any]:
    from fastsovits.checkpoints.convert import CONFIG_FILE, read_config
    from fastsovits.checkpoints.discovery import LOADABLE_VERSIONS, available_versions

    if (p / CONFIG_FILE).is_file():
        cfg = read_config(p)  # validated: CheckpointError for anything malformed
        out: dict[str, Any] = {"kind": "converted folder", "path": str(p)}
        if "gpt" in cfg:
            g = cfg["gpt"]["config"]
            out["gpt"] = {"layers": g.get("n_layers"), "d_model": g.get("hidden_dim")}
            out["languages"] = _languages("v1" if g.get("phoneme_vocab_size") == 512 else "v2")
        if "sovits" in cfg:
            version = cfg["sovits"]["config"].get("version", "v2")
            out["sovits"] = {"version": version}
            out["languages"] = _languages("v1" if version == "v1" else "v2")
        out["paths"] = cfg["paths"]
        return out
    versions = [v for v in available_versions(p) if v in LOADABLE_VERSIONS]
    if not versions:
        raise MissingResource(
            f"{p} holds no model: it has no {CONFIG_FILE} (a folder written by 'fastsovits convert') and no "
            f"complete official file set of {', '.join(LOADABLE_VERSIONS)} (a pretrained_models folder, as "
            "'fastsovits download' writes)"
        )
    return {"kind": "pretrained_models folder", "path": str(p), "complete_versions": versions}


def describe(path: str | Path) -> dict[str, Any]:
    """Kind, version, sizes and languages of a checkpoint file or a model folder (raises for anything else)."""
    p = Path(path)
    if not p.exists():
        raise MissingResource(f"{p}: not found")
    if p.is_dir():
        return _describe_folder(p)
    size_mb = round(p.stat().st_size / 2**20, 2)
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
            model, cfg, info = load_gpt(p)
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
            "parameters": sum(t.numel() for t in model.parameters()),
            "max_sec": info.max_sec,
            "languages": _languages(symbols),
            "info": info.info,
        }
