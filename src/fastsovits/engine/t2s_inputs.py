"""What the text-to-semantic model reads for one sentence, and its padding into a batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from fastsovits.errors import InvalidInput


@dataclass(frozen=True)
class T2SRow:
    """One input: phones [N] int64, bert [bert_dim, N] float, prompt [T] int64 (None: no reference)."""

    phones: Tensor
    bert: Tensor
    prompt: Tensor | None = None


def pad_rows(rows: Sequence[T2SRow], bert_dim: int, device: torch.device | str):
    """-> phones [B, N], phone_lens [B], bert [B, bert_dim, N], prompts [B, T], prompt_lens [B]."""
    if not rows:
        raise InvalidInput("t2s: no rows given")
    b = len(rows)
    n = max(int(r.phones.shape[0]) for r in rows)
    t = max(int(r.prompt.shape[0]) if r.prompt is not None else 0 for r in rows)
    phones = torch.zeros(b, n, dtype=torch.long)
    bert = torch.zeros(b, bert_dim, n, dtype=torch.float32)
    prompts = torch.zeros(b, t, dtype=torch.long)
    phone_lens = torch.zeros(b, dtype=torch.long)
    prompt_lens = torch.zeros(b, dtype=torch.long)
    for i, r in enumerate(rows):
        ni = r.phones.shape[0]
        if ni == 0 or tuple(r.bert.shape) != (bert_dim, ni):
            raise InvalidInput(f"t2s row {i}: {ni} phones with bert of shape {tuple(r.bert.shape)}")
        phones[i, :ni] = r.phones
        bert[i, :, :ni] = r.bert
        phone_lens[i] = ni
        if r.prompt is not None:
            prompts[i, : r.prompt.shape[0]] = r.prompt
            prompt_lens[i] = r.prompt.shape[0]
    return phones.to(device), phone_lens.to(device), bert.to(device), prompts.to(device), prompt_lens.to(device)
