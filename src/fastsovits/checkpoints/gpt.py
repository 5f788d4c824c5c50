"""Official GPT (s1) ``.ckpt`` files <-> :class:`fastsovits.models.t2s.Text2Semantic`.

File layout (written by the official s1 trainer): ``{"weight": {"model.<key>": fp16 tensor},
"config": <the training yaml as a dict>, "info": "GPT-e<epoch>"}``. Inference reads the
architecture from ``config["model"]`` and the early-stop length from ``config["data"]["max_sec"]``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fastsovits.checkpoints.common import HPARAMS_GLOBAL, HParamsStandIn, read_torch_file
from fastsovits.errors import CheckpointError, InvalidParameter
from fastsovits.models.t2s import T2SConfig, Text2Semantic

PREFIX = "model."
# per-layer official suffix -> our suffix (official layers live under "h.layers.<i>.")
_LAYER_KEYS = (
    ("self_attn.in_proj_weight", "qkv.weight"),
    ("self_attn.in_proj_bias", "qkv.bias"),
    ("self_attn.out_proj.weight", "out.weight"),
    ("self_attn.out_proj.bias", "out.bias"),
    ("linear1.weight", "ff1.weight"),
    ("linear1.bias", "ff1.bias"),
    ("linear2.weight", "ff2.weight"),
    ("linear2.bias", "ff2.bias"),
    ("norm1.weight", "norm1.weight"),
    ("norm1.bias", "norm1.bias"),
    ("norm2.weight", "norm2.weight"),
    ("norm2.bias", "norm2.bias"),
)
_SOVITS_MARKERS = ("enc_p.", "dec.", "flow.", "ref_enc.", "quantizer.", "ssl_proj.", "cfm.")


@dataclass
class GPTInfo:
    """What an official GPT file says besides its weights."""

    info: str | None  # e.g. "GPT-e15"
    max_sec: float | None  # config["data"]["max_sec"] (official early stop = 50 * max_sec tokens)
    official_config: dict[str, Any] = field(default_factory=dict)  # the whole yaml dict


def official_key_map(config: T2SConfig) -> list[tuple[str, str]]:
    """(official key with ``model.`` prefix, our key), in the official ``state_dict`` order."""
    pairs = [
        ("bert_proj.weight", "bert_proj.weight"),
        ("bert_proj.bias", "bert_proj.bias"),
        ("ar_text_embedding.word_embeddings.weight", "text_embedding.weight"),
        ("ar_text_position.alpha", "text_alpha"),
        ("ar_audio_embedding.word_embeddings.weight", "audio_embedding.weight"),
        ("ar_audio_position.alpha", "audio_alpha"),
    ]
    for i in range(config.n_layers):
        pairs += [(f"h.layers.{i}.{theirs}", f"layers.{i}.{ours}") for theirs, ours in _LAYER_KEYS]
    pairs.append(("ar_predict_layer.weight", "head.weight"))
    return [(PREFIX + theirs, ours) for theirs, ours in pairs]


def official_state_dict(model: Text2Semantic) -> OrderedDict[str, torch.Tensor]:
    """Our parameters under the official keys and order (tensors shared, not copied)."""
    ours = model.state_dict()
    return OrderedDict((theirs, ours[key]) for theirs, key in official_key_map(model.config))


def official_layout(config: T2SConfig) -> OrderedDict[str, tuple[int, ...]]:
    """Every official key and its shape for this architecture (built on ``meta``, no memory)."""
    with torch.device("meta"):
        model = Text2Semantic(config, max_positions=1)
    return OrderedDict((k, tuple(v.shape)) for k, v in official_state_dict(model).items())


def _describe_kind(obj: Any, header_tag: str | None) -> str | None:
    """A sentence naming what the file is, if it is clearly not an official GPT checkpoint."""
    if header_tag is not None:
        return f"the file starts with the version tag {header_tag!r} of a SoVITS (s2) .pth, not 'PK'"
    if not isinstance(obj, Mapping):
        return f"the file holds a {type(obj).__name__}, not a dict with 'weight' and 'config'"
    if isinstance(obj.get("config"), HParamsStandIn):
        return "its 'config' is a utils.HParams object: this is a SoVITS (s2) .pth"
    weight = obj.get("weight")
    if not isinstance(weight, Mapping):
        tensors = [k for k, v in obj.items() if isinstance(v, torch.Tensor)]
        if tensors:
            return f"it is a bare state_dict (keys like {tensors[:3]}), not an official GPT .ckpt"
        return f"it has no 'weight' dict (top-level keys: {sorted(map(str, obj))[:8]})"
    keys = [str(k) for k in weight]
    sovits = [k for k in keys if k.startswith(_SOVITS_MARKERS)]
    if sovits:
        return f"its weights have SoVITS keys such as {sovits[:3]}: this is a SoVITS (s2) .pth"
    if not any(k.startswith(PREFIX) for k in keys):
        return f"no weight key starts with {PREFIX!r} (found e.g. {keys[:3]})"
    if not isinstance(obj.get("config"), Mapping):
        return f"its 'config' is a {type(obj.get('config')).__name__}, not the training yaml dict"
    return None


def _our_state_dict(weight: Mapping[str, Any], config: T2SConfig, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    layout = official_layout(config)
    key_map = dict(official_key_map(config))
    missing = [k for k in layout if k not in weight]
    unexpected = [k for k in weight if k not in layout]
    if missing or unexpected:
        raise CheckpointError(
            f"GPT weights do not match config {config}: missing {len(missing)} keys {missing[:4]}, "
            f"unexpected {len(unexpected)} keys {unexpected[:4]}"
        )
    out: dict[str, torch.Tensor] = {}
    for key, shape in layout.items():
        tensor = weight[key]
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            raise CheckpointError(f"GPT weight {key!r} is not a floating tensor ({type(tensor).__name__})")
        if tuple(tensor.shape) != shape:
            raise CheckpointError(f"GPT weight {key!r} has shape {tuple(tensor.shape)}, config {config} needs {shape}")
        out[key_map[key]] = tensor.to(dtype).clone()
    return out


def load_gpt(
    path: str | Path, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[Text2Semantic, T2SConfig, GPTInfo]:
    """Load an official GPT ``.ckpt`` (fp16 weights are cast to ``dtype``) in eval mode."""
    loaded = read_torch_file(path, extra={HPARAMS_GLOBAL: HParamsStandIn})
    problem = _describe_kind(loaded.obj, loaded.header_tag)
    if problem is not None:
        raise CheckpointError(f"{str(path)!r} is not an official GPT (s1) checkpoint: {problem}")
    obj = loaded.obj
    official_config = obj["config"]
    try:
        config = T2SConfig.from_official(official_config)
    except InvalidParameter as e:
        raise CheckpointError(f"{str(path)!r}: bad GPT config: {e}") from e
    state = _our_state_dict(obj["weight"], config, dtype)
    with torch.device("meta"):
        model = Text2Semantic(config)
    model.load_state_dict(state, strict=True, assign=True)
    model.reset_tables()
    model = model.to(device).eval()
    data = official_config.get("data")
    max_sec = data.get("max_sec") if isinstance(data, Mapping) else None
    info = obj.get("info")
    return (
        model,
        config,
        GPTInfo(
            info=str(info) if info is not None else None,
            max_sec=float(max_sec) if max_sec is not None else None,
            official_config=dict(official_config),
        ),
    )


def export_gpt(
    model: Text2Semantic,
    config: T2SConfig,
    path: str | Path,
    *,
    info: str = "GPT-e0",
    official_config: Mapping[str, Any] | None = None,
    max_sec: float = 54,
) -> None:
    """Write ``model`` in the official GPT layout (fp16 weights, ``model.`` keys, yaml dict config).

    ``official_config``: a yaml dict to carry over (e.g. ``GPTInfo.official_config``); its
    ``model`` section is replaced by ``config``. Without it a minimal config is written.
    """
    if model.config != config:
        raise InvalidParameter(f"export_gpt: model has config {model.config}, not {config}")
    full: dict[str, Any] = dict(official_config or {"data": {"max_sec": max_sec}})
    full["model"] = {**dict(full.get("model") or {}), **config.to_official()}
    weight = OrderedDict(
        (k, v.detach().to("cpu", torch.float16).clone()) for k, v in official_state_dict(model).items()
    )
    torch.save(OrderedDict(weight=weight, config=full, info=info), str(path))
