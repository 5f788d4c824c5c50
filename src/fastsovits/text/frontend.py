"""The text frontend: text -> language runs -> normalised text -> phones -> ids.

This mirrors the official ``get_phones_and_bert`` / ``clean_text`` flow of GPT-SoVITS (text to phones
for the T2S model, one sentence at a time):
1. runs of two or more spaces collapse to one;
2. the language mode splits the text into runs (``fastsovits.text.langseg``);
3. each run is normalised and converted to phones by its language module; special marks
   ``￥``/``^`` in Chinese turn the run's commas into ``SP2``/``SP3``; an English run with
   fewer than 4 phones gets a leading ``,``; phones missing from the table become ``UNK``;
4. when the whole text has fewer than 6 phones it is redone once as ``"." + text``.

One deliberate difference: text with nothing to read raises ``EmptyText``. That is empty or blank
text in every mode, and text whose phones are only punctuation and pauses (``"!!!"``, ``"……"``, Chinese
characters in ``en`` mode, which English normalisation drops). The official frontend crashes on the
first in most modes and returns a bare pause (``, .``) for the others; the official pipeline never
synthesises such a sentence (it drops punctuation-only sentences before the frontend).
"""

from __future__ import annotations

import importlib
import re
import threading
import warnings

from fastsovits.errors import EmptyText, TextTooLong, UnsupportedLanguage
from fastsovits.text.symbols import phones_to_ids, symbol_to_id, symbol_version
from fastsovits.text.types import LanguageFrontend, Phonemes, Segment

# Language modes accepted per symbol version (what the official engines accept).
MODES = {
    "v1": ("zh", "en", "ja", "all_zh", "all_ja", "auto"),
    "v2": ("zh", "en", "ja", "ko", "yue", "all_zh", "all_ja", "all_ko", "all_yue", "auto", "auto_yue"),
}
# Languages that have a G2P module per symbol version.
RUN_LANGUAGES = {"v1": ("zh", "en", "ja"), "v2": ("zh", "en", "ja", "ko", "yue")}

_MODULES = {
    "zh": "fastsovits.text.g2p.zh",
    "en": "fastsovits.text.g2p.en",
    "ja": "fastsovits.text.g2p.ja",
    "ko": "fastsovits.text.g2p.ko",
    "yue": "fastsovits.text.g2p.yue",
}
# Chinese marks that turn the run's commas into longer pauses (official "clean_special").
_SPECIAL_MARKS = (("￥", "SP2"), ("^", "SP3"))
_MULTI_SPACE = re.compile(r" {2,}")
# Phones that carry no speech: punctuation read as a pause, the pause markers and the unknown phone.
PAUSE_PHONES = frozenset({",", ".", "!", "?", "…", "-", "SP", "SP2", "SP3", "UNK"})
# One sentence at most this long; longer texts go through `presegment` first (as the engine does).
MAX_SENTENCE_CHARS = 100_000
_lock = threading.Lock()
_frontends: dict[tuple[str, str], LanguageFrontend] = {}


def check_language(language: str, version: str = "v2") -> str:
    """Validate a language mode for a model version; return its symbol version."""
    sv = symbol_version(version)
    if language not in MODES[sv]:
        raise UnsupportedLanguage(
            f"language {language!r} is not supported by {version} models; expected one of {list(MODES[sv])}"
        )
    return sv


def get_frontend(lang: str, version: str = "v2") -> LanguageFrontend:
    """The (lazily created, shared) frontend of one run language for a symbol version."""
    sv = symbol_version(version)
    if lang not in RUN_LANGUAGES[sv]:
        raise UnsupportedLanguage(f"no {sv} frontend for language {lang!r}")
    key = (lang, sv)
    fe = _frontends.get(key)
    if fe is None:
        with _lock:
            fe = _frontends.get(key)
            if fe is None:
                module = importlib.import_module(_MODULES[lang])
                fe = module.load(sv)
                _frontends[key] = fe
    return fe


