"""The single 1024-entry semantic codebook (nearest codeword by squared Euclidean distance).

The official trainer keeps the codebook frozen (``freeze_quantizer``); its EMA statistics
(``cluster_size``, ``embed_avg``, ``inited``) are carried only so files round-trip unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SemanticCodebook(nn.Module):
    def __init__(self, size: int = 1024, dim: int = 768) -> None:
        super().__init__()
        self.size = size
        self.dim = dim
        self.register_buffer("inited", torch.ones(1))
        self.register_buffer("cluster_size", torch.zeros(size))
        self.register_buffer("embed", torch.randn(size, dim))
        self.register_buffer("embed_avg", self.embed.clone())

    def encode(self, x: Tensor) -> Tensor:
        """x: [B, D, T] -> codes [B, T] int64 (index of the nearest codeword)."""
        b, d, t = x.shape
        flat = x.transpose(1, 2).reshape(b * t, d)  # [B*T, D]
        e = self.embed
        # -||x - e||^2 expanded as -(|x|^2 - 2 x.e + |e|^2), then the largest wins
        score = -(flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.t() + e.t().pow(2).sum(0, keepdim=True))
        return score.argmax(dim=-1).view(b, t)

    def decode(self, codes: Tensor) -> Tensor:
        """codes: [B, T] -> [B, D, T]."""
        return F.embedding(codes, self.embed).transpose(1, 2)

    def quantize(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Training-style pass (no codebook update): x [B, D, T] -> (quantized, codes [B, T], commit loss).

        In training mode ``quantized`` carries the straight-through gradient to ``x``.
        """
        codes = self.encode(x)
        q = self.decode(codes)
        loss = F.mse_loss(q.detach(), x) if self.training else x.new_zeros(())
        if self.training:
            q = x + (q - x).detach()
        return q, codes, loss
