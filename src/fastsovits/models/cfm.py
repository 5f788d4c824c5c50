"""Conditional flow matching (v3/v4): the Euler sampler around the DiT velocity estimator.

Sampling one row (official ``CFM.inference``): ``x = N(0, 1) * temperature`` of shape
``[mel, T]``; the first ``P`` frames are the prompt: they are zero in ``x`` and hold the prompt mel
in the condition. With ``d = 1 / steps`` and ``t`` from 0: ``x += d * v(x, prompt, t, d, text)``,
``t += d``, the prompt frames re-zeroed after every step. The text and ``d`` embeddings are
computed once per call. With ``cfg_rate > 0`` a second pass without prompt and text gives ``v_neg``
and ``v += (v - v_neg) * cfg_rate`` (the official callers keep it at 0).

Batching: rows have their own total length ``T_b`` and prompt length ``P_b``; they are padded to
the longest row and every step is masked, so a row's result equals its own single-row call.
Noise is drawn per row (``[1, mel, T_b]`` from that row's generator), so a seeded row gives the
same result whatever else is in the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from fastsovits.errors import InvalidInput, InvalidParameter
from fastsovits.models.dit import DiT, DiTConfig

MAX_SAMPLE_STEPS = 128  # the largest official choice (v3 WebUI); 4/8/16/32 are the usual ones
CFG_EPS = 1e-5  # cfg rates at or below this skip the second pass, as officially


def draw_noise(
    shape_rows: Sequence[int],
    channels: int,
    generators: Sequence[torch.Generator | None] | None,
    device: torch.device,
    dtype: torch.dtype,
) -> Tensor:
    """Per-row N(0, 1) noise ``[1, channels, T_b]`` (row b from generator b), zero-padded -> [B, C, max T]."""
    width = max(shape_rows)
    out = torch.zeros(len(shape_rows), channels, width, device=device, dtype=dtype)
    gens = list(generators) if generators is not None else [None] * len(shape_rows)
    if len(gens) != len(shape_rows):
        raise InvalidInput(f"{len(shape_rows)} rows but {len(gens)} generators")
    for b, (n, g) in enumerate(zip(shape_rows, gens)):
        gen_device = g.device if g is not None else device
        row = torch.randn((1, channels, n), generator=g, device=gen_device, dtype=torch.float32)
        out[b : b + 1, :, :n] = row.to(device=device, dtype=dtype)
    return out


class CFM(nn.Module):
    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.in_channels = config.mel_dim
        self.estimator = DiT(config)

    @torch.no_grad()
    def sample(
        self,
        mu: Tensor,
        prompt: Tensor,
        steps: int,
        lengths: Tensor | None = None,
        prompt_lengths: Tensor | None = None,
        temperature: float = 1.0,
        cfg_rate: float = 0.0,
        noise: Tensor | None = None,
        generators: Sequence[torch.Generator | None] | None = None,
    ) -> Tensor:
        """mu: [B, T, text_dim] condition features, prompt: [B, mel, P] (row b uses its first
        ``prompt_lengths[b]`` frames) -> mel [B, mel, T], zero on prompt and padded frames.

        ``noise`` [B, mel, T] replaces the N(0, 1) draw (else one draw per row from ``generators``).
        """
        if not 1 <= int(steps) <= MAX_SAMPLE_STEPS:
            raise InvalidParameter(f"sample_steps must be in 1..{MAX_SAMPLE_STEPS}, got {steps}")
        if mu.dim() != 3 or prompt.dim() != 3 or prompt.shape[0] != mu.shape[0]:
            raise InvalidInput(
                f"mu must be [B, T, C] and prompt [B, mel, P]; got {tuple(mu.shape)}, {tuple(prompt.shape)}"
            )
        b, width, dev = mu.shape[0], mu.shape[1], mu.device
        dtype = mu.dtype
        if lengths is None:
            lengths = torch.full((b,), width, dtype=torch.int64)
        if prompt_lengths is None:
            prompt_lengths = torch.full((b,), prompt.shape[2], dtype=torch.int64)
        lengths, prompt_lengths = lengths.to(dev), prompt_lengths.to(dev)
        if bool((prompt_lengths > lengths).any()) or prompt.shape[2] > width:
            raise InvalidInput("a prompt is longer than its row")
        if noise is None:
            noise = draw_noise(lengths.tolist(), self.in_channels, generators, dev, dtype)
        elif noise.shape != (b, self.in_channels, width):
            raise InvalidInput(f"noise must be {(b, self.in_channels, width)}, got {tuple(noise.shape)}")
        frames = torch.arange(width, device=dev).view(1, 1, -1)
        in_prompt = frames < prompt_lengths.view(-1, 1, 1)  # [B, 1, T]
        valid = frames < lengths.view(-1, 1, 1)
        cond = torch.zeros(b, self.in_channels, width, device=dev, dtype=dtype)
        cond[:, :, : prompt.shape[2]] = prompt.to(dtype)
        cond = cond * in_prompt
        x = (noise.to(dtype) * temperature).masked_fill(in_prompt | ~valid, 0.0)

        est = self.estimator
        d = 1 / int(steps)
        row_lengths = None if bool((lengths == width).all()) else lengths
        cache = est.condition(mu, torch.full((b,), d, device=dev, dtype=dtype), row_lengths)
        neg_cache = None
        if cfg_rate > CFG_EPS:
            neg_cache = est.condition(torch.zeros_like(mu), torch.full((b,), d, device=dev, dtype=dtype), row_lengths)
            neg_cache.dt = cache.dt
        cond_t = cond.transpose(1, 2)
        t = 0.0
        for _ in range(int(steps)):
            t_vec = torch.full((b,), t, device=dev, dtype=dtype)
            v = est(x.transpose(1, 2), cond_t, t_vec, cache, row_lengths).transpose(1, 2)
            if neg_cache is not None:
                neg = est(x.transpose(1, 2), torch.zeros_like(cond_t), t_vec, neg_cache, row_lengths).transpose(1, 2)
                v = v + (v - neg) * cfg_rate
            x = x + d * v
            t = t + d
            x = x.masked_fill(in_prompt | ~valid, 0.0)
        return x
