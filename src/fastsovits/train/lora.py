"""LoRA adapters on the v3/v4 CFM (the official ``s2_train_v3_lora.py`` recipe) and their official file.

Adapters: every ``to_q``/``to_k``/``to_v``/``to_out.0`` ``Linear`` of the DiT attention
(:data:`fastsovits.checkpoints.lora.TARGET_MODULES`) becomes a :class:`LoraLinear`:
``y = base(x) + (alpha / r) * B(A(x))`` with ``A`` [r, in] Kaiming-uniform and ``B`` [out, r]
zero at the start (peft's ``init_lora_weights=True``), ``alpha = r`` and no adapter dropout, as
officially. Sub-module names are peft's (``base_layer``, ``lora_A.default``, ``lora_B.default``),
so the state-dict keys are the file's keys up to the ``cfm.`` -> ``cfm.base_model.model.`` prefix.

The official LoRA file (:func:`export_lora_weights`, as ``process_ckpt.savee(..., lora_rank=r)``
writes it): ``{"weight": {key: fp16}, "config": utils.HParams, "info":
"<epoch>epoch_<step>iteration", "lora_rank": r}``, first two bytes ``03`` (v3) / ``04`` (v4)
instead of ``PK``. ``weight`` holds every trained tensor (adapters, ``ref_enc``, ``bridge``,
``wns1``, ``linear_mel``) and every buffer (VQ codebook, rotary frequencies), in the official
order; the frozen base (``enc_p``, ``ssl_proj``, the DiT's own weights) is left out: loaders take
it from the base model. Weight-normalised ``wns1`` convs are written as the ``weight_g`` /
``weight_v`` pair the training optimised (the parametrization's own tensors).
"""

from __future__ import annotations

import io
import math
import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from fastsovits.checkpoints.lora import PEFT_PREFIX, TARGET_MODULES
from fastsovits.errors import InvalidParameter
from fastsovits.models.dit import Attention
from fastsovits.models.sovits_v3 import SynthesizerV3

LORA_HEADERS = {"v3": b"03", "v4": b"04"}  # what the official savee writes for LoRA files
_PEFT_KEYS = (".base_layer.", ".lora_A.", ".lora_B.")


