"""Japanese normalisation and G2P with parity to the official ``text/japanese.py``.

Normalisation only collapses runs of the official punctuation (``! ? … , . -``) to their first
mark. G2P works on the normalised text:

1. ``％`` is spelled out as katakana and the text is lower-cased (Latin letters);
2. the text is cut at every character that is not "Japanese" (kana, CJK ideographs, ``々``,
   ASCII and full-width letters, any Unicode decimal digit, half-width katakana); each
   piece between two such marks goes through Open JTalk, every mark except a plain space is
   kept as a phone of its own (full-width punctuation mapped to ASCII);
3. each piece's HTS full-context labels become phones with prosody marks, following the
   method of Kurihara et al. (2021) as popularised by ESPnet (``pyopenjtalk_g2p_prosody``):
   ``[`` pitch rise, ``]`` pitch fall, ``#`` accent-phrase border, ``_`` pause; devoiced vowels
   are read as plain vowels; the utterance start/end marks are dropped.

The official user dictionary is always in effect (see :mod:`fastsovits.text.g2p.ja_openjtalk`).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from fastsovits.errors import TextTooLong, UnsupportedCharacters
from fastsovits.text.g2p import CJK_MARKS

# Official punctuation set (symbols.punctuation); runs of two or more collapse to the first.
_PUNCTUATION = "!?…,.-"
_PUNCT_RUN = re.compile(f"([{re.escape(_PUNCTUATION)}])[{re.escape(_PUNCTUATION)}]+")

# Characters Open JTalk is given; every other character is a separate "mark".
_JA_CLASS = (
    "A-Za-z"  # ASCII letters
    "\\d"  # every Unicode decimal digit (str-pattern semantics; includes full-width ０-９)
    "\u3005"  # 々
    "\u3040-\u30ff"  # hiragana, katakana (incl. ・ ー)
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uff11-\uff19"  # full-width digits 1..9 (already covered by \d)
    "\uff21-\uff3a"  # full-width A..Z
    "\uff41-\uff5a"  # full-width a..z
    "\uff66-\uff9d"  # half-width katakana
)
_NOT_JA = re.compile(f"[^{_JA_CLASS}]")

# Whole-text replacements done before splitting.
_SPELL_OUT = (("％", "パーセント"),)

# Marks (single characters between Japanese pieces) renamed to the model's punctuation.
_MARK_TO_PHONE = CJK_MARKS

# --- limits of the Open JTalk C code ---------------------------------------------------------
# Open JTalk copies its input into an 8192-byte stack buffer (after widening ASCII and half-width
# katakana to 3-byte UTF-8) and every word field (surface, reading, pronunciation with devoicing
# marks) into 1024-byte buffers, without bounds checks: longer input corrupts memory or crashes
# the process (measured: one unknown katakana word of 360 characters segfaults; the official
# code crashes the same way). MeCab groups runs of one character category (kana, Latin letters,
# digits, kanji numerals) into one unknown word, so we bound those runs and the piece size.
_MAX_PIECE_BYTES = 8191
_MAX_GROUP_RUN = 200  # 3 bytes a character + devoicing marks (at most every other mora) < 1024
_LONG = f"{{{_MAX_GROUP_RUN + 1},}}"
_GROUPED_RUNS = re.compile(
    "|".join(
        f"{cls}{_LONG}"
        for cls in (
            "[\u3040-\u30ff\uff66-\uff9d]",  # kana (incl. half-width katakana)
            "[A-Za-z\uff21-\uff3a\uff41-\uff5a]",  # Latin letters
            r"\d",  # digits
            "[〇一二三四五六七八九十百千万億兆]",  # kanji numerals
        )
    )
)


def check_piece(piece: str) -> None:
    """Refuse a Japanese piece that would overflow Open JTalk's fixed buffers."""
    size = sum(3 if ord(ch) < 0x10000 else 4 for ch in piece)
    if size > _MAX_PIECE_BYTES:
        raise TextTooLong(
            f"a Japanese stretch of {len(piece)} characters without punctuation or spaces is longer "
            f"than Open JTalk can read (about {_MAX_PIECE_BYTES // 3}); split the text"
        )
    run = _GROUPED_RUNS.search(piece)
    if run is not None:
        raise TextTooLong(
            f"a run of {len(run.group())} characters of one kind ({run.group()[:10]!r}...) is longer "
            f"than Open JTalk can read safely ({_MAX_GROUP_RUN}); break it with punctuation or spaces"
        )


# --- full-context label fields (HTS label format of Open JTalk) ---------------------------
_NO_VALUE = -50  # value used when a numeric field is absent or "xx"
_RE_PHONE = re.compile(r"-(.*?)\+")  # p3: current phoneme
_RE_ACC_DIST = re.compile(r"/A:([0-9\-]+)\+")  # a1: mora distance to the accent nucleus
_RE_MORA_FWD = re.compile(r"\+(\d+)\+")  # a2: mora position in the accent phrase, forward
_RE_MORA_BWD = re.compile(r"\+(\d+)/")  # a3: mora position, backward
_RE_PHRASE_MORAS = re.compile(r"/F:(\d+)_")  # f1: moras in the accent phrase
_RE_QUESTION = re.compile(r"!(\d+)_")  # e3: 1 when the breath group ends in a question
# Phonemes after which an accent-phrase border is written (vowels, moraic nasal, geminate).
_MORA_END = frozenset({"a", "i", "u", "e", "o", "A", "I", "U", "E", "O", "N", "cl"})
_DEVOICED = frozenset({"A", "I", "U", "E", "O"})


