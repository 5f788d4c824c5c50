"""SoVITS decode of finished sentences, batched by length with padding masks.

Sentences are sorted by (noise scale, code length) and decoded in groups of up to ``max_batch``,
so rows of a batch have similar lengths (little padding). Each row's noise is drawn from its own
seeded, frame-indexed generator (``frame_noise``), so a sentence's audio does not depend on its neighbours; the
style vector ``ge`` comes precomputed per reference (cached by the caller).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from fastsovits.engine.jobs import DecodeInputs
from fastsovits.engine.noise import frame_noise


@dataclass(frozen=True)
class DecodeItem:
    codes: Tensor  # [T25] int64 semantic tokens
    inputs: DecodeInputs  # target phones, style, noise scale, speed, seed


class SentenceDecoder(Protocol):
    """What the decode thread needs of a decoder (v1-v2ProPlus: :class:`DecodeRunner`; v3/v4:
    ``engine.decode_v3.InContextDecodeRunner``)."""

    device: torch.device
    part_seconds: dict[str, float]  # busy seconds of the decoder's parts, if it has parts

    def decode(self, items: Sequence[DecodeItem]) -> list[np.ndarray]: ...


def decode_in_groups(
    items: Sequence[DecodeItem],
    keys: Sequence[tuple[float, int]],
    max_rows: int,
    max_padded: int,
    decode_group: Callable[[list[DecodeItem]], list[np.ndarray]],
) -> list[np.ndarray]:
    """Decode ``items`` in groups, returning their audio in the given order.

    ``keys[i]`` = (what a group must share, the item's size). Items are sorted by key; a group holds at
    most ``max_rows`` items of one shared value, and at most ``max_padded`` in rows x its largest size."""
    order = sorted(range(len(items)), key=lambda i: keys[i])
    out: list[np.ndarray | None] = [None] * len(items)
    group: list[int] = []
    for i in [*order, None]:
        if group and (
            i is None
            or len(group) == max_rows
            or (len(group) + 1) * keys[i][1] > max_padded  # sorted: i is the largest so far
            or keys[i][0] != keys[group[0]][0]
        ):
            for j, audio in zip(group, decode_group([items[k] for k in group])):
                out[j] = audio
            group = []
        if i is not None:
            group.append(i)
    return out  # type: ignore[return-value]


MAX_BATCH_SECONDS = 120.0  # audio seconds decoded in one call: bounds the vocoder's activations


class DecodeRunner:
    def __init__(self, synthesizer, max_batch: int = 8, max_batch_seconds: float = MAX_BATCH_SECONDS) -> None:
        self.synth = synthesizer
        self.max_batch = max_batch
        self.max_batch_codes = int(
            max_batch_seconds
            * synthesizer.config.sampling_rate
            / (synthesizer.config.samples_per_frame * synthesizer.config.frames_per_code)
        )
        self.device = next(synthesizer.parameters()).device
        self.part_seconds: dict[str, float] = {}  # one part: the whole decode is the decode stage

    def _noise(self, items: Sequence[DecodeItem], frames: list[int], channels: int) -> Tensor:
        out = torch.zeros(len(items), channels, max(frames))
        for i, (item, n) in enumerate(zip(items, frames)):
            out[i, :, :n] = frame_noise(item.inputs.seed, 0, n, channels)
        return out.to(self.device)

    @torch.no_grad()
    def decode_group(self, items: Sequence[DecodeItem]) -> list[np.ndarray]:
        synth, cfg = self.synth, self.synth.config
        code_lens = torch.tensor([int(it.codes.numel()) for it in items])
        phone_lens = torch.tensor([int(it.inputs.phones.numel()) for it in items])
        codes = torch.zeros(len(items), 1, int(code_lens.max()), dtype=torch.long)
        phones = torch.zeros(len(items), int(phone_lens.max()), dtype=torch.long)
        for i, it in enumerate(items):
            codes[i, 0, : code_lens[i]] = it.codes
            phones[i, : phone_lens[i]] = it.inputs.phones
        speeds = [it.inputs.speed for it in items]
        samples = synth.wav_lengths(code_lens, speeds)
        frames = (samples // cfg.samples_per_frame).tolist()
        noise_scale = items[0].inputs.noise_scale
        noise = self._noise(items, frames, cfg.inter_channels) if noise_scale != 0 else None
        ge = torch.cat([it.inputs.ge for it in items]).to(self.device)
        wav = synth.decode_with_style(
            codes.to(self.device),
            phones.to(self.device),
            ge,
            noise_scale,
            speeds,
            noise=noise,
            code_lengths=code_lens,
            phone_lengths=phone_lens,
        )
        wav = wav[:, 0].float().cpu().numpy()
        return [wav[i, : int(samples[i])].copy() for i in range(len(items))]

    def decode(self, items: Sequence[DecodeItem]) -> list[np.ndarray]:
        """Audio (float32, the model's rate) of every item, in the given order.

        Groups hold at most ``max_batch`` rows and, padded, at most ``max_batch_seconds`` of audio."""
        return decode_in_groups(
            items,
            [(it.inputs.noise_scale, it.codes.numel()) for it in items],
            self.max_batch,
            self.max_batch_codes,
            self.decode_group,
        )
