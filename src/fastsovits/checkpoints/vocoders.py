"""The v3/v4 vocoders: v4 ``gsv-v4-pretrained/vocoder.pth`` and the v3 BigVGAN hub folder.

* v4: a bare ``state_dict`` of the official ``Generator`` after ``remove_weight_norm()`` (plain
  weights): conv_pre (100 mel bands -> U), transposed convs x10/x6/x2/x2/x2 (kernels 20/12/4/4/4),
  ResBlock1 kernels 3/7/11 with dilations 1/3/5, conv_post with bias, tanh. The official loader
  hard-codes U = 512; we read U and the resblock kernels off the weights (strides are not in the
  file and stay the official ones).
* v3: ``models--nvidia--bigvgan_v2_24khz_100band_256x/`` with ``config.json`` and
  ``bigvgan_generator.pt`` = ``{"generator": state_dict}``, weight norm still applied
  (``weight_g``/``weight_v``, folded here; plain weights are accepted too, as officially).

Pickles go through the restricted unpickler; ``config.json`` is parsed as JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from fastsovits.checkpoints.common import read_torch_file
from fastsovits.checkpoints.sovits import fold_weight_norm
from fastsovits.checkpoints.sovits_keys import norm_except_first
from fastsovits.errors import CheckpointError, MissingResource
from fastsovits.models.bigvgan import BigVGAN, BigVGANConfig
from fastsovits.models.hifigan import HifiGan

V4_RATES = (10, 6, 2, 2, 2)  # official TTS.init_vocoder("v4")
V4_KERNELS = (20, 12, 4, 4, 4)
V4_DILATIONS = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
V4_MELS = 100
BIGVGAN_CONFIG = "config.json"
BIGVGAN_WEIGHTS = "bigvgan_generator.pt"
# model version -> the vocoder kind it needs ("bigvgan": the v3 hub folder, "v4": gsv-v4-pretrained/vocoder.pth)
VOCODER_KINDS = {"v3": "bigvgan", "v4": "v4"}
VOCODER_NAMES = {"bigvgan": "the BigVGAN folder (models--nvidia--bigvgan_v2_24khz_100band_256x)", "v4": "vocoder.pth"}


def vocoder_kind(path: str | Path) -> str:
    """``"bigvgan"`` for a folder (the v3 hub layout), ``"v4"`` for a file; what it holds is checked at load."""
    p = Path(path)
    if p.is_dir():
        missing = [n for n in (BIGVGAN_CONFIG, BIGVGAN_WEIGHTS) if not (p / n).is_file()]
        if missing:
            raise MissingResource(f"vocoder folder {p.name!r} lacks {', '.join(missing)} (a BigVGAN hub folder)")
        return "bigvgan"
    if not p.is_file():
        raise MissingResource(f"vocoder {p.name!r} not found")
    return "v4"


def load_vocoder(
    path: str | Path, version: str, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> BigVGAN | HifiGan:
    """The vocoder of a v3 (BigVGAN folder) or v4 (``vocoder.pth``) model; the wrong kind is a ``CheckpointError``."""
    need = VOCODER_KINDS.get(version)
    if need is None:
        raise CheckpointError(f"SoVITS {version} has no separate vocoder (only v3 and v4 do)")
    kind = vocoder_kind(path)
    if kind != need:
        raise CheckpointError(
            f"a SoVITS {version} model needs {VOCODER_NAMES[need]}, but {Path(path).name!r} is {VOCODER_NAMES[kind]}"
        )
    if kind == "bigvgan":
        return load_bigvgan(path, device=device, dtype=dtype)
    return load_v4_vocoder(path, device=device, dtype=dtype)


def _v4_official(key: str) -> str:
    m = re.fullmatch(r"resblocks\.(\d+)\.(dilated|plain)\.(\d+)\.(weight|bias)", key)
    if m:
        return f"resblocks.{m[1]}.{'convs1' if m[2] == 'dilated' else 'convs2'}.{m[3]}.{m[4]}"
    return key.replace("conv_in.", "conv_pre.").replace("conv_out.", "conv_post.")


def build_v4_vocoder(initial_channel: int = 512, resblock_kernels: tuple[int, ...] = (3, 7, 11)) -> HifiGan:
    return HifiGan(
        V4_MELS,
        "1",
        resblock_kernels,
        V4_DILATIONS,
        V4_RATES,
        initial_channel,
        V4_KERNELS,
        gin_channels=0,
        out_bias=True,
    )


def v4_vocoder_state_dict(model: HifiGan) -> dict[str, torch.Tensor]:
    """Our weights under the official ``vocoder.pth`` keys (fp32)."""
    return {_v4_official(k): v.detach().to("cpu", torch.float32).clone() for k, v in model.state_dict().items()}


def load_v4_vocoder(
    path: str | Path, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> HifiGan:
    """Load ``vocoder.pth`` (v4, 48 kHz, x480) in eval mode."""
    path = Path(path)
    sd = read_torch_file(path).obj
    if not isinstance(sd, Mapping) or "conv_pre.weight" not in sd:
        raise CheckpointError(f"{str(path)!r} is not a v4 vocoder state_dict (no 'conv_pre.weight')")
    try:
        channels = int(sd["conv_pre.weight"].shape[0])
        kernels = tuple(int(sd[f"resblocks.{j}.convs1.0.weight"].shape[2]) for j in range(3))
    except (KeyError, AttributeError, IndexError) as e:
        raise CheckpointError(f"{str(path)!r}: v4 vocoder weights lack {e}") from e
    with torch.device("meta"):
        model = build_v4_vocoder(channels, kernels)
    state = {}
    for key, ref in model.state_dict().items():
        official = _v4_official(key)
        t = sd.get(official)
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != tuple(ref.shape):
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else None
            raise CheckpointError(f"{str(path)!r}: {official!r} is {got}, the v4 vocoder needs {tuple(ref.shape)}")
        state[key] = t.to(dtype).contiguous()
    extra = sorted(set(map(str, sd)) - {_v4_official(k) for k in state})
    if extra:
        raise CheckpointError(f"{str(path)!r}: unexpected keys in the v4 vocoder, e.g. {extra[:3]}")
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device).eval()


def load_bigvgan(
    folder: str | Path, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> BigVGAN:
    """Load a BigVGAN hub folder (``config.json`` + ``bigvgan_generator.pt``) in eval mode."""
    folder = Path(folder)
    cfg_path, w_path = folder / BIGVGAN_CONFIG, folder / BIGVGAN_WEIGHTS
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise MissingResource(f"BigVGAN folder {folder.name!r} lacks {p.name}")
    try:
        config = BigVGANConfig.from_json(json.loads(cfg_path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{str(cfg_path)!r} is not valid JSON: {e}") from e
    obj = read_torch_file(w_path).obj
    sd = obj.get("generator") if isinstance(obj, Mapping) else None
    if not isinstance(sd, Mapping):
        raise CheckpointError(f"{str(w_path)!r} has no 'generator' state_dict")
    with torch.device("meta"):
        model = BigVGAN(config)
    state = {}
    used: set[str] = set()
    for key, ref in model.state_dict().items():
        base = key[: -len("weight")] if key.endswith(".weight") else None
        t: Any
        if base is not None and f"{base}weight_g" in sd:
            g, v = sd[f"{base}weight_g"], sd[f"{base}weight_v"]
            t = fold_weight_norm(g.to(torch.float32), v.to(torch.float32))
            used |= {f"{base}weight_g", f"{base}weight_v"}
        else:
            t = sd.get(key)
            used.add(key)
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != tuple(ref.shape):
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else None
            raise CheckpointError(f"{str(w_path)!r}: {key!r} is {got}, this config needs {tuple(ref.shape)}")
        state[key] = t.to(dtype).contiguous()
    extra = sorted(set(map(str, sd)) - used)
    if extra:
        raise CheckpointError(f"{str(w_path)!r}: unexpected keys, e.g. {extra[:3]}")
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device).eval()


def bigvgan_state_dict(model: BigVGAN) -> dict[str, torch.Tensor]:
    """The hub ``generator`` state dict: convs with weight norm (``weight_g`` = ||w||, ``weight_v`` = w), fp32."""
    out: dict[str, torch.Tensor] = {}
    for key, t in model.state_dict().items():
        t = t.detach().to("cpu", torch.float32).clone()
        if key.endswith(".weight") and not key.endswith("filter"):
            base = key[: -len("weight")]
            out[f"{base}weight_g"] = norm_except_first(t)
            out[f"{base}weight_v"] = t
        else:
            out[key] = t
    return out


def save_bigvgan(model: BigVGAN, folder: str | Path) -> None:
    """Write the hub layout the official ``BigVGAN.from_pretrained(folder)`` reads."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    c = model.config
    h = {
        "resblock": c.resblock,
        "num_gpus": 0,
        "upsample_rates": list(c.upsample_rates),
        "upsample_kernel_sizes": list(c.upsample_kernel_sizes),
        "upsample_initial_channel": c.upsample_initial_channel,
        "resblock_kernel_sizes": list(c.resblock_kernel_sizes),
        "resblock_dilation_sizes": [list(d) for d in c.resblock_dilation_sizes],
        "use_tanh_at_final": c.use_tanh_at_final,
        "use_bias_at_final": c.use_bias_at_final,
        "activation": c.activation,
        "snake_logscale": c.snake_logscale,
        "num_mels": c.num_mels,
        "n_fft": 4 * c.hop_size,
        "hop_size": c.hop_size,
        "win_size": 4 * c.hop_size,
        "sampling_rate": c.sampling_rate,
        "fmin": 0,
        "fmax": None,
        "segment_size": 65536,
    }
    torch.save({"generator": bigvgan_state_dict(model)}, folder / BIGVGAN_WEIGHTS)
    (folder / BIGVGAN_CONFIG).write_text(json.dumps(h, indent=1), encoding="utf-8")
