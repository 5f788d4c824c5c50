"""ERes2NetV2 speaker-verification network (the w24s4ep4 model of v2Pro/v2ProPlus).

v2Pro/ProPlus condition SoVITS on a 20480-d speaker feature: the ERes2NetV2 trunk run on the
reference's 80-band Kaldi fbank (16 kHz), the fused stage-3/4 map ``[B, 2048, 10, T/8]`` flattened
over channels x frequency and averaged over time (the official ``forward3``; the 192-d embedding
head ``seg_1`` is in the checkpoint but unused here). Module names follow the official checkpoint
so its state dict loads as is. Activations: ReLU clipped at 20 inside the blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from fastsovits.audio.fbank import fbank


@dataclass(frozen=True)
class SVConfig:
    base_width: int = 24
    scale: int = 4
    expansion: int = 4
    channels: int = 64  # m_channels
    blocks: tuple[int, int, int, int] = (3, 4, 6, 3)
    feat_dim: int = 80
    embedding_size: int = 192

    @property
    def feature_dim(self) -> int:
        """Size of the forward3 feature: channels*8*expansion x feat_dim/8 (20480 for w24s4ep4)."""
        return self.channels * 8 * self.expansion * (self.feat_dim // 8)


def _clipped_relu(x: Tensor) -> Tensor:
    return torch.clamp(x, 0.0, 20.0)


class AttentionalFusion(nn.Module):
    """Mixes two equally shaped maps with a learned per-position gate in (0, 2)."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        inner = channels // reduction
        self.local_att = nn.Sequential(
            nn.Conv2d(channels * 2, inner, 1),
            nn.BatchNorm2d(inner),
            nn.SiLU(),
            nn.Conv2d(inner, channels, 1),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor, other: Tensor) -> Tensor:
        gate = 1.0 + torch.tanh(self.local_att(torch.cat([x, other], dim=1)))
        return x * gate + other * (2.0 - gate)


class SplitResBlock(nn.Module):
    """Res2Net-style block: the 1x1-expanded map is split into ``scale`` groups processed in a
    chain (each group adds, or with ``fused`` attention-fuses, the previous group's output)."""

    def __init__(self, in_ch: int, planes: int, stride: int, cfg: SVConfig, fused: bool) -> None:
        super().__init__()
        width = int(math.floor(planes * cfg.base_width / 64.0))
        self.width, self.scale = width, cfg.scale
        self.conv1 = nn.Conv2d(in_ch, width * cfg.scale, 1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(width * cfg.scale)
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1, bias=False) for _ in range(cfg.scale))
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(cfg.scale))
        if fused:
            self.fuse_models = nn.ModuleList(AttentionalFusion(width) for _ in range(cfg.scale - 1))
        self.fused = fused
        out_ch = planes * cfg.expansion
        self.conv3 = nn.Conv2d(width * cfg.scale, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: Tensor) -> Tensor:
        groups = torch.split(_clipped_relu(self.bn1(self.conv1(x))), self.width, dim=1)
        outs: list[Tensor] = []
        for i in range(self.scale):
            if i == 0:
                g = groups[0]
            elif self.fused:
                g = self.fuse_models[i - 1](outs[-1], groups[i])
            else:
                g = outs[-1] + groups[i]
            outs.append(_clipped_relu(self.bns[i](self.convs[i](g))))
        out = self.bn3(self.conv3(torch.cat(outs, dim=1)))
        return _clipped_relu(out + self.shortcut(x))


class ERes2NetV2(nn.Module):
    def __init__(self, config: SVConfig = SVConfig()) -> None:
        super().__init__()
        self.config = c = config
        self.conv1 = nn.Conv2d(1, c.channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c.channels)
        in_ch = c.channels
        stages = []
        for i, (n, stride) in enumerate(zip(c.blocks, (1, 2, 2, 2))):
            planes = c.channels * (2**i)
            layer = []
            for j in range(n):
                layer.append(SplitResBlock(in_ch, planes, stride if j == 0 else 1, c, fused=i >= 2))
                in_ch = planes * c.expansion
            stages.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        wide = c.channels * 8 * c.expansion
        self.layer3_ds = nn.Conv2d(c.channels * 4 * c.expansion, wide, 3, padding=1, stride=2, bias=False)
        self.fuse34 = AttentionalFusion(wide)
        stats_dim = (c.feat_dim // 8) * c.channels * 8 * c.expansion
        self.seg_1 = nn.Linear(stats_dim * 2, c.embedding_size)  # embedding head (unused by forward3)

    def trunk(self, feats: Tensor) -> Tensor:
        """feats [B, T, F] -> fused map [B, 2048, F/8, T/8]."""
        x = feats.transpose(1, 2).unsqueeze(1)  # [B, 1, F, T]
        x = torch.relu(self.bn1(self.conv1(x)))
        x3 = self.layer3(self.layer2(self.layer1(x)))
        return self.fuse34(self.layer4(x3), self.layer3_ds(x3))

    def forward3(self, feats: Tensor) -> Tensor:
        """The v2Pro speaker feature: [B, T, 80] -> [B, 20480] (time-averaged fused map)."""
        return self.trunk(feats).flatten(1, 2).mean(-1)

    def forward(self, feats: Tensor) -> Tensor:
        """The 192-d embedding (statistics pooling: mean and std over time, then ``seg_1``)."""
        m = self.trunk(feats)
        stats = torch.cat([m.mean(-1).flatten(1), torch.sqrt(m.var(-1) + 1e-8).flatten(1)], dim=1)
        return self.seg_1(stats)


class SpeakerEncoder:
    """fbank + ERes2NetV2.forward3 for 16 kHz references (one at a time, as the official front end)."""

    def __init__(self, model: ERes2NetV2, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        self.model = model.to(device, dtype).eval()
        self.device, self.dtype = torch.device(device), dtype

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> SpeakerEncoder:
        return cls(load_sv(path), device)

    @torch.inference_mode()
    def embed(self, wavs16k: list[Tensor]) -> Tensor:
        """-> [B, 20480]. Utterances of different lengths are processed one by one (no padding)."""
        out = [self.model.forward3(fbank(w.float().reshape(-1))[None].to(self.device, self.dtype)) for w in wavs16k]
        return torch.cat(out).float()


def load_sv(path: str | Path) -> ERes2NetV2:
    """Load the official ``pretrained_eres2netv2w24s4ep4.ckpt`` (a plain state dict) safely."""
    from fastsovits.checkpoints.common import read_torch_file
    from fastsovits.errors import CheckpointError

    obj = read_torch_file(path).obj
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or "fuse34.local_att.0.weight" not in state:
        raise CheckpointError(f"{str(path)!r} is not an ERes2NetV2 speaker-verification state dict")
    model = ERes2NetV2()
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{str(path)!r} does not match ERes2NetV2 w24s4ep4: {e}") from e
    return model.eval()
