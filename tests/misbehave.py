"""A tiny GPT made to misbehave on purpose, row by row (guard tests and benchmarks/guard.py).

``Misbehave`` wraps a ``Text2Semantic``'s ``decode_step``: for each cache row it knows the row's text
length (``cache.text_len``), how many tokens it has generated (its position past text + prompt) and
its first generated token, and a ``plan(text_len, first_token) -> Mode`` decides how that row behaves:
``NORMAL`` ends by EOS at about ``rate`` tokens per target phone, ``SHORT`` ends by EOS as soon as EOS
is allowed, ``LOOP`` repeats a 4-token pattern for a normal row's length and then ends, ``RUNAWAY`` never ends. Random tiny
weights never end a sentence by themselves, so even normal rows are steered (only their EOS step).
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Callable

import torch

BIG = 1e4


class Mode(enum.Enum):
    NORMAL = "normal"
    SHORT = "short"
    LOOP = "loop"
    RUNAWAY = "runaway"


class Misbehave:
    def __init__(
        self, model, prompt_phones: int, prompt_tokens: int, rate: float, plan: Callable[[int, int], Mode]
    ) -> None:
        self.model, self.plan, self.rate = model, plan, rate
        self.prompt_phones, self.prompt_tokens = prompt_phones, prompt_tokens
        self.eos = model.config.eos
        self.first: dict[int, int] = {}  # cache row -> its first generated token
        self.real = model.decode_step
        model.decode_step = self

    def expected_tokens(self, text_len: int, first: int) -> int:
        """Where a NORMAL row ends: rate x target phones, times a factor in [0.8, 1.25] from its first token."""
        phones = text_len - self.prompt_phones
        factor = 0.8 + 0.45 * (zlib.crc32(f"{first}".encode()) % 1000) / 1000
        return max(12, round(self.rate * phones * factor))

    def __call__(self, tokens, positions, cache, kv_len=None):
        logits = self.real(tokens, positions, cache, kv_len)
        for i in range(logits.shape[0]):
            text_len = int(cache.text_len[i])
            generated = int(positions[i]) - text_len - self.prompt_tokens  # tokens generated so far
            if generated <= 0:
                continue
            if generated == 1:
                self.first[i] = int(tokens[i, 0])
            first = self.first.get(i, 0)
            mode = self.plan(text_len, first)
            row = logits[i]
            if mode is Mode.LOOP:
                row.fill_(-BIG)
                nxt = 100 + (int(tokens[i, 0]) - 99) % 4  # 100, 101, 102, 103, 100, ...
                row[nxt] = BIG
                if generated >= self.expected_tokens(text_len, first):  # as long as a normal row
                    row[self.eos] = 2 * BIG
            elif mode is Mode.SHORT:
                row[self.eos] = BIG
            elif mode is Mode.NORMAL:
                row[self.eos] = BIG if generated >= self.expected_tokens(text_len, first) else -BIG
            else:  # RUNAWAY
                row[self.eos] = -BIG
        return logits


def first_token_plan(bad: Mode, share: float, text_lens: set[int] | None = None) -> Callable[[int, int], Mode]:
    """Rows (of the given text lengths, or all) whose first token falls in a ``share`` of token ids misbehave;
    a retry samples another first token, so it usually behaves."""

    def plan(text_len: int, first: int) -> Mode:
        if text_lens is not None and text_len not in text_lens:
            return Mode.NORMAL
        return bad if zlib.crc32(f"tok{first}".encode()) % 1000 < share * 1000 else Mode.NORMAL

    return plan


def torch_seeded(n: int) -> torch.Generator:
    return torch.Generator().manual_seed(n)