class LoraLinear(nn.Module):
    """A frozen ``Linear`` plus a trainable rank-``r`` update scaled by ``alpha / r``."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.ModuleDict({"default": nn.Linear(base.in_features, rank, bias=False)})
        self.lora_B = nn.ModuleDict({"default": nn.Linear(rank, base.out_features, bias=False)})
        self.scaling = alpha / rank
        dev, dtype = base.weight.device, base.weight.dtype
        self.lora_A.to(dev, dtype)
        self.lora_B.to(dev, dtype)
        nn.init.kaiming_uniform_(self.lora_A["default"].weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B["default"].weight)
        base.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return self.base_layer(x) + self.lora_B["default"](self.lora_A["default"](x)) * self.scaling

    def merged(self) -> nn.Linear:
        """A plain ``Linear`` holding ``W + scaling * B @ A`` (float32 arithmetic, as the loader merges)."""
        base = self.base_layer
        out = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None)
        out.to(base.weight.device, base.weight.dtype)
        with torch.no_grad():
            a = self.lora_A["default"].weight.float()
            b = self.lora_B["default"].weight.float()
            out.weight.copy_(base.weight.float() + (b @ a) * self.scaling)
            if base.bias is not None:
                out.bias.copy_(base.bias)
        return out


def _targets(model: SynthesizerV3) -> list[tuple[nn.Module, str, str]]:
    """(parent module, child name, full name) of every LoRA target ``Linear`` of the DiT attention."""
    out = []
    for name, module in model.cfm.estimator.named_modules():
        if not isinstance(module, Attention):
            continue
        for target in TARGET_MODULES:  # "to_q", ..., "to_out.0"
            *parents, child = target.split(".")
            holder = module.get_submodule(".".join(parents)) if parents else module
            out.append((holder, child, f"cfm.estimator.{name}.{target}"))
    return out


def _child(holder: nn.Module, child: str) -> nn.Module:
    return holder[int(child)] if child.isdigit() else getattr(holder, child)  # type: ignore[index]


def _set_child(holder: nn.Module, child: str, module: nn.Module) -> None:
    if child.isdigit():
        holder[int(child)] = module  # type: ignore[index]
    else:
        setattr(holder, child, module)


def add_lora(model: SynthesizerV3, rank: int, alpha: float | None = None) -> list[str]:
    """Wrap the official LoRA targets of ``model.cfm`` in :class:`LoraLinear` (in place); returns their names.

    Every other CFM parameter is frozen (peft freezes the base model it wraps).
    """
    if not isinstance(rank, int) or rank < 1:
        raise InvalidParameter(f"lora_rank must be a positive integer, got {rank!r}")
    model.cfm.requires_grad_(False)
    names = []
    for holder, child, name in _targets(model):
        base = _child(holder, child)
        if not isinstance(base, nn.Linear):
            raise InvalidParameter(f"{name} is a {type(base).__name__}, not a Linear (already wrapped?)")
        if rank > min(base.in_features, base.out_features):
            raise InvalidParameter(
                f"lora_rank {rank} exceeds the width of {name} ({base.in_features} -> {base.out_features})"
            )
        _set_child(holder, child, LoraLinear(base, rank, float(rank if alpha is None else alpha)))
        names.append(name)
    if not names:
        raise InvalidParameter("the CFM has no attention Linear to put LoRA adapters on")
    return names


def lora_modules(model: nn.Module) -> dict[str, LoraLinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, LoraLinear)}


def lora_rank_of(model: nn.Module) -> int:
    ranks = {m.lora_A["default"].out_features for m in lora_modules(model).values()}
    if len(ranks) != 1:
        raise InvalidParameter(f"the model carries no single LoRA rank ({sorted(ranks)})")
    return ranks.pop()


def merge_lora_(model: nn.Module) -> nn.Module:
    """Replace every :class:`LoraLinear` by its merged ``Linear`` (in place; what the loaders do)."""
    for name, module in list(lora_modules(model).items()):
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        _set_child(parent, child, module.merged())
    return model


# ---- the official LoRA file -------------------------------------------------------------------
def _peft_key(official: str) -> str:
    return PEFT_PREFIX + official[len("cfm.") :] if official.startswith("cfm.") else official


def _plain_base_state(model: SynthesizerV3) -> dict[str, Tensor]:
    """Our state-dict keys of the model with adapters removed (base weights) and weight norm folded."""
    out: dict[str, Tensor] = {}
    for k, v in model.state_dict().items():
        if ".parametrizations.weight." in k or ".lora_A." in k or ".lora_B." in k:
            continue
        out[k.replace(".base_layer.", ".")] = v.detach()
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            out[f"{name}.weight"] = module.weight.detach()
    return out


def lora_file_weights(model: SynthesizerV3, dtype: torch.dtype = torch.float16) -> OrderedDict[str, Tensor]:
    """The ``weight`` dict of the official LoRA file for a training ``model`` (see the module doc)."""
    from fastsovits.checkpoints.sovits_keys import norm_except_first
    from fastsovits.checkpoints.sovits_v3 import v3_key_entries
    from fastsovits.models.dit import text_position_table

    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    if not lora_modules(model):
        raise InvalidParameter("the model has no LoRA adapters to export")
    # our key -> (g, v) of the parametrized convs, under the module's plain ``weight`` key
    wn: dict[str, tuple[Tensor, Tensor]] = {}
    wn_trained: set[str] = set()
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            orig = module.parametrizations.weight  # type: ignore[union-attr]
            wn[f"{name}.weight"] = (orig.original0.detach(), orig.original1.detach())
            if orig.original0.requires_grad:
                wn_trained.add(f"{name}.weight")
    buffers = {n.replace(".base_layer.", ".") for n, _ in model.named_buffers()}
    keep = {k.replace(".base_layer.", ".") for k in trained if ".lora_" not in k and ".parametrizations." not in k}
    keep |= wn_trained | buffers
    state = _plain_base_state(model)
    with torch.device("meta"):
        plain = SynthesizerV3(model.config)
    plain.cfm.estimator.text_embed.freqs_cis = text_position_table(model.config.dit.text_dim)
    out: OrderedDict[str, Tensor] = OrderedDict()
    for e in v3_key_entries(plain):
        if e.ours not in keep or e.ours.startswith("cfm."):
            continue
        if e.kind in ("g", "v"):
            if e.ours in wn:
                g, v = wn[e.ours]
            else:  # trained as a plain weight: split as the plain exporter does (v = w, g = ||w||)
                v = state[e.ours].float()
                g = norm_except_first(v)
            t = g if e.kind == "g" else v
        else:
            t = state[e.ours]
        out[e.official] = t.detach().to("cpu", dtype).clone()
    # the CFM part in module order: its trained tensors and buffers, then the adapters (peft names)
    for k, t in model.cfm.state_dict().items():
        if ".lora_" in k or ("cfm." + k) in keep:
            out[_peft_key("cfm." + k)] = t.detach().to("cpu", dtype).clone()
    return out


def export_lora_weights(
    model: SynthesizerV3,
    path: str | Path,
    *,
    epoch: int,
    step: int,
    official_config: Mapping[str, Any] | None = None,
) -> Path:
    """Write a LoRA-trained v3/v4 ``model`` as an official LoRA ``.pth`` (atomically); see the module doc."""
    from fastsovits.checkpoints.sovits import _HParamsOut, _pickle_module
    from fastsovits.checkpoints.sovits_v3 import default_official_config_v3
    from fastsovits.models.sovits import as_plain_dict

    path = Path(path)
    version = model.config.version
    rank = lora_rank_of(model)
    base = official_config if official_config is not None else default_official_config_v3(model.config)
    hps = dict(as_plain_dict(base))
    hps["model"] = {**dict(hps.get("model") or {}), **model.config.to_official()}
    hps["train"] = {**dict(hps.get("train") or {}), "lora_rank": str(rank)}  # a string, as the WebUI writes it
    hps["version"] = version
    obj = OrderedDict(
        weight=dict(lora_file_weights(model)),
        config=_HParamsOut(hps),
        info=f"{epoch}epoch_{step}iteration",
        lora_rank=rank,
    )
    buf = io.BytesIO()
    torch.save(obj, buf, pickle_module=_pickle_module(), pickle_protocol=2)
    data = LORA_HEADERS[version] + buf.getvalue()[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_lora_weights(model: SynthesizerV3, path: str | Path) -> None:
    """Set a training ``model``'s adapters and trained parts from an official LoRA file (in place).

    The inverse of :func:`export_lora_weights`: the file's rank and version must match the model's;
    ``weight_g`` / ``weight_v`` go to the weight-norm parametrization as they are. Continues
    training from a LoRA (the model must be the same base with adapters added).
    """
    from fastsovits.checkpoints.common import HPARAMS_GLOBAL, HParamsStandIn, read_torch_file
    from fastsovits.checkpoints.sovits import HEADER_VERSIONS
    from fastsovits.checkpoints.sovits_v3 import v3_key_entries
    from fastsovits.errors import CheckpointError

    path = Path(path)
    loaded = read_torch_file(path, extra={HPARAMS_GLOBAL: HParamsStandIn})
    obj, where = loaded.obj, repr(str(path))
    tag = (loaded.header_tag or "").encode()
    if not isinstance(obj, Mapping) or not isinstance(obj.get("weight"), Mapping) or "lora_rank" not in obj:
        raise CheckpointError(f"{where} is not an official SoVITS LoRA file (no 'weight' / 'lora_rank')")
    if HEADER_VERSIONS.get(tag, ("", "", False))[1:] != (model.config.version, True):
        raise CheckpointError(f"{where} is not a {model.config.version} LoRA file (header {tag!r})")
    if obj["lora_rank"] != lora_rank_of(model):
        raise CheckpointError(f"{where} has LoRA rank {obj['lora_rank']!r}, the model {lora_rank_of(model)}")
    with torch.device("meta"):
        plain = SynthesizerV3(model.config)
    entries = {e.official: e for e in v3_key_entries(plain)}
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    for key, t in obj["weight"].items():
        key = str(key)
        if key.startswith(PEFT_PREFIX):
            ours = "cfm." + key[len(PEFT_PREFIX) :]
        elif key in entries:
            e = entries[key]
            ours = e.ours
            if e.kind in ("g", "v"):
                ours = f"{e.ours[: -len('.weight')]}.parametrizations.weight.original{0 if e.kind == 'g' else 1}"
        else:
            raise CheckpointError(f"{where}: unexpected key {key!r}")
        target = tensors.get(ours)
        if target is None or tuple(target.shape) != tuple(t.shape):
            raise CheckpointError(f"{where}: {key!r} does not fit the model ({ours})")
        with torch.no_grad():
            target.copy_(t.to(target.dtype))
