"""Official SoVITS v3/v4 ``.pth`` files (plain and LoRA) <-> :class:`~fastsovits.models.sovits_v3.SynthesizerV3`.

Plain files (``process_ckpt.savee``, first bytes ``PK``) hold every weight in fp16 (no
``enc_q``); LoRA files (first bytes ``03`` = v3, ``04`` = v4) hold the LoRA adapters and the other
trainable parts and need their base model (see :mod:`fastsovits.checkpoints.lora`).

Version: the official detection (MD5 of the first 8 KiB for the shipped ``s2Gv3.pth`` /
``s2Gv4.pth``, then the header, then the size: legacy ``PK`` files of 700 MiB or more are v3).
A small ``PK`` file with v3/v4 weights (e.g. a test model) is called v1 or v2 by that rule, so its
version must be given.

Sizes the official code hard-codes (``wns1`` width and depth, the DiT: dim, depth, heads, head
width, feed-forward and ConvNeXt widths) are read off the weights, so reduced models load too.
Weight-normalised convs (``wns1``) are folded into plain weights as for v1-v2ProPlus.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from fastsovits.checkpoints.common import HPARAMS_GLOBAL, HParamsStandIn, read_torch_file
from fastsovits.checkpoints.lora import merge_lora, split_lora
from fastsovits.checkpoints.sovits import (
    HEADER_VERSIONS,
    KNOWN_FILE_MD5,
    SovitsInfo,
    _HParamsOut,
    _pickle_module,
    _read_head,
    detect_sovits_version_fast,
    remap_state_dict,
)
from fastsovits.checkpoints.sovits_keys import KeyEntry, _official_name, _official_order, norm_except_first
from fastsovits.errors import CheckpointError, InvalidParameter, MissingResource
from fastsovits.models.dit import FREQ_EMBED_DIM, DiTConfig, text_position_table
from fastsovits.models.sovits import as_plain_dict
from fastsovits.models.sovits_v3 import V3_VERSIONS, SovitsV3Config, SynthesizerV3

log = logging.getLogger(__name__)

_WN = {"dilated": "in_layers", "res_skip": "res_skip_layers"}
_EST = "cfm.estimator."


def _v3_name(key: str) -> tuple[str, bool]:
    """Our state_dict key -> (official key, weight-normalised)."""
    if key.startswith("cfm.estimator."):
        return key, False
    if key.startswith("bridge."):
        return "bridge.0." + key[len("bridge.") :], False
    if key.startswith("linear_mel."):
        return key, False
    m = re.fullmatch(r"mel_encoder\.(pre|proj)\.(.+)", key)
    if m:
        return f"wns1.{m[1]}.{m[2]}", False
    m = re.fullmatch(r"mel_encoder\.wavenet\.(dilated|res_skip|cond)(?:\.(\d+))?\.(weight|bias)", key)
    if m:
        where = "cond_layer" if m[1] == "cond" else f"{_WN[m[1]]}.{m[2]}"
        return f"wns1.enc.{where}.{m[3]}", True
    return _official_name(key, "1")


def v3_key_entries(model: SynthesizerV3) -> list[KeyEntry]:
    """Every official key of ``model`` in the official order, with our key and its shape."""
    state = model.state_dict(keep_vars=True)
    groups: OrderedDict[str, list[str]] = OrderedDict()
    for key in state:
        groups.setdefault(key.rsplit(".", 1)[0], []).append(key)
    entries: list[KeyEntry] = []
    for keys in groups.values():
        tail: list[KeyEntry] = []
        for key in keys:
            official, wn = _v3_name(key)
            shape = tuple(state[key].shape)
            if wn and official.endswith(".weight"):
                g_shape = (shape[0],) + (1,) * (len(shape) - 1)
                tail = [KeyEntry(official + "_g", key, "g", g_shape), KeyEntry(official + "_v", key, "v", shape)]
            else:
                entries.append(KeyEntry(official, key, "plain", shape))
        entries += tail
    return _official_order(entries)


def v3_official_layout(config: SovitsV3Config) -> OrderedDict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = SynthesizerV3(config)
    return OrderedDict((e.official, e.shape) for e in v3_key_entries(model))


def v3_official_state_dict(model: SynthesizerV3, dtype: torch.dtype = torch.float16) -> OrderedDict[str, torch.Tensor]:
    """Our weights under the official keys (weight norm split again: v = w, g = ||w||)."""
    state = model.state_dict()
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for e in v3_key_entries(model):
        w = state[e.ours].detach().to("cpu", torch.float32)
        out[e.official] = (norm_except_first(w) if e.kind == "g" else w).to(dtype).clone()
    return out


def _count(weight: Mapping[str, Any], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m[1] for k in weight if (m := rx.fullmatch(str(k)))})


def sizes_from_weights(weight: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The hard-coded sizes (wns1, DiT) of a v3/v4 state dict, for :meth:`SovitsV3Config.from_official`."""
    try:
        proj = weight[_EST + "proj_out.weight"]
        dim, mel = int(proj.shape[1]), int(proj.shape[0])
        dim_head = 2 * int(weight[_EST + "rotary_embed.inv_freq"].numel())
        text_dim = int(weight[_EST + "text_embed.text_blocks.0.dwconv.weight"].shape[0])
        dit = DiTConfig(
            dim=dim,
            depth=_count(weight, re.escape(_EST) + r"transformer_blocks\.(\d+)\.attn_norm\.linear\.weight"),
            heads=int(weight[_EST + "transformer_blocks.0.attn.to_q.weight"].shape[0]) // dim_head,
            dim_head=dim_head,
            ff_mult=int(weight[_EST + "transformer_blocks.0.ff.ff.0.0.weight"].shape[0]) // dim,
            mel_dim=mel,
            text_dim=text_dim,
            conv_layers=_count(weight, re.escape(_EST) + r"text_embed\.text_blocks\.(\d+)\.dwconv\.weight"),
            conv_mult=int(weight[_EST + "text_embed.text_blocks.0.pwconv1.weight"].shape[0]) // text_dim,
        )
        if int(weight[_EST + "time_embed.time_mlp.0.weight"].shape[1]) != FREQ_EMBED_DIM:
            raise CheckpointError(f"time embedding input is not {FREQ_EMBED_DIM}-d")
        return {
            "bridge_channels": int(weight["bridge.0.weight"].shape[0]),
            "wns1_hidden": int(weight["wns1.pre.weight"].shape[0]),
            "wns1_layers": _count(weight, r"wns1\.enc\.in_layers\.(\d+)\.weight_v"),
            "wns1_kernel": int(weight["wns1.enc.in_layers.0.weight_v"].shape[2]),
            "dit": dit,
        }
    except KeyError as e:
        raise CheckpointError(f"v3/v4 weights lack {e.args[0]!r}") from e


