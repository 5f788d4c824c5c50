"""Text side of data preparation: ``.list`` parsing, text -> phones/word2ph, zh BERT features.

Mirrors the official ``1-get-text.py`` facts: the language code of a ``.list`` line is mapped
with the official table (``ZH``/``zh`` -> zh, ``JP``/``JA``/``ja`` -> ja, ``EN``/``En`` -> en,
``KO``/``Ko`` -> ko, ``YUE``/``Yue``/``yue`` -> yue; anything else is unsupported), the text is
pre-replaced (``%`` -> ``-``, ``￥`` -> ``,``) and cleaned as ONE language run (official
``clean_text``; our :func:`fastsovits.text.frontend.clean_run`), and BERT features
``[1024, n_phones]`` are computed for zh only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fastsovits.errors import EmptyText, FastSovitsError, InvalidInput, UnsupportedLanguage
from fastsovits.train.layout import TextEntry

LIST_LANGUAGES = {
    "ZH": "zh",
    "zh": "zh",
    "JP": "ja",
    "jp": "ja",
    "JA": "ja",
    "ja": "ja",
    "EN": "en",
    "en": "en",
    "En": "en",
    "KO": "ko",
    "Ko": "ko",
    "ko": "ko",
    "yue": "yue",
    "YUE": "yue",
    "Yue": "yue",
}
V1_LANGUAGES = ("zh", "ja", "en")
PRE_REPLACEMENTS = (("%", "-"), ("￥", ","))


@dataclass(frozen=True)
class ListItem:
    """One line of a ``.list`` file, resolved."""

    line_no: int  # 1-based
    name: str  # basename of the audio path: the key of every layout file
    wav_path: Path  # where the audio is read from
    speaker: str
    language: str  # the official short code (zh/ja/en/ko/yue), already mapped
    text: str


@dataclass(frozen=True)
class BadLine:
    line_no: int
    name: str
    reason: str


def _clean_path(raw: str) -> str:
    return raw.strip().strip('"').strip("'").strip()


def parse_list(
    path: str | Path, wav_dir: str | Path | None = None, version: str = "v2"
) -> tuple[list[ListItem], list[BadLine]]:
    """Parse a ``wav_path|speaker|language|text`` file; bad lines are returned, not raised.

    With ``wav_dir`` the audio is ``wav_dir/<basename>`` (official ``inp_wav_dir``); otherwise the
    path as written, relative paths taken from the ``.list`` file's folder.
    """
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"cannot read the list file {str(path)!r}: {e}") from e
    items: list[ListItem] = []
    bad: list[BadLine] = []
    seen: set[str] = set()
    for no, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("|", 3)
        if len(parts) != 4:
            bad.append(BadLine(no, "", f"expected 'wav_path|speaker|language|text', got {line[:80]!r}"))
            continue
        wav, speaker, lang, text = parts
        wav = _clean_path(wav)
        name = os.path.basename(wav.replace("\\", "/"))
        if not name:
            bad.append(BadLine(no, "", "empty audio path"))
            continue
        if name in seen:
            bad.append(BadLine(no, name, f"duplicate name {name!r} (names are audio basenames)"))
            continue
        language = LIST_LANGUAGES.get(lang.strip())
        if language is None or (version == "v1" and language not in V1_LANGUAGES):
            bad.append(BadLine(no, name, f"unsupported language {lang.strip()!r} for {version}"))
            continue
        if wav_dir is not None:
            wav_path = Path(wav_dir) / name
        else:
            wav_path = Path(wav)
            if not wav_path.is_absolute():
                wav_path = path.parent / wav_path
        seen.add(name)
        items.append(ListItem(no, name, wav_path, speaker.strip(), language, text.strip()))
    return items, bad


def text_entry(item: ListItem, version: str = "v2") -> TextEntry:
    """Phones/word2ph/norm_text of one item (official pre-replacements, one language run)."""
    from fastsovits.text.frontend import RUN_LANGUAGES, clean_run
    from fastsovits.text.symbols import symbol_version

    if item.language not in RUN_LANGUAGES[symbol_version(version)]:
        raise UnsupportedLanguage(f"{version} models cannot read {item.language!r} text ({item.name!r})")
    text = item.text
    for old, new in PRE_REPLACEMENTS:
        text = text.replace(old, new)
    if not text.strip():
        raise EmptyText(f"the text of {item.name!r} is empty")
    seg = clean_run(text, item.language, version)
    phones = list(seg.phones)
    if not phones or all(p in (",", ".", "!", "?", "…", "-", "SP", "UNK") for p in phones):
        raise EmptyText(f"the text {item.text!r} of {item.name!r} has nothing to read (phones {phones})")
    return TextEntry(item.name, phones, seg.word2ph if item.language in ("zh", "yue") else None, seg.norm_text)


def bert_features(extractor, entries: Sequence[TextEntry], batch_size: int = 8) -> dict[str, object]:
    """name -> ``[1024, n_phones]`` features (float32) or the exception that item raised.

    Batches of ``batch_size`` go through BERT in one forward; a batch that fails is retried item
    by item so only the bad item is reported.
    """
    out: dict[str, object] = {}
    for i in range(0, len(entries), batch_size):
        batch = list(entries[i : i + batch_size])
        try:
            feats = extractor.features_batch([(e.norm_text, e.word2ph or []) for e in batch])
            results: list[object] = list(feats)
        except FastSovitsError:
            results = []
            for e in batch:
                try:
                    results.append(extractor.features(e.norm_text, e.word2ph or []))
                except FastSovitsError as err:
                    results.append(err)
        for e, r in zip(batch, results, strict=True):
            if not isinstance(r, Exception) and r.shape[-1] != len(e.phones):
                r = InvalidInput(f"BERT features of {e.name!r} have {r.shape[-1]} columns for {len(e.phones)} phones")
            out[e.name] = r
    return out
