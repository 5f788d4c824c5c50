"""v3/v4 decode of finished sentences: encoder features, the CFM sampler and the vocoder, batched across rows.

Rows are sorted by (sample steps, mel frames) and decoded in groups that share a step count: every
group is one call of :func:`fastsovits.models.v3_synthesis.synthesize` (each row keeps its own voice's
in-context window and chunk boundaries; padded frames are masked at every step). A group holds at
most ``max_batch`` rows and at most ``max_group_frames`` padded mel frames, the number whose
activations (:func:`activation_bytes_per_frame`) fit the decode budget, so a large group splits
instead of exhausting memory. Each row's CFM noise comes from its own generator seeded with the
row's seed: a seeded sentence gives the same audio whatever else is in the group.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from fastsovits.engine.budget import available_memory
from fastsovits.engine.decode_runner import DecodeItem, decode_in_groups
from fastsovits.errors import InvalidInput
from fastsovits.models.sovits_v3 import SynthesizerV3
from fastsovits.models.v3_synthesis import WINDOWS, synthesize

DECODE_MEMORY_FRACTION = 0.25  # share of the free memory (at start) that one decode group may use
LIVE_VOCODER_TENSORS = 6  # activations alive at once in a vocoder stage (input, branch, sum, anti-alias copies)
LIVE_DIT_TENSORS = 4  # activations of the DiT's widest layer alive at once (input, attention/FF, residual)


def vocoder_values_per_frame(vocoder: nn.Module) -> int:
    """Largest activation (channels x samples) a vocoder makes per mel frame, over its upsampling stages."""
    widest, rate = 0, 1
    for module in vocoder.modules():  # the upsampling (transposed) convolutions, in order
        if isinstance(module, nn.ConvTranspose1d):
            stride = int(module.stride[0])
            widest = max(widest, module.in_channels * rate)
            rate *= stride
            widest = max(widest, module.out_channels * rate)
    if widest == 0:
        raise InvalidInput(f"{type(vocoder).__name__} has no upsampling stages to size its memory by")
    return widest


def activation_bytes_per_frame(model: SynthesizerV3, vocoder: nn.Module, dtype: torch.dtype) -> int:
    """Bytes of decode activations per padded mel frame of a group (the larger of the CFM and vocoder parts).

    CFM: the DiT's widest layer (feed-forward ``dim * ff_mult``, or QKV + output) for every frame plus
    one row of attention scores per head over the longest window. Vocoder: its widest stage."""
    dit = model.config.dit
    window = WINDOWS[model.config.version]
    item = torch.finfo(dtype).bits // 8
    cfm = LIVE_DIT_TENSORS * (max(dit.dim * dit.ff_mult, 4 * dit.heads * dit.dim_head) + dit.heads * window.t_chunk)
    voc = LIVE_VOCODER_TENSORS * vocoder_values_per_frame(vocoder)
    return max(cfm, voc) * max(item, 4)  # the vocoder and softmax run in at least fp32


class InContextDecodeRunner:
    """The v3/v4 counterpart of :class:`~fastsovits.engine.decode_runner.DecodeRunner` (same ``decode``)."""

    def __init__(
        self,
        model: SynthesizerV3,
        vocoder: nn.Module,
        max_batch: int = 8,
        memory_bytes: int | None = None,
    ) -> None:
        self.model, self.vocoder, self.max_batch = model, vocoder, max_batch
        self.device = next(model.parameters()).device
        self.window = WINDOWS[model.config.version]
        per_frame = activation_bytes_per_frame(model, vocoder, next(model.parameters()).dtype)
        budget = (
            memory_bytes
            if memory_bytes is not None
            else int(available_memory(str(self.device)) * DECODE_MEMORY_FRACTION)
        )
        # At least one window's worth, so that every sentence can be decoded alone.
        self.max_group_frames = max(self.window.t_chunk, budget // per_frame)
        self.part_seconds: dict[str, float] = {}  # busy seconds of "encode", "cfm", "vocoder" (decode thread)

    def frames(self, item: DecodeItem) -> int:
        """Mel frames of a sentence's decode: its features plus its voice's in-context prompt."""
        prompt = item.inputs.prompt.frames if item.inputs.prompt is not None else 0
        return self.model.feature_lengths([int(item.codes.numel())], [item.inputs.speed])[0][0] + prompt

    def _generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(seed % 2**63)

    @torch.no_grad()
    def decode_group(self, items: Sequence[DecodeItem]) -> list[np.ndarray]:
        prompts = []
        for it in items:
            if it.inputs.prompt is None:
                raise InvalidInput("a v3/v4 sentence needs its voice's in-context prompt (load the reference again)")
            prompts.append(it.inputs.prompt)
        out = synthesize(
            self.model,
            self.vocoder,
            prompts,
            [it.codes.view(1, 1, -1).to(self.device) for it in items],
            [it.inputs.phones.view(1, -1).to(self.device) for it in items],
            [it.inputs.speed for it in items],
            steps=items[0].inputs.sample_steps,
            generators=[self._generator(it.inputs.seed) for it in items],
            seconds=self.part_seconds,
        )
        assert out.audio is not None
        return [a.float().cpu().numpy().copy() for a in out.audio]

    def decode(self, items: Sequence[DecodeItem]) -> list[np.ndarray]:
        """Audio (float32, the vocoder's rate) of every item, in the given order."""
        keys = [(float(it.inputs.sample_steps), self.frames(it)) for it in items]
        return decode_in_groups(items, keys, self.max_batch, self.max_group_frames, self.decode_group)

    @property
    def sampling_rate(self) -> int:
        return self.window.sampling_rate
