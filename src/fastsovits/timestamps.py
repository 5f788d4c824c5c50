"""When each sentence and each word is spoken, in seconds from the start of a request's audio.

Sentences: their audio lengths and the ``fragment_interval`` pauses between them give exact start and
end times (always computed; nothing is run). Words (characters for zh/yue/ja) come from the alignment
between a sentence's generated semantic tokens and its phones:

1. the T2S model is run once more over [prompt phones + sentence phones | prompt tokens + generated
   tokens] (:meth:`~fastsovits.models.t2s.Text2Semantic.text_attention`): each generated token's
   attention over the sentence's phones, averaged over heads and layers;
2. :func:`monotonic_alignment` turns it into a monotonic path (a Viterbi / monotonic-alignment DP
   over log attention): every phone gets a contiguous span of tokens, in order, the first phone
   from the first token, the last phone to the last token. With fewer tokens than phones the same
   DP runs the other way (each token takes one or more phones, which share it evenly);
3. the phones of each word (:func:`fastsovits.text.words.word_units`) give its span in tokens;
   marks and spaces (pauses) join the word before them (the first word takes leading ones), so a
   sentence's words tile it: the first starts at the sentence's start and the last ends at its end;
4. a token lasts the sentence's audio length divided by its token count: 40 ms at 25 Hz tokens and
   speed 1, ``0.04 / speed_factor`` s in general (the decoder stretches the tokens by ``speed``).

The model and the engine are not imported here at run time; the TTS object is passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fastsovits.results import SentenceResult

if TYPE_CHECKING:
    from fastsovits.api import TTS, Reference
    from fastsovits.text.words import WordUnit

Span = tuple[str, float, float]  # (text, start, end) in token units inside one sentence
_EPS = 1e-8


@dataclass(frozen=True)
class WordTimestamp:
    text: str  # the word (a character for zh/yue/ja) as read: normalised text, with the marks that follow it
    start: float  # seconds from the start of the request's audio
    end: float

    def to_dict(self) -> dict:
        return {"text": self.text, "start": round(self.start, 3), "end": round(self.end, 3)}


@dataclass(frozen=True)
class SentenceTimestamps:
    index: int  # the sentence's position in its request
    start: float  # seconds from the start of the request's audio
    end: float  # end of the sentence's own audio (its pause follows)
    words: tuple[WordTimestamp, ...] = ()  # empty unless word timestamps were asked for

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "words": [w.to_dict() for w in self.words],
        }


# ----------------------------------------------------------------------------- alignment
def monotonic_path(logp: np.ndarray) -> np.ndarray:
    """Best monotonic path through ``logp`` [A, B] (A >= B >= 1): -> [A] column per row.

    The path starts at column 0, ends at column B-1 and moves 0 or 1 column per row, maximising
    the summed ``logp`` (dynamic programming, O(A*B))."""
    a_len, b_len = logp.shape
    if b_len < 1 or a_len < b_len:
        raise ValueError(f"monotonic_path needs rows >= columns >= 1, got {logp.shape}")
    score = np.full((a_len, b_len), -np.inf)
    score[0, 0] = logp[0, 0]
    for a in range(1, a_len):
        prev = score[a - 1]
        shifted = np.concatenate([[-np.inf], prev[:-1]])
        score[a] = logp[a] + np.maximum(prev, shifted)
    path = np.empty(a_len, dtype=np.int64)
    b = b_len - 1
    for a in range(a_len - 1, -1, -1):
        path[a] = b
        if a and b and (score[a - 1, b - 1] > score[a - 1, b] or b > a - 1):
            b -= 1
    return path


def monotonic_alignment(attention: np.ndarray) -> np.ndarray:
    """Phone spans in tokens from attention [T, N] (token -> phone): -> [N, 2] (start, end) floats.

    Spans are contiguous and in order, from 0 to T. T >= N: every phone gets whole tokens; T < N:
    every token gets one or more phones, which share it evenly; T = 0: every span is (0, 0)."""
    t_len, n_len = attention.shape
    spans = np.zeros((n_len, 2))
    if t_len == 0 or n_len == 0:
        return spans
    att = np.clip(attention.astype(np.float64), 0.0, None)
    att = att / np.maximum(att.sum(axis=1, keepdims=True), _EPS)  # each token's attention over the phones
    logp = np.log(att + _EPS)
    if t_len >= n_len:
        path = monotonic_path(logp)  # token -> phone
        first = np.searchsorted(path, np.arange(n_len), side="left")
        last = np.searchsorted(path, np.arange(n_len), side="right")
        spans[:, 0], spans[:, 1] = first, last
        return spans
    path = monotonic_path(logp.T)  # phone -> token
    for token in range(t_len):
        phones = np.flatnonzero(path == token)
        share = 1.0 / len(phones)
        for k, p in enumerate(phones):
            spans[p] = (token + k * share, token + (k + 1) * share)
    return spans


def word_spans(phone_spans: np.ndarray, units: Sequence[WordUnit]) -> list[Span]:
    """Each word's (text, start, end) in tokens; marks and spaces join the word before them."""
    spans: list[Span] = []
    leading: list[tuple[str, float]] = []  # marks before the first word: (text, start)
    pos = 0
    for unit in units:
        if unit.phones:
            start, end = float(phone_spans[pos, 0]), float(phone_spans[pos + unit.phones - 1, 1])
        else:
            start = end = (
                float(phone_spans[pos - 1, 1]) if pos else float(phone_spans[0, 0]) if len(phone_spans) else 0.0
            )
        pos += unit.phones
        text = unit.text.strip()
        if unit.is_word:
            if leading:
                text, start = "".join(t for t, _ in leading) + text, leading[0][1]
                leading = []
            spans.append((text, start, end))
        elif spans:
            word, first, _ = spans[-1]
            spans[-1] = (word + text, first, end)
        else:
            leading.append((text, start))
    return spans


