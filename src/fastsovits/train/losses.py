"""SoVITS training losses (official s2 recipe) and segment slicing.

* discriminator: LSGAN, sum over sub-discriminators of mean((1 - D(y))^2) + mean(D(y_hat)^2)
* generator: sum of mean((1 - D(y_hat))^2); feature matching: sum of mean |f_real - f_fake|
  (times ``c_fm`` = 2 officially); mel L1 (times ``c_mel`` = 45); VITS KL (times ``c_kl`` = 1).
All losses are computed in float32 whatever the autocast dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from fastsovits.audio.dsp import mel_filterbank


def discriminator_loss(real: Sequence[Tensor], fake: Sequence[Tensor]) -> Tensor:
    """real, fake: one score tensor per sub-discriminator -> scalar."""
    loss = real[0].new_zeros((), dtype=torch.float32)
    for dr, dg in zip(real, fake):
        loss = loss + torch.mean((1 - dr.float()) ** 2) + torch.mean(dg.float() ** 2)
    return loss


def generator_loss(fake: Sequence[Tensor]) -> Tensor:
    loss = fake[0].new_zeros((), dtype=torch.float32)
    for dg in fake:
        loss = loss + torch.mean((1 - dg.float()) ** 2)
    return loss


def feature_loss(fmap_real: Sequence[Sequence[Tensor]], fmap_fake: Sequence[Sequence[Tensor]]) -> Tensor:
    """Unweighted sum of L1 distances between feature maps (the real ones are detached)."""
    loss = fmap_fake[0][0].new_zeros((), dtype=torch.float32)
    for dr, dg in zip(fmap_real, fmap_fake):
        for r, g in zip(dr, dg):
            loss = loss + torch.mean(torch.abs(r.detach().float() - g.float()))
    return loss


def kl_loss(z_p: Tensor, logs_q: Tensor, m_p: Tensor, logs_p: Tensor, mask: Tensor) -> Tensor:
    """KL(q || p) of the VITS prior: all [B, C, T], mask [B, 1, T] -> mean over real frames."""
    z_p, logs_q, m_p, logs_p, mask = (t.float() for t in (z_p, logs_q, m_p, logs_p, mask))
    kl = logs_p - logs_q - 0.5 + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2.0 * logs_p)
    return torch.sum(kl * mask) / torch.sum(mask)


def slice_segments(x: Tensor, starts: Tensor, size: int) -> Tensor:
    """x: [B, C, T], starts: [B] -> [B, C, size] (row b = x[b, :, starts[b] : starts[b] + size])."""
    idx = starts.view(-1, 1) + torch.arange(size, device=x.device).view(1, size)  # [B, size]
    return x.gather(2, idx.unsqueeze(1).expand(x.shape[0], x.shape[1], size))


def random_starts(lengths: Tensor, size: int, generator: torch.Generator | None = None) -> Tensor:
    """Uniform segment starts in [0, length - size] per row (rows shorter than ``size`` start at 0)."""
    high = (lengths - size + 1).clamp(min=1).to(torch.float32)
    u = torch.rand(lengths.shape, generator=generator, device=generator.device if generator else "cpu")
    return (u.to(lengths.device) * high).long()


class SpecToMel(nn.Module):
    """Log mel (natural log, clamped at 1e-5) of a linear magnitude spectrogram: [B, F, T] -> [B, n_mels, T].

    The filters are the Slaney ones of :func:`fastsovits.audio.dsp.mel_filterbank`, so this equals
    :func:`fastsovits.audio.dsp.mel_spectrogram` applied to the waveform.
    """

    def __init__(self, sample_rate: int = 32000, n_fft: int = 2048, n_mels: int = 128) -> None:
        super().__init__()
        self.register_buffer("filters", torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels)), persistent=False)

    def forward(self, spec: Tensor) -> Tensor:
        return torch.log(torch.clamp(torch.matmul(self.filters, spec.float()), min=1e-5))
