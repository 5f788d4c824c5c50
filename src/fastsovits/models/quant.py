"""Weight-only int8 for the text-to-semantic transformer's linear layers (CPU inference).

A batch-1 decode step reads every weight of the 24 layers once and does little arithmetic with it,
so on a CPU its time is the time to stream those bytes from memory. Storing the block weights as
int8 (one bf16 scale per output channel, symmetric: ``W ≈ q * scale[:, None]``) halves the bytes of
bf16 and quarters those of fp32. Activations stay bf16: torch's CPU kernel for this
(``aten._weight_int8pack_mm``) widens each int8 weight row on the fly and is fast only for bf16
inputs. The kernel takes the weight as it is stored, ``[out, in]`` int8 and contiguous, so there is
nothing further to prepack.

The kernel is a matrix-vector kernel: for a few rows (decode steps) it beats a bf16 matmul by the
bytes saved, for many rows (a prefill) it is slower than widening the weight once and running
oneDNN's bf16 matmul, which :class:`Int8Linear` then does. Its inner loop also needs the input
width to be a multiple of 32 (other widths read out of bounds in torch 2.13); such layers always take
the widening path.

Only :class:`~fastsovits.models.layers.T2SBlock` linears are quantized; the embeddings, the BERT
projection and the output head stay bf16 (they are a few percent of the bytes, and the head decides
the tokens). A quantized model is for inference: it cannot be exported back to the official layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

COMPUTE_DTYPE = torch.bfloat16  # activations and scales of a quantized layer (the kernel's fast path)
PACKED_MAX_ROWS = 24  # above this many input rows, widening the weight for one bf16 matmul is faster
_WIDTH_MULTIPLE = 32  # the packed kernel's input width must be a multiple of this
_QMAX = 127


def quantize_per_channel(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric per-output-channel int8: weight [N, K] float -> (q [N, K] int8, scale [N] bf16).

    The scale is rounded to bf16 first and q computed against the rounded scale, so that
    ``q * scale`` is the best int8 approximation of the weight the kernel can use.
    """
    w = weight.detach().float()
    scale = (w.abs().amax(dim=1) / _QMAX).clamp(min=torch.finfo(torch.float32).tiny).to(COMPUTE_DTYPE)
    q = torch.round(w / scale.float().unsqueeze(1)).clamp(-_QMAX, _QMAX).to(torch.int8)
    return q.contiguous(), scale


class Int8Linear(nn.Module):
    """``nn.Linear`` with an int8 weight and bf16 per-channel scales; bias kept in bf16."""

    def __init__(self, qweight: Tensor, scale: Tensor, bias: Tensor | None) -> None:
        super().__init__()
        self.out_features, self.in_features = qweight.shape
        self.register_buffer("qweight", qweight)
        self.register_buffer("scale", scale)
        self.register_buffer("bias", None if bias is None else bias.detach().to(COMPUTE_DTYPE))
        self.packed_ok = self.in_features % _WIDTH_MULTIPLE == 0

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8Linear:
        q, scale = quantize_per_channel(linear.weight)
        return cls(q.to(linear.weight.device), scale.to(linear.weight.device), linear.bias)

    def dequantized(self) -> Tensor:
        """The weight as the layer computes with it: [out, in] bf16."""
        return self.qweight.to(self.scale.dtype) * self.scale.unsqueeze(1)

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        x2 = x.reshape(-1, self.in_features).to(self.scale.dtype)
        if self.packed_ok and x2.shape[0] <= PACKED_MAX_ROWS and x2.device.type == "cpu":
            y = torch.ops.aten._weight_int8pack_mm(x2.contiguous(), self.qweight, self.scale)
            if self.bias is not None:
                y.add_(self.bias)
        else:
            y = F.linear(x2, self.dequantized(), self.bias)
        return y.view(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 per-channel"


def quantize_t2s_(model: nn.Module) -> nn.Module:
    """In place: a ``Text2Semantic`` to bf16 with every transformer-block linear replaced by :class:`Int8Linear`.

    Quantizes from the weights as they are (pass the fp32 model for the most accurate scales).
    """
    from fastsovits.models.layers import T2SBlock

    blocks = [m for m in model.modules() if isinstance(m, T2SBlock)]
    for block in blocks:
        for name in ("qkv", "out", "ff1", "ff2"):
            layer = getattr(block, name)
            if isinstance(layer, nn.Linear):
                setattr(block, name, Int8Linear.from_linear(layer))
    return model.to(COMPUTE_DTYPE)  # the rest (embeddings, norms, head); int8 buffers stay int8


def is_quantized(model: nn.Module) -> bool:
    return any(isinstance(m, Int8Linear) for m in model.modules())
