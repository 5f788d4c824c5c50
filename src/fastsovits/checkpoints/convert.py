"""A safe, fast model format: safetensors weights + a JSON config, loaded without any pickle.

``convert(gpt=..., sovits=..., out_dir=...)`` reads official files once (through the restricted
unpickler) and writes ``out_dir/gpt.safetensors``, ``out_dir/sovits.safetensors`` (v1-v2ProPlus; a
v3/v4 SoVITS and its vocoder go to the files of :mod:`fastsovits.checkpoints.convert_v3`) and
``out_dir/config.json`` (our architecture dataclasses, versions, the sha256 of each source file,
the format version). HuBERT/BERT/SV folders are not copied: they are already safe formats
(safetensors/HF folders) and are recorded by absolute path when given; a relative path written
into ``config.json`` by hand is read relative to the folder itself, never to the working directory.
The folder is written to a temporary folder and renamed, so a failed conversion leaves nothing.

``load_converted(dir)`` builds the modules on the ``meta`` device and assigns memory-mapped
safetensors tensors, so peak memory is about one copy of the weights and no pickle is involved.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from fastsovits.checkpoints.converted_config import check_config
from fastsovits.errors import CheckpointError, InvalidParameter, MissingResource
from fastsovits.hashing import sha256_file

log = logging.getLogger(__name__)

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
    base: str | Path | None = None,
    vocoder: str | Path | None = None,
    dtype: torch.dtype | None = torch.float16,
) -> Path:
    """Convert official GPT/SoVITS files into ``out_dir`` (fp16 where exact, as the official files).

    A v3/v4 SoVITS file (detected, or ``sovits_version`` v3/v4) goes to
    :func:`fastsovits.checkpoints.convert_v3.write_v3`: a LoRA file is merged over ``base``, and
    ``vocoder`` (v4 ``vocoder.pth`` / the v3 BigVGAN folder) is converted beside it. The folder is
    written complete or not at all: everything goes into a temporary folder beside ``out_dir`` that is
    renamed at the end. ``out_dir`` must be missing, empty or an earlier converted folder (which is
    replaced). HuBERT/BERT/SV locations are recorded as absolute paths.
    """
    if gpt is None and sovits is None:
        raise MissingResource("convert: give at least one of gpt= or sovits=")
    for name, value in (
        ("gpt", gpt),
        ("sovits", sovits),
        ("hubert_dir", hubert_dir),
        ("bert_dir", bert_dir),
        ("sv", sv),
        ("base", base),
        ("vocoder", vocoder),
    ):
        if value is not None and not Path(value).exists():
            raise MissingResource(f"{name}={value}: not found")
    v3 = _v3_route(sovits, sovits_version, base, vocoder)
    out = Path(out_dir)
    paths = {"hubert_dir": hubert_dir, "bert_dir": bert_dir, "sv": sv}

    def write(tmp: Path) -> None:
        _write(tmp, gpt, None if v3 else sovits, sovits_version, dtype, paths, v3)

    return write_atomically(out, write)


def _v3_route(
    sovits: str | Path | None, version: str | None, base: str | Path | None, vocoder: str | Path | None
) -> dict[str, Any] | None:
    """The v3/v4 arguments when ``sovits`` is a v3/v4 file; refuses ``base``/``vocoder`` for other files."""
    from fastsovits.checkpoints.v3_files import check_base_use, is_lora_file, v3_version_of

    v3 = v3_version_of(sovits, version) if sovits is not None else None
    if v3 is None:
        if base is not None or vocoder is not None:
            what = f"{Path(sovits).name!r} is a v1-v2ProPlus model" if sovits is not None else "no sovits= given"
            raise InvalidParameter(f"base= and vocoder= are for SoVITS v3/v4 files; {what}")
        return None
    assert sovits is not None
    check_base_use(Path(sovits), Path(base) if base is not None else None)
    if base is None and is_lora_file(sovits):
        raise MissingResource(
            f"{Path(sovits).name!r} is a SoVITS {v3} LoRA: it needs its base model, pass base=... "
            f"({'s2Gv3.pth' if v3 == 'v3' else 'gsv-v4-pretrained/s2Gv4.pth'} of the official pretrained models)"
        )
    if vocoder is not None:  # the kind is cheap to check: before any weights are read
        from fastsovits.checkpoints.vocoders import VOCODER_KINDS, VOCODER_NAMES, vocoder_kind

        kind = vocoder_kind(vocoder)
        if kind != VOCODER_KINDS[v3]:
            raise CheckpointError(
                f"a SoVITS {v3} model needs {VOCODER_NAMES[VOCODER_KINDS[v3]]}, but vocoder= "
                f"{Path(vocoder).name!r} is {VOCODER_NAMES[kind]}"
            )
    return {"sovits": sovits, "version": v3, "base": base, "vocoder": vocoder}


def write_atomically(out: Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp)`` on a temporary folder beside ``out`` and rename it to ``out``: all or nothing."""
    replacing = _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        write(tmp)
        if replacing:
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            out.rename(old / "previous")
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if out.is_dir():
                out.rmdir()  # empty (checked above)
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _is_converted(out: Path) -> bool:
    from fastsovits.checkpoints import convert_v3

    for name, fmt in ((CONFIG_FILE, FORMAT), (convert_v3.CONFIG_FILE, convert_v3.FORMAT)):
        try:
            existing = json.loads((out / name).read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(existing, dict) and existing.get("format") == fmt:
            return True
    return False


def _check_target(out: Path) -> bool:
    """Whether ``out`` is an earlier converted folder to replace; refuses anything else that is not empty."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise InvalidParameter(f"out_dir={out} is a file, not a folder")
    if not any(out.iterdir()):
        return False
    if _is_converted(out):
        return True
    raise InvalidParameter(f"out_dir={out} is not empty and not a converted folder; choose a new or empty folder")


def _write(
    out: Path,
    gpt: str | Path | None,
    sovits: str | Path | None,
    sovits_version: str | None,
    dtype: torch.dtype | None,
    paths: dict[str, str | Path | None],
    v3: dict[str, Any] | None = None,
) -> None:
    from fastsovits import __version__

    config: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION, "fastsovits_version": __version__}
    if v3 is not None:  # first: its checks (LoRA base, vocoder kind) fail before the GPT is converted
        from fastsovits.checkpoints.convert_v3 import write_v3

        config["sovits_v3"] = write_v3(out, v3["sovits"], v3["version"], v3["base"], v3["vocoder"], dtype)
    if gpt is not None:
        from fastsovits.checkpoints.gpt import load_gpt

        model, cfg, info = load_gpt(gpt)
        _save(model.state_dict(), out / GPT_FILE, dtype)
        config["gpt"] = {
            "config": cfg.to_dict(),
            "max_sec": info.max_sec,
            "info": info.info,
            "source": str(Path(gpt).resolve()),
            "source_sha256": sha256_file(Path(gpt)),
        }
    if sovits is not None:
        from fastsovits.checkpoints.sovits import load_sovits

        synth, synth_cfg, _ = load_sovits(sovits, sovits_version)
        _save(synth.state_dict(), out / SOVITS_FILE, dtype)
        config["sovits"] = {
            "config": _jsonable(synth_cfg.to_dict()),
            "source": str(Path(sovits).resolve()),
            "source_sha256": sha256_file(Path(sovits)),
        }
    config["paths"] = {k: str(Path(v).resolve()) for k, v in paths.items() if v}
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False), "utf-8")


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


def read_config(directory: str | Path) -> dict[str, Any]:
    """The validated ``config.json`` of a converted folder (``paths`` made absolute).

    Raises ``MissingResource`` when there is no ``config.json`` and ``CheckpointError`` for anything
    malformed or out of range (``converted_config.check_config``).
    """
    d = Path(directory)
    cfg_path = d / CONFIG_FILE
    if not cfg_path.is_file():
        raise MissingResource(f"{d} has no {CONFIG_FILE}: not a converted fastsovits folder")
    try:
        config = json.loads(cfg_path.read_text("utf-8"))
    except (ValueError, OSError) as e:
        raise CheckpointError(f"{cfg_path}: invalid JSON: {e}") from e
    if not isinstance(config, dict) or config.get("format") != FORMAT or config.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{cfg_path}: not a {FORMAT} v{FORMAT_VERSION} folder")
    check_config(config, str(cfg_path))
    config["paths"] = resolve_paths(d, config.get("paths", {}))
    return config


def resolve_paths(directory: Path, paths: dict[str, str]) -> dict[str, str]:
    """Recorded HuBERT/BERT/SV paths as absolute paths (relative ones are relative to the folder)."""
    out = {}
    for key, value in paths.items():
        p = Path(value)
        p = p if p.is_absolute() else directory.resolve() / p
        if not p.exists():
            log.warning("%s recorded in %s: %s not found", key, directory / CONFIG_FILE, p)
        out[key] = str(p)
    return out


def load_converted(
    directory: str | Path, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> ConvertedModels:
    """Load a converted folder without any pickle (models built on ``meta``, weights assigned)."""
    from fastsovits.models.sovits import SovitsConfig, Synthesizer
    from fastsovits.models.t2s import T2SConfig, Text2Semantic

    d = Path(directory)
    config = read_config(d)
    cfg_path = d / CONFIG_FILE
    t2s = t2s_cfg = synth = synth_cfg = None
    if "gpt" in config:
        t2s_cfg = _build_config(T2SConfig.from_dict, config["gpt"]["config"], cfg_path, "gpt")
        with torch.device("meta"):
            t2s = Text2Semantic(t2s_cfg)
        _assign(t2s, _load_tensors(d / GPT_FILE, device), dtype, d / GPT_FILE)
        t2s.reset_tables()
        t2s = t2s.to(device).eval()
    if "sovits" in config:
        raw = config["sovits"]["config"]
        names = {f.name for f in fields(SovitsConfig)}
        kwargs = {k: (v if k == "extra" else _tuples(v)) for k, v in raw.items() if k in names}
        synth_cfg = _build_config(lambda kw: SovitsConfig(**kw), kwargs, cfg_path, "sovits")
        with torch.device("meta"):
            synth = Synthesizer(synth_cfg, with_posterior=False)
        _assign(synth, _load_tensors(d / SOVITS_FILE, device), dtype, d / SOVITS_FILE)
        synth = synth.to(device).eval()
    return ConvertedModels(t2s, t2s_cfg, synth, synth_cfg, config)


def _build_config(build: Any, raw: Any, cfg_path: Path, part: str) -> Any:
    try:
        return build(raw)
    except (InvalidParameter, TypeError, ValueError) as e:
        raise CheckpointError(f"{cfg_path}: invalid {part} config: {e}") from None
