"""Seeded latent noise of the SoVITS decoder, indexed by frame.

A row's noise for a latent frame depends only on the row's seed and the frame number, never on the
batch it is decoded in or on how a streamed sentence is cut into pieces: whole and streamed decodes
of the same seeded sentence draw the same values.
"""

from __future__ import annotations

import torch

NOISE_BLOCK = 16  # frames per independently seeded noise block


def frame_noise(seed: int, start: int, stop: int, channels: int) -> torch.Tensor:
    """N(0, 1) noise for latent frames [start, stop) of a row: -> [channels, stop - start].

    Each block of NOISE_BLOCK frames has its own generator, so the draw for a frame does not
    depend on how the row is cut into pieces or on its total length."""
    if stop <= start:
        return torch.zeros(channels, 0)
    first, last = start // NOISE_BLOCK, (stop - 1) // NOISE_BLOCK
    blocks = [
        torch.randn(channels, NOISE_BLOCK, generator=torch.Generator().manual_seed((seed * 1_000_003 + b) % 2**63))
        for b in range(first, last + 1)
    ]
    full = torch.cat(blocks, dim=1)  # [channels, blocks * NOISE_BLOCK]
    offset = start - first * NOISE_BLOCK
    return full[:, offset : offset + stop - start]
