"""A preallocated key/value cache for the text-to-semantic transformer.

Layout: one tensor for keys and one for values, each ``[layers, batch, heads, max_len, head_dim]``,
allocated once and written in place. A cache row is a slot that holds one sequence; row ``b``
keeps its prefix (text then prompt tokens) in slots ``0 .. L_b-1`` and generated token ``k`` in
slot ``L_b + k``. Rows may have different prefix lengths: the decode mask lets row ``b`` see
slots ``<= position[b]`` only, so stale values beyond a row's current position are never read.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fastsovits.errors import InvalidParameter


class StaticKVCache:
    """Fixed-size K/V storage plus the per-row text length needed to recover audio positions."""

    def __init__(
        self,
        n_layers: int,
        batch: int,
        heads: int,
        max_len: int,
        head_dim: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        for name, value in (
            ("n_layers", n_layers),
            ("batch", batch),
            ("heads", heads),
            ("max_len", max_len),
            ("head_dim", head_dim),
        ):
            if value < 1:
                raise InvalidParameter(f"StaticKVCache: {name} must be >= 1, got {value}")
        shape = (n_layers, batch, heads, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        # text_len[b]: number of text positions in row b (audio position = slot - text_len)
        self.text_len = torch.zeros(batch, dtype=torch.long, device=device)
        # slot_ids: [max_len] 0..max_len-1, kept so the decode step builds its mask without arange
        self.slot_ids = torch.arange(max_len, dtype=torch.long, device=device)

    @classmethod
    def for_model(cls, model: torch.nn.Module, batch: int, max_len: int) -> StaticKVCache:
        """A cache sized for ``model`` (a ``Text2Semantic``) on the model's device.

        The cache has the model's dtype, except for a bf16 model on a CPU: its keys and values are
        kept in fp32, because the CPU's attention kernels for one query row are much slower in bf16
        than in fp32 while the bf16 matmuls are what saves time (the step reads half the weight bytes).
        """
        cfg = model.config
        param = next(model.parameters())
        return cls(
            cfg.n_layers, batch, cfg.heads, max_len, cfg.head_dim, dtype=cls.dtype_for(model), device=param.device
        )

    @staticmethod
    def dtype_for(model: torch.nn.Module) -> torch.dtype:
        """The dtype a cache for ``model`` holds (see :meth:`for_model`)."""
        param = next(model.parameters())
        if param.dtype == torch.bfloat16 and param.device.type == "cpu":
            return torch.float32
        return param.dtype

    @property
    def nbytes(self) -> int:
        """Bytes of the key and value storage."""
        return self.k.nbytes + self.v.nbytes

    @property
    def batch(self) -> int:
        return self.k.shape[1]

    @property
    def max_len(self) -> int:
        return self.k.shape[3]

    def write_prefix(self, layer: int, rows: Tensor | None, k: Tensor, v: Tensor) -> None:
        """Store a prefill's keys/values in slots ``0 .. S-1`` of ``rows`` (all rows when None).

        k, v: [b, heads, S, head_dim]; rows: [b] int64 cache rows.
        """
        s = k.shape[2]
        if rows is None:
            self.k[layer, : k.shape[0], :, :s] = k
            self.v[layer, : v.shape[0], :, :s] = v
        else:
            self.k[layer][rows, :, :s] = k.to(self.k.dtype)
            self.v[layer][rows, :, :s] = v.to(self.v.dtype)

    def write_step(
        self, layer: int, slots: Tensor, k: Tensor, v: Tensor, kv_len: int | None = None
    ) -> tuple[Tensor, Tensor]:
        """Write one new key/value per row at ``slots[b]``; return the layer's keys/values for attention.

        The step covers cache rows ``0 .. B-1`` (B = k.shape[0] <= batch) and attends over slots
        ``0 .. kv_len-1`` (default: all); both are views, so a step with few active rows or short
        sequences reads only that part of the cache. slots: [B] int64 (< kv_len);
        k, v: [B, heads, 1, head_dim] -> two views [B, heads, kv_len, head_dim].
        """
        b, h, _, d = k.shape
        index = slots.view(b, 1, 1, 1).expand(b, h, 1, d)  # [B, heads, 1, head_dim]
        k_layer = self.k[layer, :b]
        v_layer = self.v[layer, :b]
        k_layer.scatter_(2, index, k.to(k_layer.dtype))
        v_layer.scatter_(2, index, v.to(v_layer.dtype))
        if kv_len is not None and kv_len < self.max_len:
            return k_layer[:, :, :kv_len], v_layer[:, :, :kv_len]
        return k_layer, v_layer

    def step_mask(self, slots: Tensor, kv_len: int | None = None) -> Tensor:
        """Attention mask for a decode step, True = attend: [B] -> [B, 1, 1, kv_len or max_len]."""
        ids = self.slot_ids if kv_len is None else self.slot_ids[:kv_len]
        return (ids.view(1, -1) <= slots.view(-1, 1)).view(slots.shape[0], 1, 1, -1)

    def set_text_len(self, rows: Tensor | None, text_len: Tensor) -> None:
        if rows is None:
            self.text_len[: text_len.shape[0]] = text_len
        else:
            self.text_len[rows] = text_len
