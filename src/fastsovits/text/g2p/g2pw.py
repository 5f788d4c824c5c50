"""The g2pW polyphone path of the official v2 Mandarin frontend: not implemented yet.

The official ``text/chinese2.py`` reads polyphonic characters with g2pW by default (a BERT-style
ONNX model run through onnxruntime on a user-provided ``G2PWModel/`` folder holding
``g2pW.onnx``, its label lists and the ``chinese-roberta-wwm-ext-large`` tokenizer), then applies
the ``polyphonic*.rep`` overrides. fastsovits implements the official pypinyin path only (what
the official code does with ``is_g2pw = False``; the golden fixtures record that path).

Asking for g2pW (``ChineseG2P(version, g2pw_dir=...)``) raises a clear error instead of quietly
reading with pypinyin. Nothing is ever downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastsovits.errors import MissingResource

MODEL_FILES = ("g2pW.onnx", "g2pw.onnx")


def check_available(g2pw_dir: str | os.PathLike[str]) -> None:
    """Raise ``MissingResource``: either the folder lacks the model, or (always, for now) the
    g2pW path is not part of this fastsovits version."""
    folder = Path(g2pw_dir)
    if not folder.is_dir() or not any((folder / name).is_file() for name in MODEL_FILES):
        raise MissingResource(
            f"g2pW model folder {str(folder)!r} not found or has no g2pW.onnx; fastsovits never downloads it. "
            "Leave g2pw_dir unset to read polyphones with pypinyin (the official is_g2pw=False path)."
        )
    raise MissingResource(
        f"the g2pW polyphone path (model folder {str(folder)!r}) is not implemented in this fastsovits version; "
        "leave g2pw_dir unset to read polyphones with pypinyin (the official is_g2pw=False path)."
    )