def _read(path: Path) -> tuple[dict, str | None]:
    loaded = read_torch_file(path, extra={HPARAMS_GLOBAL: HParamsStandIn})
    obj = loaded.obj
    if not isinstance(obj, Mapping) or not isinstance(obj.get("weight"), Mapping):
        raise CheckpointError(f"{str(path)!r} is not an official SoVITS file (no 'weight' dict)")
    if not isinstance(obj.get("config"), (HParamsStandIn, Mapping)):
        raise CheckpointError(f"{str(path)!r}: its 'config' is not the official utils.HParams object")
    return dict(obj), loaded.header_tag


def _version_of(path: Path, weight: Mapping[str, Any], version: str | None) -> tuple[str, bool]:
    _, detected, is_lora = detect_sovits_version_fast(path)
    has_cfm = any(str(k).startswith("cfm.") for k in weight)
    if not has_cfm:
        raise CheckpointError(f"{str(path)!r} has no cfm.* weights: not a SoVITS v3/v4 file (use load_sovits)")
    if version is not None:
        if version not in V3_VERSIONS:
            raise InvalidParameter(f"version must be one of {V3_VERSIONS}, got {version!r}")
        if is_lora and version != detected:
            raise CheckpointError(f"{str(path)!r} is a {detected} LoRA file; version {version!r} was requested")
        return version, is_lora
    if detected not in V3_VERSIONS:
        raise CheckpointError(
            f"{str(path)!r} holds v3/v4 weights but the official detection calls it {detected} (a small 'PK' "
            "file); say which it is (version='v3' or 'v4')"
        )
    return detected, is_lora


def certain_version(path: str | Path) -> str | None:
    """The model version the official detection is sure of (a known MD5 or a header tag), else None
    (the size rule, which calls every large ``PK`` file v3, and small ``PK`` files are guesses)."""
    head = _read_head(Path(path))
    known = KNOWN_FILE_MD5.get(hashlib.md5(head).hexdigest())
    if known is not None:
        return known[1]
    found = HEADER_VERSIONS.get(head[:2])
    return found[1] if found is not None else None


def recorded_version(obj: Mapping[str, Any]) -> str | None:
    """The version a SoVITS file's own config records (``hps.version`` / ``hps.model.version``), if any.
    The official loader does not use it; it names the version of files the detection cannot tell."""
    hps = as_plain_dict(obj.get("config"))
    if not isinstance(hps, dict):
        return None
    model = hps.get("model")
    value = hps.get("version") or (model.get("version") if isinstance(model, dict) else None)
    return value if isinstance(value, str) and len(value) <= 16 else None


