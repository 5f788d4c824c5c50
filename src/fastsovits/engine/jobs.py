"""What the engine is asked to do: sentences with their T2S and decode inputs, built from a request.

``build_sentence_job`` turns one phonemized sentence of a request into a :class:`SentenceJob`:
the prompt (reference phones, BERT features and tokens) joined in front of the sentence, the
row's sampling knobs and seed (``seed + index``, so a seeded request gives every sentence a seed
of its own that does not depend on what else is batched), its token cap and, for token streaming,
its chunk plan. The decode inputs (:class:`DecodeInputs`) are made once here and travel with the
job to the decode thread.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from torch import Tensor

from fastsovits import host_ops
from fastsovits.engine.guard import GuardSpec, voice_rate
from fastsovits.engine.sampling import RowSampling
from fastsovits.engine.stream_decode import StreamSpec
from fastsovits.engine.t2s_inputs import T2SRow
from fastsovits.limits import MAX_NEW_TOKENS
from fastsovits.params import SynthesisParams

if TYPE_CHECKING:
    from fastsovits.models.v3_synthesis import InContextPrompt


@dataclass(frozen=True)
class DecodeInputs:
    """Everything the SoVITS decoder needs of a sentence besides its generated tokens."""

    phones: Tensor  # [N] ids of the target sentence only (as the official decoder reads them)
    ge: Tensor  # [1, gin, 1] style vector of the voice
    noise_scale: float = 0.5
    speed: float = 1.0
    seed: int = 0  # latent-noise seed (always concrete: an unseeded request gets a random one)
    prompt: InContextPrompt | None = None  # v3/v4: the voice's in-context window (CFM decoding)
    sample_steps: int = 32  # v3/v4: CFM Euler steps


@dataclass(frozen=True)
class SentenceJob:
    """One sentence: T2S inputs (prompt + target phones, BERT, prompt tokens) and decode inputs."""

    t2s: T2SRow
    decode: DecodeInputs
    sampling: RowSampling = RowSampling()
    max_new_tokens: int = MAX_NEW_TOKENS
    stream: StreamSpec | None = None  # token-chunk streaming of this sentence
    guard: GuardSpec | None = None  # the sentence guard (None: off)

    @property
    def prefix_len(self) -> int:
        """Cache positions the sentence's prefix takes (prompt + target phones, prompt tokens)."""
        prompt = 0 if self.t2s.prompt is None else int(self.t2s.prompt.numel())
        return int(self.t2s.phones.numel()) + prompt


@dataclass
class SynthesisJob:
    sentences: list[SentenceJob] = field(default_factory=list)
    request_id: str = ""


class VoiceFeatures(Protocol):
    """What a job needs of a voice (``fastsovits.api.Reference`` has these)."""

    @property
    def prompt_semantic(self) -> Tensor | None: ...
    @property
    def prompt_phones(self) -> Tensor | None: ...
    @property
    def prompt_bert(self) -> Tensor | None: ...
    @property
    def ge(self) -> Tensor: ...
    @property
    def in_context(self) -> InContextPrompt | None: ...


def build_sentence_job(
    index: int,
    phones: Tensor,
    bert: Tensor,
    voice: VoiceFeatures,
    params: SynthesisParams,
    *,
    stream: bool = False,
    token_cap: int = MAX_NEW_TOKENS,
) -> SentenceJob:
    """Sentence ``index`` of a request (``phones`` [N], ``bert`` [bert_dim, N]) as a job for the engine.

    ``token_cap`` is the model's own cap on generated tokens (from its ``max_sec``); the request's
    ``max_new_tokens`` applies below it."""
    if voice.prompt_phones is not None and voice.prompt_bert is not None:  # host joins: no OpenMP team
        all_phones = host_ops.cat([voice.prompt_phones, phones])
        all_bert = host_ops.cat([voice.prompt_bert, bert], dim=1)
    else:
        all_phones, all_bert = phones, bert
    seed = params.fixed_seed
    row_seed = None if seed is None else seed + index
    sampling = RowSampling(params.top_k, params.top_p, params.temperature, params.repetition_penalty, row_seed)
    noise_seed = row_seed if row_seed is not None else random.SystemRandom().getrandbits(62)
    decode = DecodeInputs(
        phones, voice.ge, params.noise_scale, params.speed_factor, noise_seed, voice.in_context, params.sample_steps
    )
    spec = StreamSpec(params.min_chunk_length, params.fixed_length_chunk, params.overlap_length) if stream else None
    cap = min(params.max_new_tokens, token_cap)
    guard = None
    if params.guard:
        prompt_tokens = 0 if voice.prompt_semantic is None else int(voice.prompt_semantic.numel())
        prompt_phones = 0 if voice.prompt_phones is None else int(voice.prompt_phones.numel())
        guard = GuardSpec(
            voice_rate(prompt_tokens, prompt_phones),
            params.guard_min_ratio,
            params.guard_max_ratio,
            params.guard_loop_share,
            params.max_retries,
        )
        cap = min(cap, guard.token_limit(int(phones.numel())))  # a runaway stops at the guard's cap
    return SentenceJob(T2SRow(all_phones, all_bert, voice.prompt_semantic), decode, sampling, cap, spec, guard)