def clean_run(text: str, lang: str, version: str = "v2") -> Segment:
    """Normalise one language run and convert it to phones (official ``clean_text``)."""
    sv = symbol_version(version)
    table = symbol_to_id(sv)
    if lang not in RUN_LANGUAGES[sv]:
        # The official frontend reads a run it has no module for as English " " (one pause):
        # punctuation-only runs labelled "punctuation"/"newline" by the segmenter, and Korean or
        # Cantonese found by `auto` under v1. We keep that for parity; dropping real words is loud.
        if lang in ("ko", "yue", "ja", "zh", "en"):
            warnings.warn(f"{sv} models cannot read {lang!r} text; the run {text!r} becomes a pause", stacklevel=3)
        pause = clean_run(" ", "en", sv)
        return Segment(lang, text, pause.norm_text, pause.phones, None)
    fe = get_frontend(lang, sv)
    if lang == "zh":
        for mark, symbol in _SPECIAL_MARKS:
            if mark in text:
                norm = fe.normalize(text.replace(mark, ","))
                phones, word2ph = fe.g2p(norm)
                phones = [symbol if p == "," else p for p in phones]
                return Segment(lang, text, norm, phones, word2ph)
    norm = fe.normalize(text)
    phones, word2ph = fe.g2p(norm)
    if lang == "en" and len(phones) < 4:
        phones = [","] + phones
    phones = [p if p in table else "UNK" for p in phones]
    return Segment(lang, text, norm, phones, word2ph)


def split_languages(text: str, language: str, version: str = "v2") -> list[tuple[str, str]]:
    """Language runs ``[(lang, text)]`` of a text under a language mode (after space collapse)."""
    check_language(language, version)
    from fastsovits.text import langseg

    return langseg.segment(text, language)


def has_speech(phones: list[str]) -> bool:
    """Whether ``phones`` hold anything to say (a phone that is not punctuation or a pause)."""
    return any(p not in PAUSE_PHONES for p in phones)


def phonemize(text: str, language: str, version: str = "v2") -> Phonemes:
    """Phonemes of one sentence as the official frontend computes them.

    Raises ``UnsupportedLanguage`` for a language mode the version does not have and
    ``EmptyText`` for text with nothing to read: blank, or only punctuation and pauses once
    normalised (see the module docstring).
    """
    if not isinstance(text, str):
        raise EmptyText(f"text must be a str, got {type(text).__name__}")
    sv = check_language(language, version)
    if len(text) > MAX_SENTENCE_CHARS:
        raise TextTooLong(
            f"text of {len(text)} characters is longer than one sentence may be ({MAX_SENTENCE_CHARS}); "
            "split it with fastsovits.text.presegment first"
        )
    original = text
    text = _MULTI_SPACE.sub(" ", text)
    if not text.strip():
        raise EmptyText(f"text {original!r} is empty or only whitespace")
    retried = False
    while True:
        runs = split_languages(text, language, sv)
        if not runs:
            raise EmptyText(f"text {original!r} has nothing to read")
        segments = [clean_run(t, lang, sv) for lang, t in runs]
        phones = [p for s in segments for p in s.phones]
        if len(phones) < 6 and not retried:
            text, retried = "." + text, True
            continue
        break
    if not has_speech(phones):
        raise EmptyText(
            f"text {original!r} has nothing to read in {language!r} mode (its phones are only pauses: "
            f"{' '.join(phones)})"
        )
    word2ph = None
    if all(s.word2ph is not None for s in segments):
        word2ph = [n for s in segments for n in s.word2ph]  # type: ignore[union-attr]
    return Phonemes(
        norm_text="".join(s.norm_text for s in segments),
        phones=phones,
        phone_ids=phones_to_ids(phones, sv),
        word2ph=word2ph,
        segments=segments,
        version=sv,
        retried_with_dot_prefix=retried,
    )