def _field(pattern: re.Pattern[str], label: str) -> int:
    found = pattern.search(label)
    return int(found.group(1)) if found else _NO_VALUE


def _current_phoneme(label: str) -> str:
    found = _RE_PHONE.search(label)
    if found is None:
        raise UnsupportedCharacters(f"Open JTalk produced an unreadable label {label!r}")
    return found.group(1)


def labels_to_prosody_phones(labels: list[str]) -> list[str]:
    """Phones with prosody marks from full-context labels, including ``^`` and ``$``/``?``."""
    phones: list[str] = []
    last = len(labels) - 1
    for i, label in enumerate(labels):
        ph = _current_phoneme(label)
        # Devoiced vowels are written as the plain vowel. (An empty phoneme also passes the
        # official substring test; it stays empty.)
        if ph in _DEVOICED or ph == "":
            ph = ph.lower()
        if ph == "sil":
            if i == 0:
                phones.append("^")
            elif i == last:
                question = _field(_RE_QUESTION, label)
                if question == 0:
                    phones.append("$")
                elif question == 1:
                    phones.append("?")
            else:
                # The official code asserts silence only at the edges.
                raise UnsupportedCharacters(f"Open JTalk produced a silence inside the text (label {i})")
            continue
        if ph == "pau":
            phones.append("_")
            continue
        phones.append(ph)
        if i == last:
            # The official code reads the next label here and fails; Open JTalk always ends in sil.
            raise UnsupportedCharacters("Open JTalk labels do not end in silence")
        dist = _field(_RE_ACC_DIST, label)
        pos = _field(_RE_MORA_FWD, label)
        pos_back = _field(_RE_MORA_BWD, label)
        moras = _field(_RE_PHRASE_MORAS, label)
        next_pos = _field(_RE_MORA_FWD, labels[i + 1])
        if pos_back == 1 and next_pos == 1 and ph in _MORA_END:
            phones.append("#")
        elif dist == 0 and next_pos == pos + 1 and pos != moras:
            phones.append("]")
        elif pos == 1 and next_pos == 2:
            phones.append("[")
    return phones


def normalize(text: str) -> str:
    """Official Japanese ``text_normalize``: collapse runs of punctuation to their first mark."""
    return _PUNCT_RUN.sub(r"\1", text)


def split_marks(text: str) -> tuple[list[str], list[str]]:
    """Pieces between non-Japanese characters, and those characters (``len(pieces) == len(marks)+1``)."""
    return _NOT_JA.split(text), _NOT_JA.findall(text)


@dataclass
class JapaneseFrontend:
    """Normaliser + G2P for Japanese runs (same for v1 and v2 symbol tables)."""

    user_dict_csv: Path | None = None  # None: the official ja_userdic/userdict.csv
    use_user_dict: bool = True

    def __post_init__(self) -> None:
        self._jtalk = None
        self._init_lock = threading.Lock()

    def _engine(self):  # -> ja_openjtalk.OpenJTalk
        engine = self._jtalk
        if engine is None:
            with self._init_lock:
                engine = self._jtalk
                if engine is None:
                    from fastsovits.text.g2p import ja_openjtalk as oj

                    oj.import_openjtalk()
                    dict_dir = oj.system_dict_dir()
                    user_dict = None
                    if self.use_user_dict:
                        csv = self.user_dict_csv
                        if csv is None:
                            from fastsovits.text.assets import data_file

                            csv = data_file(oj.USERDICT_CSV)
                        user_dict = oj.compiled_user_dict(Path(csv), dict_dir)
                    engine = self._jtalk = oj.OpenJTalk(dict_dir, user_dict)
        return engine

    def warm_up(self) -> None:
        """Load the dictionaries now (compiling the user dictionary if needed)."""
        self._engine()

    def normalize(self, text: str) -> str:
        return normalize(text)

    def piece_phones(self, piece: str) -> list[str]:
        """Prosody phones of one all-Japanese piece, without the start/end marks."""
        check_piece(piece)
        return labels_to_prosody_phones(self._engine().labels(piece))[1:-1]

    def g2p(self, norm_text: str) -> tuple[list[str], None]:
        for symbol, spelled in _SPELL_OUT:
            norm_text = norm_text.replace(symbol, spelled)
        pieces, marks = split_marks(norm_text.lower())
        phones: list[str] = []
        for i, piece in enumerate(pieces):
            if piece:
                phones += self.piece_phones(piece)
            if i < len(marks) and marks[i] != " ":
                phones.append(_MARK_TO_PHONE.get(marks[i], marks[i]))
        return phones, None


_instances: dict[str, JapaneseFrontend] = {}
_instances_lock = threading.Lock()


def load(version: str) -> JapaneseFrontend:
    """The shared Japanese frontend (one object for v1 and v2: the output does not differ;
    v1's table lacks ``[``/``]``, which ``clean_run`` turns into ``UNK``)."""
    if version not in ("v1", "v2"):
        from fastsovits.errors import UnsupportedLanguage

        raise UnsupportedLanguage(f"unknown symbol version {version!r}")
    with _instances_lock:
        fe = _instances.get("shared")
        if fe is None:
            fe = _instances["shared"] = JapaneseFrontend()
    return fe
