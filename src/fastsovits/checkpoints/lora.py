"""Official v3/v4 LoRA files (headers ``03``/``04``): split into LoRA pairs and plain weights, merge.

The official LoRA training wraps ``cfm`` with peft (``target_modules = to_k, to_q, to_v, to_out.0``,
``r = lora_alpha = lora_rank``) and saves every trainable tensor plus every buffer (fp16) with the
extra dict entry ``lora_rank``. Keys inside ``cfm`` carry peft's prefix
(``cfm.base_model.model.estimator....``); the adapters are ``<module>.lora_A.default.weight``
``[r, in]`` and ``<module>.lora_B.default.weight`` ``[out, r]``. Loading = base model weights,
then every plain tensor of the LoRA file over them, then ``W <- W + (alpha / r) * B @ A``
for each adapted ``Linear`` (what peft's ``merge_and_unload`` does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from fastsovits.errors import CheckpointError

PEFT_PREFIX = "cfm.base_model.model."
TARGET_MODULES = ("to_k", "to_q", "to_v", "to_out.0")
_A, _B = ".lora_A.default.weight", ".lora_B.default.weight"


@dataclass
class LoraParts:
    """A LoRA file's content under official (non-peft) key names."""

    plain: dict[str, torch.Tensor]  # official key -> tensor, to be taken over the base
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]]  # official weight key -> (A [r, in], B [out, r])
    rank: int


def official_key(key: str) -> str:
    """Peft key -> the key of the plain model (``cfm.base_model.model.x`` -> ``cfm.x``)."""
    return "cfm." + key[len(PEFT_PREFIX) :] if key.startswith(PEFT_PREFIX) else key


def split_lora(weight: Mapping[str, torch.Tensor], rank: int, where: str) -> LoraParts:
    """Separate adapters from plain tensors; checks names, ranks and shapes of the adapters."""
    plain: dict[str, torch.Tensor] = {}
    a_parts: dict[str, torch.Tensor] = {}
    b_parts: dict[str, torch.Tensor] = {}
    for key, t in weight.items():
        key = str(key)
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{where}: {key!r} is not a tensor")
        if key.endswith(_A) or key.endswith(_B):
            module = official_key(key[: -len(_A)])
            if not any(module.endswith("." + m) for m in TARGET_MODULES) or not module.startswith("cfm."):
                raise CheckpointError(f"{where}: LoRA adapter on {module!r}, not one of the official targets")
            (a_parts if key.endswith(_A) else b_parts)[module + ".weight"] = t
        elif ".lora_" in key or ".base_layer." in key:
            raise CheckpointError(f"{where}: unexpected peft key {key!r}")
        else:
            plain[official_key(key)] = t
    if set(a_parts) != set(b_parts):
        odd = sorted(set(a_parts) ^ set(b_parts))
        raise CheckpointError(f"{where}: LoRA A/B matrices do not pair up (e.g. {odd[:2]})")
    pairs = {}
    for k in a_parts:
        a, b = a_parts[k], b_parts[k]
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != rank or b.shape[1] != rank:
            raise CheckpointError(
                f"{where}: {k!r} LoRA shapes A {tuple(a.shape)} / B {tuple(b.shape)} do not match lora_rank {rank}"
            )
        pairs[k] = (a, b)
    if not pairs:
        raise CheckpointError(f"{where}: a LoRA file without any LoRA adapter")
    return LoraParts(plain, pairs, rank)


def merge_lora(
    weight: dict[str, torch.Tensor], parts: LoraParts, alpha: float | None = None
) -> dict[str, torch.Tensor]:
    """Base ``weight`` (official keys) with the LoRA file applied: plain tensors replace the base's,
    then ``W + (alpha / r) * B @ A`` in float32 (``alpha`` defaults to the rank, as officially)."""
    out = dict(weight)
    unknown = sorted(k for k in parts.plain if k not in out)
    if unknown:
        raise CheckpointError(f"LoRA file has {len(unknown)} keys its base lacks, e.g. {unknown[:3]}")
    for k, t in parts.plain.items():
        if tuple(t.shape) != tuple(out[k].shape):
            raise CheckpointError(f"LoRA file: {k!r} has shape {tuple(t.shape)}, the base {tuple(out[k].shape)}")
        out[k] = t
    scaling = (parts.rank if alpha is None else alpha) / parts.rank
    for k, (a, b) in parts.pairs.items():
        if k not in out:
            raise CheckpointError(f"LoRA adapter for {k!r}, which the base model lacks")
        w = out[k].to(torch.float32)
        if (b.shape[0], a.shape[1]) != tuple(w.shape):
            raise CheckpointError(f"LoRA adapter for {k!r}: B@A is {(b.shape[0], a.shape[1])}, weight {tuple(w.shape)}")
        out[k] = w + (b.to(torch.float32) @ a.to(torch.float32)) * scaling
    return out
