"""Text-to-semantic model: phonemes + BERT features + prompt tokens -> semantic tokens.

Architecture of the official GPT-SoVITS "GPT" (s1) stage: a post-LayerNorm transformer over the
sequence [text ; audio]. Text positions see all text; audio positions see all text plus the audio
up to themselves. Each stream has its own learned scale ``alpha`` on a shared sinusoid table,
and positions restart at 0 at the first audio token.

Sequences of different lengths are packed as rows [text | audio | padding] (right padding), so a
row's prefix occupies slots 0..L-1 of its KV-cache row; see :mod:`fastsovits.models.kv_cache`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fastsovits.errors import InvalidInput, InvalidParameter
from fastsovits.models.kv_cache import StaticKVCache
from fastsovits.models.layers import T2SBlock, left_padded_mask, prefix_mask, sine_table

# official yaml name -> our field name (the "model" section of configs/s1longer*.yaml)
_OFFICIAL_FIELDS = {
    "embedding_dim": "embedding_dim",
    "hidden_dim": "hidden_dim",
    "head": "heads",
    "n_layer": "n_layers",
    "phoneme_vocab_size": "phoneme_vocab_size",
    "vocab_size": "vocab_size",
    "EOS": "eos",
    "dropout": "dropout",
}


@dataclass(frozen=True)
class T2SConfig:
    """Architecture of a text-to-semantic model (saved with its weights)."""

    embedding_dim: int = 512
    hidden_dim: int = 512
    heads: int = 16
    n_layers: int = 24
    phoneme_vocab_size: int = 732
    vocab_size: int = 1025
    eos: int = 1024
    dropout: float = 0.0  # token-embedding dropout (official ``model.dropout``)
    layer_dropout: float = 0.1  # attention / FFN / positional dropout in training (fixed 0.1 officially)
    bert_dim: int = 1024

    def __post_init__(self) -> None:
        for name in (
            "embedding_dim",
            "hidden_dim",
            "heads",
            "n_layers",
            "phoneme_vocab_size",
            "vocab_size",
            "bert_dim",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidParameter(f"T2SConfig.{name} must be a positive int, got {value!r}")
        if self.embedding_dim != self.hidden_dim:
            raise InvalidParameter(
                f"T2SConfig: embedding_dim ({self.embedding_dim}) must equal hidden_dim ({self.hidden_dim})"
            )
        if self.hidden_dim % self.heads:
            raise InvalidParameter(f"T2SConfig: hidden_dim {self.hidden_dim} is not divisible by heads {self.heads}")
        if self.eos != self.vocab_size - 1:
            raise InvalidParameter(f"T2SConfig: eos must be vocab_size - 1 = {self.vocab_size - 1}, got {self.eos}")
        for name in ("dropout", "layer_dropout"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise InvalidParameter(f"T2SConfig.{name} must be in [0, 1), got {getattr(self, name)!r}")

    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.heads

    @property
    def ffn_dim(self) -> int:
        return 4 * self.hidden_dim  # fixed by the official code (``linear_units`` is not read)

    @classmethod
    def from_official(cls, config: Mapping[str, Any]) -> T2SConfig:
        """From an official s1 config: the whole yaml dict or just its ``model`` section."""
        section = config.get("model", config) if isinstance(config, Mapping) else None
        if not isinstance(section, Mapping):
            raise InvalidParameter(f"official s1 config: expected a mapping with a 'model' section, got {config!r}")
        missing = [k for k in _OFFICIAL_FIELDS if k not in section]
        if missing:
            raise InvalidParameter(f"official s1 config: 'model' section lacks {missing}; found {sorted(section)}")
        values = {ours: section[theirs] for theirs, ours in _OFFICIAL_FIELDS.items()}
        values["dropout"] = float(values["dropout"])
        return cls(**values)

    def to_official(self) -> dict[str, Any]:
        """The ``model`` section of an official s1 yaml for this architecture."""
        out: dict[str, Any] = {theirs: getattr(self, ours) for theirs, ours in _OFFICIAL_FIELDS.items()}
        out["linear_units"] = self.ffn_dim
        out["random_bert"] = 0
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> T2SConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidParameter(f"T2SConfig: unknown fields {unknown}")
        return cls(**dict(data))


class Text2Semantic(nn.Module):
    """The AR transformer. Parameters are fp32 (or whatever the model is cast to).

    ``pe`` is a non-persistent sinusoid table; after building on ``meta`` and loading weights
    with ``assign=True`` call :meth:`reset_tables` to materialise it.
    """

    def __init__(self, config: T2SConfig, max_positions: int = 4000) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_dim
        self.bert_proj = nn.Linear(config.bert_dim, d)
        self.text_embedding = nn.Embedding(config.phoneme_vocab_size, d)
        self.text_alpha = nn.Parameter(torch.ones(1))
        self.audio_embedding = nn.Embedding(config.vocab_size, d)
        self.audio_alpha = nn.Parameter(torch.ones(1))
        self.layers = nn.ModuleList(
            T2SBlock(d, config.heads, config.ffn_dim, config.layer_dropout) for _ in range(config.n_layers)
        )
        self.head = nn.Linear(d, config.vocab_size, bias=False)
        self.register_buffer("pe", sine_table(max_positions, d), persistent=False)

    # ------------------------------------------------------------------ tables and embeddings
    def reset_tables(self, n_positions: int | None = None) -> None:
        """(Re)build the sinusoid table on the parameters' device (needed after a meta build)."""
        n = n_positions or self.pe.shape[0]
        device = self.head.weight.device
        self.pe = sine_table(n, self.config.hidden_dim, device=device).to(self.head.weight.dtype)

    def ensure_positions(self, n: int) -> None:
        """Grow the sinusoid table to at least ``n`` rows (call outside the decode step)."""
        if self.pe.shape[0] < n or self.pe.device != self.head.weight.device:
            self.reset_tables(max(n, self.pe.shape[0]))

    def embed_text(self, phones: Tensor, bert: Tensor) -> Tensor:
        """phones: [B, N] int64, bert: [B, bert_dim, N] -> [B, N, D] at positions 0..N-1."""
        n = phones.shape[1]
        x = self.text_embedding(phones)
        x = F.dropout(x, self.config.dropout, self.training) if self.config.dropout else x
        x = x + self.bert_proj(bert.transpose(1, 2).to(self.bert_proj.weight.dtype))
        x = x + self.text_alpha * self.pe[:n]
        return F.dropout(x, self.config.layer_dropout, self.training)

    def embed_audio(self, tokens: Tensor) -> Tensor:
        """tokens: [B, T] int64 -> [B, T, D] at audio positions 0..T-1."""
        x = self.audio_embedding(tokens)
        x = F.dropout(x, self.config.dropout, self.training) if self.config.dropout else x
        x = x + self.audio_alpha * self.pe[: tokens.shape[1]]
        return F.dropout(x, self.config.layer_dropout, self.training)

    def _pack(self, text: Tensor, text_len: Tensor, audio: Tensor, audio_len: Tensor) -> tuple[Tensor, Tensor]:
        """Place each row's audio right after its own text: -> x [B, P, D], seq_len [B]."""
        b, n, d = text.shape
        if audio.shape[1] == 0:
            audio = text.new_zeros(b, 1, d)
        seq_len = text_len + audio_len
        width = int(seq_len.max())
        s = torch.arange(width, device=text.device).view(1, width)  # [1, P]
        is_text = s < text_len.view(-1, 1)  # [B, P]
        text_idx = s.clamp(max=n - 1).expand(b, width)
        audio_idx = (s - text_len.view(-1, 1)).clamp(0, audio.shape[1] - 1)
        x = torch.where(
            is_text.unsqueeze(-1),
            text.gather(1, text_idx.unsqueeze(-1).expand(b, width, d)),
            audio.gather(1, audio_idx.unsqueeze(-1).expand(b, width, d)),
        )
        return x * (s < seq_len.view(-1, 1)).unsqueeze(-1).to(x.dtype), seq_len

    def _check_rows(self, phones: Tensor, phone_lens: Tensor, bert: Tensor, audio: Tensor, audio_lens: Tensor) -> None:
        if phones.dim() != 2 or bert.shape != (phones.shape[0], self.config.bert_dim, phones.shape[1]):
            raise InvalidInput(
                f"t2s: phones [B, N] and bert [B, {self.config.bert_dim}, N] expected, "
                f"got {tuple(phones.shape)} and {tuple(bert.shape)}"
            )
        if audio.dim() != 2 or audio.shape[0] != phones.shape[0]:
            raise InvalidInput(f"t2s: audio tokens [B, T] expected for B={phones.shape[0]}, got {tuple(audio.shape)}")
        lens = torch.stack([phone_lens.min(), phone_lens.max(), audio_lens.min(), audio_lens.max()]).tolist()
        if lens[0] < 1 or lens[1] > phones.shape[1] or lens[2] < 0 or lens[3] > audio.shape[1]:
            raise InvalidInput(
                f"t2s: lengths out of range: phone_lens={phone_lens.tolist()} for N={phones.shape[1]}, "
                f"audio_lens={audio_lens.tolist()} for T={audio.shape[1]}"
            )

    # ------------------------------------------------------------------ forward passes
    def _prefix_hidden(self, phones, phone_lens, bert, audio, audio_lens, cache=None, rows=None):
        self._check_rows(phones, phone_lens, bert, audio, audio_lens)
        self.ensure_positions(max(phones.shape[1], audio.shape[1], cache.max_len if cache is not None else 0))
        x, seq_len = self._pack(self.embed_text(phones, bert), phone_lens, self.embed_audio(audio), audio_lens)
        mask = prefix_mask(phone_lens, seq_len, x.shape[1])
        for i, block in enumerate(self.layers):
            x = block(x, mask, cache, i, rows)
        return x, seq_len

    def forward(self, phones: Tensor, phone_lens: Tensor, bert: Tensor, audio: Tensor, audio_lens: Tensor) -> Tensor:
        """Uncached logits at every packed position: -> [B, P, V] (P = max(phone_len + audio_len)).

        phones: [B, N] right-padded, bert: [B, bert_dim, N], audio: [B, T] right-padded tokens.
        Row b's logits predicting audio token k sit at position phone_lens[b] + k - 1.
        """
        hidden, _ = self._prefix_hidden(phones, phone_lens, bert, audio, audio_lens)
        return self.head(hidden)

    @torch.no_grad()
    def prefill(
        self,
        phones: Tensor,
        phone_lens: Tensor,
        bert: Tensor,
        prompts: Tensor,
        prompt_lens: Tensor,
        cache: StaticKVCache,
        rows: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Run rows' prefixes [text | prompt] and store their K/V in cache ``rows`` (default 0..B-1).

        phones: [B, N], phone_lens: [B], bert: [B, bert_dim, N], prompts: [B, T] (T may be 0),
        prompt_lens: [B] -> (logits for the first new token [B, V], next write positions [B]).
        """
        if rows is not None:
            rows = torch.as_tensor(rows, dtype=torch.long, device=cache.k.device)
        longest = int((phone_lens + prompt_lens).max())
        if longest + 1 > cache.max_len:
            raise InvalidInput(
                f"t2s prefill: prefix of {longest} tokens leaves no room in a cache of max_len {cache.max_len}"
            )
        hidden, seq_len = self._prefix_hidden(phones, phone_lens, bert, prompts, prompt_lens, cache, rows)
        cache.set_text_len(rows, phone_lens)
        b, _, d = hidden.shape
        last = hidden.gather(1, (seq_len - 1).view(b, 1, 1).expand(b, 1, d))[:, 0]  # [B, D]
        return self.head(last), seq_len.clone()

    def decode_step(self, tokens: Tensor, positions: Tensor, cache: StaticKVCache, kv_len: int | None = None) -> Tensor:
        """One cached step for cache rows 0..B-1: tokens [B, 1], positions [B] (write slots) -> [B, V].

        No host sync and no cache allocation: the new K/V go to slot ``positions[b]``, the audio
        position is ``positions - cache.text_len``. Callers keep positions < kv_len <= cache.max_len;
        ``kv_len`` (a host int) limits attention to the used part of the cache.
        """
        b = tokens.shape[0]
        audio_pos = positions - cache.text_len[:b]  # [B]
        x = self.audio_embedding(tokens) + (self.audio_alpha * self.pe[audio_pos]).unsqueeze(1)  # [B, 1, D]
        # Additive (0 / -inf) in the cache's dtype, made once for all layers: a boolean mask would be
        # converted to this inside every layer's attention.
        allowed = cache.step_mask(positions, kv_len)  # [B, 1, 1, kv_len]
        mask = torch.zeros(allowed.shape, dtype=cache.k.dtype, device=allowed.device).masked_fill_(
            ~allowed, float("-inf")
        )
        for i, block in enumerate(self.layers):
            x = block(x, mask, cache, i, slots=positions, kv_len=kv_len)
        return self.head(x[:, 0])

    def training_loss(
        self, phones: Tensor, phone_lens: Tensor, bert: Tensor, codes: Tensor, code_lens: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Teacher-forced summed cross entropy, as the official s1 training (non-DPO).

        Inputs are right-padded (as collated). Text is moved to LEFT padding with per-row
        positions starting at 0 (as in batched inference). Targets are the codes followed by EOS,
        and EOS at every padded position (those positions are in the loss, as officially).
        -> (loss [], logits [B, T+1, V], targets [B, T+1]).
        """
        self._check_rows(phones, phone_lens, bert, codes, code_lens)
        b, n = phones.shape
        t = codes.shape[1]
        self.ensure_positions(max(n, t))
        eos = self.config.eos
        valid = torch.arange(t, device=codes.device).view(1, t) < code_lens.view(-1, 1)  # [B, T]
        targets = torch.cat([torch.where(valid, codes, eos), codes.new_full((b, 1), eos)], dim=1)  # [B, T+1]
        inputs = targets[:, :-1]
        text = self.embed_text(phones, bert)  # [B, N, D], right-padded
        shift = (n - phone_lens).view(-1, 1)  # left-pad offset per row
        s = torch.arange(n, device=phones.device).view(1, n)
        src = (s - shift).clamp(min=0)  # [B, N]
        text = text.gather(1, src.unsqueeze(-1).expand(b, n, text.shape[2]))
        text = text * (s >= shift).unsqueeze(-1).to(text.dtype)
        x = torch.cat([text, self.embed_audio(inputs)], dim=1)  # [B, N+T, D]
        mask = left_padded_mask(phone_lens, n, code_lens, t)
        for block in self.layers:
            x = block(x, mask)
        logits = self.head(x[:, n - 1 :])  # [B, T+1, V]
        loss = F.cross_entropy(logits.transpose(1, 2), targets, reduction="sum")
        return loss, logits, targets

    @torch.no_grad()
    def audio_token_similarity(self, token: int) -> Tensor:
        """Cosine similarity of every audio-token embedding with row ``token``: -> [V] float32."""
        table = self.audio_embedding.weight.float()
        return F.cosine_similarity(table[token].unsqueeze(0), table, dim=-1)

    @torch.no_grad()
    def text_attention(self, phones: Tensor, bert: Tensor, audio: Tensor, query_chunk: int = 256) -> Tensor:
        """Attention from each audio token to each text position: -> [T, N] float32.

        phones: [N] ids, bert: [bert_dim, N], audio: [T] tokens (prompt and generated) of one row
        [text | audio]. Uncached full forward (eval); row k holds the attention probabilities of the
        query at audio token k's own position over the N text keys, averaged over heads and layers
        (a row sums to at most 1: the rest goes to audio keys). Query rows are processed
        ``query_chunk`` at a time to bound memory. The model is left untouched (a sinusoid table too
        short for this row is built locally), so this may run beside the engine's decode steps.
        """
        n, t = int(phones.numel()), int(audio.numel())
        device, dtype = self.head.weight.device, self.head.weight.dtype
        if bert.shape != (self.config.bert_dim, n) or n < 1:
            raise InvalidInput(
                f"t2s text_attention: phones [N] and bert [{self.config.bert_dim}, N] expected, "
                f"got {tuple(phones.shape)} and {tuple(bert.shape)}"
            )
        out = torch.zeros(t, n, dtype=torch.float32, device=device)
        if t == 0:
            return out
        longest = max(n, t)
        pe = self.pe
        if pe.shape[0] < longest or pe.device != device:
            pe = sine_table(longest, self.config.hidden_dim, device=device).to(dtype)
        phones, audio = phones.to(device).view(1, n), audio.to(device).view(1, t)
        text = self.text_embedding(phones) + self.bert_proj(bert.to(device, dtype).t().unsqueeze(0))
        text = text + self.text_alpha * pe[:n]
        speech = self.audio_embedding(audio) + self.audio_alpha * pe[:t]
        x = torch.cat([text, speech], dim=1)  # [1, N+T, D]
        mask = prefix_mask(torch.tensor([n], device=device), torch.tensor([n + t], device=device), n + t)
        for block in self.layers:
            for start in range(0, t, query_chunk):
                stop = min(start + query_chunk, t)
                probs = block.attention_probs(x, mask, slice(n + start, n + stop))  # [1, H, Q, N+T]
                out[start:stop] += probs[0, :, :, :n].mean(dim=0)
            x = block(x, mask)
        return out / len(self.layers)