# ----------------------------------------------------------------------------- running it
class SentenceAligner:
    """Word spans of a generated sentence, for one request (its model, voice and language)."""

    def __init__(self, tts: TTS, reference: Reference, language: str) -> None:
        self.tts, self.reference, self.language = tts, reference, language

    def __call__(self, text: str, tokens: Sequence[int], phones: int) -> list[Span]:
        """(text, start, end) per word in token units; [] when the sentence has no word or no token."""
        import torch

        from fastsovits.text import phonemize
        from fastsovits.text.words import word_units

        tts, ref = self.tts, self.reference
        units = word_units(phonemize(text, self.language, tts.version))
        ids, bert = tts._phones_and_bert(text, self.language)  # the features the sentence was generated from
        if not tokens or not any(u.is_word for u in units) or int(ids.numel()) != phones:
            return []
        prompt_phones = prompt_tokens = 0
        audio = torch.tensor(list(tokens), dtype=torch.long)
        if ref.prompt_phones is not None and ref.prompt_bert is not None:
            prompt_phones = int(ref.prompt_phones.numel())
            ids = torch.cat([ref.prompt_phones.cpu(), ids])
            bert = torch.cat([ref.prompt_bert.cpu().to(bert.dtype), bert], dim=1)
        if ref.prompt_semantic is not None:
            prompt_tokens = int(ref.prompt_semantic.numel())
            audio = torch.cat([ref.prompt_semantic.cpu().long().view(-1), audio])
        attention = tts.run_on_compute_thread(tts.t2s.text_attention, ids, bert, audio)
        att = attention[prompt_tokens:, prompt_phones:].float().cpu().numpy()
        return word_spans(monotonic_alignment(att), units)


def request_timestamps(
    sentences: Sequence[SentenceResult],
    gap: float,
    texts: Sequence[str] = (),
    tokens: Mapping[int, Sequence[int]] | None = None,
    aligner: Callable[[str, Sequence[int], int], list[Span]] | None = None,
) -> tuple[SentenceTimestamps, ...]:
    """Timestamps of a request's sentences (in order, each followed by ``gap`` seconds of pause).

    With an ``aligner``, ``texts[i]`` (sentence i as it was phonemized) and ``tokens[i]`` (its
    generated tokens) give the words of each sentence too."""
    out: list[SentenceTimestamps] = []
    t = 0.0
    for s in sorted(sentences, key=lambda s: s.index):
        end = t + s.audio_seconds
        words: tuple[WordTimestamp, ...] = ()
        if aligner is not None and tokens is not None and s.tokens:
            sentence_tokens = tokens[s.index]
            seconds = s.audio_seconds
            words = tuple(
                WordTimestamp(w, t + seconds * (a / len(sentence_tokens)), t + seconds * (b / len(sentence_tokens)))
                for w, a, b in aligner(texts[s.index], sentence_tokens, s.phones)
            )
        out.append(SentenceTimestamps(s.index, t, end, words))
        t = end + gap
    return tuple(out)
