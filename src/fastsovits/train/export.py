"""Fine-tuned weights in the official formats, loadable by the official tools and by ours.

* GPT: ``{"weight": fp16 ``model.*`` state_dict, "config": yaml dict, "info": "GPT-e<epoch>"}``
  (:func:`fastsovits.checkpoints.gpt.export_gpt`), named ``<exp>-e<epoch>.ckpt`` as officially.
* SoVITS: ``{"weight": fp16, no ``enc_q.*``, "config": utils.HParams, "info":
  "<epoch>epoch_<step>iteration"}`` with the ``05``/``06`` header for v2Pro/v2ProPlus
  (:func:`fastsovits.checkpoints.sovits.export_sovits`), named ``<exp>_e<epoch>_s<step>.pth``.
  Training keeps weight-normalised convs as parametrizations; they are folded into plain
  weights on a copy before export (the exporter splits them into ``weight_g``/``weight_v``).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastsovits.models.sovits import Synthesizer
from fastsovits.models.t2s import Text2Semantic


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


def export_gpt_weights(
    model: Text2Semantic,
    path: str | Path,
    *,
    epoch: int,
    official_config: Mapping[str, Any] | None = None,
    train_config: Any = None,
) -> Path:
    """Write ``model`` as an official GPT ``.ckpt`` (atomically)."""
    from fastsovits.checkpoints.gpt import export_gpt

    path = Path(path)
    full = copy.deepcopy(dict(official_config or {}))
    data = dict(full.get("data") or {})
    data.setdefault("max_sec", 54)
    full["data"] = data
    if train_config is not None:
        full["train"] = {
            **dict(full.get("train") or {}),
            "epochs": train_config.epochs,
            "batch_size": train_config.batch_size,
            "seed": train_config.seed,
        }
    tmp = _atomic_target(path)
    try:
        export_gpt(model, model.config, tmp, info=f"GPT-e{epoch}", official_config=full)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def plain_state_dict(model: Synthesizer) -> dict[str, Any]:
    """The state of a training generator with weight-norm parametrizations folded into ``weight``.

    (Computed, not by removing parametrizations from a deep copy: a copy shares the
    parametrized class with the original, and removing it would break the original.)
    """
    from torch.nn.utils import parametrize

    out = {k: v.detach() for k, v in model.state_dict().items() if ".parametrizations.weight." not in k}
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            out[f"{name}.weight"] = module.weight.detach()
    return out


def plain_generator(model: Synthesizer) -> Synthesizer:
    """An inference copy of a training generator: plain weights, no posterior, eval mode."""
    import torch

    state = {k: v.clone() for k, v in plain_state_dict(model).items() if not k.startswith("posterior.")}
    with torch.device("meta"):
        plain = Synthesizer(model.config, with_posterior=False)
    plain.load_state_dict(state, strict=True, assign=True)
    return plain.eval()


def export_sovits_weights(
    model: Synthesizer, path: str | Path, *, epoch: int, step: int, official_config: Mapping[str, Any] | None = None
) -> Path:
    """Write a (training) generator as an official SoVITS ``.pth`` (atomically by the exporter)."""
    from fastsovits.checkpoints.sovits import export_sovits

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = plain_generator(model)
    export_sovits(plain, plain.config, path, info=f"{epoch}epoch_{step}iteration", official_config=official_config)
    return path