def _check_base(base: Path, base_obj: Mapping[str, Any], base_tag: str | None, lora: Path, version: str) -> None:
    weight = base_obj["weight"]
    if base_tag in ("03", "04") or "lora_rank" in base_obj or any(".lora_" in str(k) for k in weight):
        raise CheckpointError(f"base {base.name!r} is itself a LoRA file; the base is a plain SoVITS {version} model")
    if not any(str(k).startswith("cfm.") for k in weight):
        raise CheckpointError(f"base {base.name!r} is not a plain SoVITS v3/v4 model (no cfm.* weights)")
    certain = certain_version(base)
    if certain in V3_VERSIONS and certain != version:
        raise CheckpointError(
            f"base {base.name!r} is a SoVITS {certain} model; the {version} LoRA {lora.name!r} needs the "
            f"{version} base ({_BASE_FILES[version]})"
        )
    recorded = recorded_version(base_obj)
    if certain is None and recorded in V3_VERSIONS and recorded != version:
        # Only the file's own config says so (the official loader does not look): merge, but say it.
        log.warning(
            "base %r records version %s in its config; merging the %s LoRA %r over it as asked",
            base.name,
            recorded,
            version,
            lora.name,
        )


_BASE_FILES = {"v3": "s2Gv3.pth", "v4": "gsv-v4-pretrained/s2Gv4.pth"}


def load_sovits_v3(
    path: str | Path,
    version: str | None = None,
    *,
    base: str | Path | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[SynthesizerV3, SovitsV3Config, SovitsInfo]:
    """Load an official v3/v4 ``.pth`` (plain, or LoRA over ``base``) in eval mode.

    ``version`` forces v3/v4 (needed for small ``PK`` files the official rule calls v2);
    ``base`` is the plain model a LoRA file was trained from (official: ``s2Gv3.pth`` /
    ``gsv-v4-pretrained/s2Gv4.pth``).
    """
    path = Path(path)
    obj, tag = _read(path)
    model_version, is_lora = _version_of(path, obj["weight"], version)
    weight: dict[str, torch.Tensor] = {str(k): v for k, v in obj["weight"].items()}
    if is_lora or "lora_rank" in obj:
        if base is None:
            raise MissingResource(
                f"{path.name} is a SoVITS {model_version} LoRA: it needs its base model "
                f"({_BASE_FILES[model_version]}); pass base=..."
            )
        rank = obj.get("lora_rank")
        if not isinstance(rank, int) or rank <= 0:
            raise CheckpointError(f"{str(path)!r}: LoRA file without a positive integer 'lora_rank' ({rank!r})")
        base_obj, base_tag = _read(Path(base))
        _check_base(Path(base), base_obj, base_tag, path, model_version)
        base_weight = {str(k): v for k, v in base_obj["weight"].items()}
        weight = merge_lora(base_weight, split_lora(weight, rank, str(path)))
        is_lora = True
    hps = as_plain_dict(obj["config"])
    try:
        config = SovitsV3Config.from_official(hps, model_version, **sizes_from_weights(weight))
    except (InvalidParameter, TypeError, ValueError) as e:
        raise CheckpointError(f"{str(path)!r}: unusable SoVITS v3/v4 config: {e}") from e
    with torch.device("meta"):
        model = SynthesizerV3(config)
    state = remap_state_dict(weight, v3_key_entries(model), model.config.version, str(path), dtype)
    model.load_state_dict(state, strict=True, assign=True)
    # the one buffer the file does not carry was built on the meta device
    model.cfm.estimator.text_embed.freqs_cis = text_position_table(config.dit.text_dim)
    model = model.to(device).eval()
    info = obj.get("info")
    return (
        model,
        config,
        SovitsInfo(
            symbol_version="v2",
            model_version=model_version,
            is_lora=is_lora,
            header_tag=tag,
            info=str(info) if info is not None else None,
            official_config=hps if isinstance(hps, dict) else {},
        ),
    )


def default_official_config_v3(config: SovitsV3Config) -> dict[str, Any]:
    """A minimal official ``hps`` (the ``s2.json`` data/train values the official loader reads)."""
    return {
        "train": {"segment_size": 20480},
        "data": {
            "sampling_rate": 32000,
            "filter_length": 2048,
            "hop_length": 640,
            "win_length": 2048,
            "n_speakers": 300,
        },
        "model": {"semantic_frame_rate": "25hz"},
    }


def export_sovits_v3(
    model: SynthesizerV3,
    config: SovitsV3Config,
    path: str | Path,
    *,
    info: str = "0epoch_0iteration",
    official_config: Mapping[str, Any] | None = None,
) -> None:
    """Write ``model`` as an official plain (non-LoRA) v3/v4 file: fp16, ``utils.HParams`` config,
    header ``PK`` (as ``process_ckpt.savee`` writes full v3/v4 models)."""
    if model.config != config:
        raise InvalidParameter("export_sovits_v3: the model was built with another config")
    hps = dict(as_plain_dict(official_config) if official_config is not None else default_official_config_v3(config))
    hps["model"] = {**dict(hps.get("model") or {}), **config.to_official()}
    hps["version"] = config.version
    obj = OrderedDict(weight=dict(v3_official_state_dict(model)), config=_HParamsOut(hps), info=info)
    buf = io.BytesIO()
    torch.save(obj, buf, pickle_module=_pickle_module(), pickle_protocol=2)
    tmp = Path(f"{path}.partial-{os.getpid()}")
    try:
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
