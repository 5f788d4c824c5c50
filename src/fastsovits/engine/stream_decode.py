"""Token-chunk streaming: audio of a sentence while its semantic tokens are still being generated.

What the official streaming modes 2 and 3 (``streaming_mode`` with ``min_chunk_length`` and
``fixed_length_chunk``) set out to do, without two of their defects: the official cuts can emit some
tokens in two chunks, and its chunk audio is not continuous with the next chunk's.

- ``ChunkPlanner`` (no torch) decides where a chunk ends. Fixed mode: every ``chunk_tokens``
  tokens; with ``split_first`` the first ``chunk_tokens`` go out as two halves (the first audio
  after half the tokens, the later cuts where they were). Silence mode: once ``chunk_tokens + 2`` tokens are pending, cut after the pair of
  consecutive tokens most similar to the mute token (cosine similarity of audio embeddings),
  if that pair looks silent (score >= 0) and leaves at least ``chunk_tokens`` tokens in the chunk;
  a chunk is forced at ``4 * chunk_tokens`` pending tokens so latency stays bounded. Every token
  belongs to exactly one chunk (the official yields some tokens twice).
- ``StreamDecoder`` decodes a chunk: the prior (text + semantic encoder) runs over all tokens so
  far, the flow and the vocoder only over the new frames plus ``context_frames`` of left context
  and the frames held back at the right; the newest ``hold_frames`` frames are not emitted yet
  (they lack right context) and the first ``overlap`` samples of each chunk are cross-faded with
  the previous chunk's tail. The pieces concatenated have exactly the length of the full decode.
- Noise is indexed by latent frame (``frame_noise``), so re-decoding a frame gives the same draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from fastsovits.engine.noise import frame_noise
from fastsovits.errors import InvalidParameter

if TYPE_CHECKING:
    from fastsovits.engine.jobs import DecodeInputs

MUTE_TOKEN = 486  # the official "silence" semantic token used to score chunk boundaries
MIN_FIRST_CHUNK = 8  # tokens: a split first chunk is never shorter (the decoder holds the newest ~4 back)


@dataclass(frozen=True)
class StreamSpec:
    chunk_tokens: int = 16  # official min_chunk_length
    fixed_length: bool = False  # official fixed_length_chunk (mode 3)
    overlap_tokens: int = 2  # official overlap_length: cross-fade length, in tokens
    split_first: bool = True  # fixed mode: cut the first chunk in two halves (earlier first audio)

    @property
    def first_cut(self) -> int:
        """Tokens in the first chunk of fixed mode."""
        n = self.chunk_tokens
        return n // 2 if self.split_first and n // 2 >= MIN_FIRST_CHUNK else n


class ChunkPlanner:
    """Where the next chunk of a row ends. ``mute_sim[token]``: similarity to the mute token."""

    def __init__(self, spec: StreamSpec, mute_sim: Sequence[float] | None = None) -> None:
        if not spec.fixed_length and mute_sim is None:
            raise InvalidParameter("silence-based chunking needs the mute-token similarities")
        self.spec, self.mute_sim = spec, mute_sim

    def next_cut(self, tokens: Sequence[int], start: int) -> int | None:
        """Exclusive end of a chunk starting at ``start``, or None to wait for more tokens."""
        n, pending = self.spec.chunk_tokens, len(tokens) - start
        if self.spec.fixed_length:
            first = self.spec.first_cut
            end = first if start < first else (start // n + 1) * n  # then every n tokens, as unsplit
            return end if len(tokens) >= end else None
        if pending < n + 2:
            return None
        sim = self.mute_sim
        score = [sim[t] if sim[t] >= 0 else -1.0 for t in tokens[start:]]  # type: ignore[index]
        best, best_i = -math.inf, -1
        for i in range(n - 1, pending - 1):  # the chunk ends after token i (keeps >= n tokens)
            s = score[i] + score[i + 1]
            if s > best:
                best, best_i = s, i
        if best >= 0:
            return start + best_i + 1
        return start + pending - 1 if pending >= 4 * n else None  # bounded latency


@dataclass
class StreamState:
    cut: int = 0  # tokens already assigned to chunks
    frames_out: int = 0  # latent frames whose audio has been emitted
    tail: np.ndarray | None = field(default=None, repr=False)  # samples after frames_out, to cross-fade


class StreamDecoder:
    def __init__(self, synthesizer, context_frames: int = 16, margin_frames: int = 4) -> None:
        self.synth = synthesizer
        self.context_frames, self.margin_frames = context_frames, margin_frames
        self.device = next(synthesizer.parameters()).device

    @torch.no_grad()
    def chunk(
        self, state: StreamState, codes: torch.Tensor, inputs: DecodeInputs, spec: StreamSpec, final: bool
    ) -> np.ndarray:
        """Audio for the tokens ``codes`` [T25] generated so far (all of them when ``final``)."""
        synth, spf = self.synth, self.synth.config.samples_per_frame
        phones, ge, noise_scale, speed, seed = inputs.phones, inputs.ge, inputs.noise_scale, inputs.speed, inputs.seed
        overlap_frames = spec.overlap_tokens * synth.config.frames_per_code
        prior = synth.prior_stats(
            codes.view(1, 1, -1).to(self.device), phones.view(1, -1).to(self.device), ge.to(self.device), speed
        )
        total = prior.m.shape[2]
        f0 = state.frames_out
        f1 = total if final else total - overlap_frames - self.margin_frames
        if f1 <= f0 and not final:
            return np.zeros(0, dtype=np.float32)
        a = max(0, f0 - self.context_frames)
        m, logs, mask = prior.m[:, :, a:], prior.logs[:, :, a:], prior.mask[:, :, a:]
        z_p = m
        if noise_scale != 0:
            noise = frame_noise(seed, a, total, m.shape[1]).to(m.device, m.dtype).unsqueeze(0)
            z_p = m + noise * torch.exp(logs) * noise_scale
        z = synth.flow(z_p, mask, ge.to(self.device), reverse=True) * mask
        wav = synth.vocoder(z, ge.to(self.device))[0, 0].float().cpu().numpy()  # [(total - a) * spf]
        region = wav[(f0 - a) * spf :]
        n_out = (f1 - f0) * spf
        piece = region[:n_out].copy()
        if state.tail is not None and len(state.tail):
            x = min(len(state.tail), len(piece))
            w = np.linspace(0.0, 1.0, x + 2, dtype=np.float32)[1:-1]
            piece[:x] = state.tail[:x] * (1.0 - w) + piece[:x] * w
        state.tail = None if final else region[n_out : n_out + overlap_frames * spf].copy()
        state.frames_out = f1
        return piece
