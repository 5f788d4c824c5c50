"""The SoVITS multi-period discriminator (training only), with the official layout and weights.

``MultiPeriodDiscriminator(version)`` = one scale discriminator (1-D convs on the waveform) plus
one period discriminator per period: [2, 3, 5, 7, 11] for v1/v2, [2, 3, 5, 7, 11, 17, 23] for
v2Pro/v2ProPlus (as the official ``module/models.py``). Every conv is weight-normalised through
``torch.nn.utils.parametrizations.weight_norm``; official ``D_*.pth`` files store the legacy
``weight_g``/``weight_v`` pair, mapped by :func:`official_to_ours` / :func:`ours_to_official`.
Channel widths default to the official ones and can be shrunk for tests.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from fastsovits.checkpoints.common import HPARAMS_GLOBAL, HParamsStandIn, read_torch_file
from fastsovits.errors import CheckpointError

SLOPE = 0.1
PERIODS = {
    "v1": (2, 3, 5, 7, 11),
    "v2": (2, 3, 5, 7, 11),
    "v2Pro": (2, 3, 5, 7, 11, 17, 23),
    "v2ProPlus": (2, 3, 5, 7, 11, 17, 23),
}
PERIOD_CHANNELS = (32, 128, 512, 1024, 1024)
SCALE_CHANNELS = (16, 64, 256, 1024, 1024, 1024)
SCALE_GROUPS = (1, 4, 16, 64, 256, 1)


class PeriodDiscriminator(nn.Module):
    def __init__(self, period: int, channels: Sequence[int] = PERIOD_CHANNELS, kernel: int = 5, stride: int = 3):
        super().__init__()
        self.period = period
        chans = [1, *channels]
        pad = (kernel - 1) // 2
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(chans[i], chans[i + 1], (kernel, 1), (stride if i < 4 else 1, 1), (pad, 0)))
            for i in range(5)
        )
        self.conv_post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), 1, (1, 0)))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """x: [B, 1, T] -> (scores [B, N], feature maps)."""
        b, c, t = x.shape
        if t % self.period:
            x = F.pad(x, (0, self.period - t % self.period), "reflect")
            t = x.shape[2]
        x = x.view(b, c, t // self.period, self.period)  # [B, 1, T / p, p]
        return _conv_stack(self.convs, self.conv_post, x)


def _conv_stack(convs: nn.ModuleList, post: nn.Module, x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """leaky_relu(conv) for each conv, then the post conv: -> (flattened scores, every feature map)."""
    fmap = []
    for conv in convs:
        x = F.leaky_relu(conv(x), SLOPE)
        fmap.append(x)
    x = post(x)
    fmap.append(x)
    return torch.flatten(x, 1), fmap


class ScaleDiscriminator(nn.Module):
    """Grouped 1-D convs (official groups 1/4/16/64/256/1; reduced to a common divisor for narrow test widths)."""

    def __init__(self, channels: Sequence[int] = SCALE_CHANNELS):
        super().__init__()
        chans = [1, *channels]
        kernels, strides, pads = (15, 41, 41, 41, 41, 5), (1, 4, 4, 4, 4, 1), (7, 20, 20, 20, 20, 2)
        self.convs = nn.ModuleList(
            weight_norm(
                nn.Conv1d(
                    chans[i],
                    chans[i + 1],
                    kernels[i],
                    strides[i],
                    padding=pads[i],
                    groups=math.gcd(SCALE_GROUPS[i], chans[i], chans[i + 1]),
                )
            )
            for i in range(6)
        )
        self.conv_post = weight_norm(nn.Conv1d(chans[-1], 1, 3, 1, padding=1))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        return _conv_stack(self.convs, self.conv_post, x)


class MultiPeriodDiscriminator(nn.Module):
    def __init__(
        self,
        version: str = "v2",
        period_channels: Sequence[int] = PERIOD_CHANNELS,
        scale_channels: Sequence[int] = SCALE_CHANNELS,
    ) -> None:
        super().__init__()
        if version not in PERIODS:
            raise ValueError(f"no discriminator periods for SoVITS version {version!r}")
        self.version = version
        self.discriminators = nn.ModuleList(
            [ScaleDiscriminator(scale_channels)] + [PeriodDiscriminator(p, period_channels) for p in PERIODS[version]]
        )

    def forward(self, y: Tensor, y_hat: Tensor):
        """y, y_hat: [B, 1, T] -> (real scores, fake scores, real feature maps, fake feature maps)."""
        real, fake, fmap_r, fmap_g = [], [], [], []
        for d in self.discriminators:
            r, fr = d(y)
            g, fg = d(y_hat)
            real.append(r)
            fake.append(g)
            fmap_r.append(fr)
            fmap_g.append(fg)
        return real, fake, fmap_r, fmap_g


_OURS = re.compile(r"(.+)\.parametrizations\.weight\.original([01])")
_THEIRS = re.compile(r"(.+)\.weight_([gv])")


def ours_to_official(state: Mapping[str, Tensor]) -> OrderedDict[str, Tensor]:
    """Our state_dict keys -> the official ones (``weight_g``/``weight_v``)."""
    out: OrderedDict[str, Tensor] = OrderedDict()
    for k, v in state.items():
        m = _OURS.fullmatch(k)
        out[f"{m[1]}.weight_{'g' if m[2] == '0' else 'v'}" if m else k] = v
    return out


def official_to_ours(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    out = {}
    for k, v in state.items():
        m = _THEIRS.fullmatch(str(k))
        out[f"{m[1]}.parametrizations.weight.original{0 if m[2] == 'g' else 1}" if m else str(k)] = v
    return out


def load_official_discriminator(disc: MultiPeriodDiscriminator, path: str | Path) -> list[str]:
    """Warm-start ``disc`` from an official ``s2D*.pth`` / ``D_*.pth`` (``{"weight"|"model": state_dict}``).

    Keys are matched by name; tensors of a different shape (e.g. a shrunk test discriminator)
    raise :class:`CheckpointError`. Returns the official keys our discriminator lacks weights for
    (e.g. periods 17 and 23 when a v2 D warm-starts a v2Pro one).
    """
    loaded = read_torch_file(path, extra={HPARAMS_GLOBAL: HParamsStandIn}).obj
    state = None
    if isinstance(loaded, Mapping):
        state = loaded.get("weight", loaded.get("model"))
    if not isinstance(state, Mapping) or not any(str(k).startswith("discriminators.") for k in state):
        raise CheckpointError(f"{str(path)!r} is not an official discriminator file (no 'discriminators.*' weights)")
    ours = official_to_ours(state)
    own = disc.state_dict()
    bad = [k for k in ours if k in own and tuple(ours[k].shape) != tuple(own[k].shape)]
    if bad:
        raise CheckpointError(
            f"{str(path)!r}: discriminator weights of another shape, e.g. {bad[0]!r} "
            f"{tuple(ours[bad[0]].shape)} vs {tuple(own[bad[0]].shape)}"
        )
    usable = {k: v.to(own[k].dtype) for k, v in ours.items() if k in own}
    if not usable:
        raise CheckpointError(f"{str(path)!r}: no discriminator key matches ours")
    disc.load_state_dict(usable, strict=False)
    return sorted(ours_to_official({k: own[k] for k in own if k not in usable}))
