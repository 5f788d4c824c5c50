"""Chinese BERT features for the text-to-semantic model (one 1024-wide row per phone).

The official models read, for every phone of a Chinese run, the hidden state of its character
at ``hidden_states[-3]`` of chinese-roberta-wwm-ext-large (layer 22 of 24), ``[CLS]``/``[SEP]``
dropped, each character's row repeated ``word2ph[i]`` times. Every other language (Cantonese
included, as official) gets zeros. The model loads from a local folder only.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fastsovits.errors import InvalidInput, MissingResource

if TYPE_CHECKING:
    import torch

    from fastsovits.text.types import Phonemes


class BertFeatureExtractor:
    """Wraps a local ``transformers`` BERT folder; thread-safe; one forward per call or batch."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", dtype: torch.dtype | None = None) -> None:
        import torch
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        path = Path(model_dir)
        if not (path / "config.json").is_file():
            raise MissingResource(f"BERT folder {path} has no config.json (expected chinese-roberta-wwm-ext-large)")
        self.device = torch.device(device)
        self.dtype = dtype or torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModelForMaskedLM.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
        self.model = model.to(self.device, self.dtype).eval()
        self.hidden_size = int(model.config.hidden_size)
        self._lock = threading.Lock()

    def char_features(self, texts: Sequence[str]) -> list[torch.Tensor]:
        """Per-character features ``[len(text), hidden]`` (float32, CPU) of each text, in one padded batch."""
        import torch

        if not texts:
            return []
        enc = self.tokenizer(list(texts), return_tensors="pt", padding=True)
        lengths = enc["attention_mask"].sum(dim=1).tolist()
        for text, n in zip(texts, lengths):
            if n - 2 != len(text):
                raise InvalidInput(
                    f"BERT tokenised {text!r} into {n - 2} tokens, expected one per character ({len(text)})"
                )
        enc = {k: v.to(self.device) for k, v in enc.items()}
        with self._lock, torch.inference_mode():
            out = self.model(**enc, output_hidden_states=True)
        hidden = out.hidden_states[-3].float().cpu()  # [B, T, H]
        return [hidden[i, 1 : 1 + len(t)] for i, t in enumerate(texts)]

    def features(self, norm_text: str, word2ph: Sequence[int]) -> torch.Tensor:
        """Phone-level features ``[hidden, sum(word2ph)]`` of one Chinese run."""
        return self.features_batch([(norm_text, word2ph)])[0]

    def features_batch(self, items: Sequence[tuple[str, Sequence[int]]]) -> list[torch.Tensor]:
        """Phone-level features of several Chinese runs computed in one forward pass."""
        for text, w2p in items:
            if len(w2p) != len(text):
                raise InvalidInput(f"word2ph has {len(w2p)} entries for {len(text)} characters of {text!r}")
        chars = self.char_features([t for t, _ in items])
        return [_expand(c, w2p) for c, (_, w2p) in zip(chars, items)]


def _expand(char_feats: torch.Tensor, word2ph: Sequence[int]) -> torch.Tensor:
    import torch

    # char_feats: [n_chars, H] -> [H, n_phones]
    reps = torch.as_tensor(list(word2ph), dtype=torch.long)
    return char_feats.repeat_interleave(reps, dim=0).T.contiguous()


def phone_features(phonemes: Phonemes, extractor: BertFeatureExtractor | None, hidden_size: int = 1024) -> torch.Tensor:
    """BERT features ``[hidden, n_phones]`` of a phonemized sentence: Chinese runs from BERT, zeros elsewhere."""
    return phone_features_batch([phonemes], extractor, hidden_size)[0]


def phone_features_batch(
    sentences: Sequence[Phonemes], extractor: BertFeatureExtractor | None, hidden_size: int = 1024
) -> list[torch.Tensor]:
    """:func:`phone_features` of several sentences, with every Chinese run in one BERT forward."""
    from fastsovits import host_ops

    zh = [(j, i, s) for j, p in enumerate(sentences) for i, s in enumerate(p.segments) if s.lang == "zh"]
    if zh and extractor is None:
        raise MissingResource("Chinese text needs BERT features: pass the chinese-roberta-wwm-ext-large folder")
    size = extractor.hidden_size if extractor is not None else hidden_size
    computed = extractor.features_batch([(s.norm_text, s.word2ph or []) for _, _, s in zh]) if zh else []
    by_index = {(j, i): f for (j, i, _), f in zip(zh, computed)}
    out = []
    for j, p in enumerate(sentences):
        parts = [
            by_index[(j, i)] if (j, i) in by_index else host_ops.zeros(size, len(s.phones))
            for i, s in enumerate(p.segments)
        ]
        out.append(host_ops.cat(parts, dim=1) if parts else host_ops.zeros(size, 0))
    return out
