"""The g2p_en neural spelling-to-sound model, run directly over its shipped weights.

``g2p_en`` predicts the pronunciation of a word missing from every dictionary with a small GRU
encoder-decoder (letters in, ARPAbet out, greedy decoding, at most 20 phones) whose float32
weights ship in the package as ``checkpoint20.npz``. We run the same arithmetic here with numpy
instead of importing ``g2p_en``: importing it calls ``nltk.download`` (network) and its
``G2p.__init__`` needs NLTK's ``cmudict`` corpus, which is not installable offline.

The package directory is located with ``importlib.util.find_spec``, which does not execute the
package. The operations and their order follow the reference GRU so the float32 results, and
so the argmax choices, are the same.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

from fastsovits.errors import MissingDependency, MissingResource

# Input and output vocabularies of the shipped checkpoint (row order of its embeddings).
GRAPHEMES = ("<pad>", "<unk>", "</s>", *"abcdefghijklmnopqrstuvwxyz")
# fmt: off
PHONEMES = (
    "<pad>", "<unk>", "<s>", "</s>",
    "AA0", "AA1", "AA2", "AE0", "AE1", "AE2", "AH0", "AH1", "AH2", "AO0", "AO1", "AO2",
    "AW0", "AW1", "AW2", "AY0", "AY1", "AY2", "B", "CH", "D", "DH", "EH0", "EH1", "EH2",
    "ER0", "ER1", "ER2", "EY0", "EY1", "EY2", "F", "G", "HH", "IH0", "IH1", "IH2",
    "IY0", "IY1", "IY2", "JH", "K", "L", "M", "N", "NG", "OW0", "OW1", "OW2",
    "OY0", "OY1", "OY2", "P", "R", "S", "SH", "T", "TH", "UH0", "UH1", "UH2", "UW",
    "UW0", "UW1", "UW2", "V", "W", "Y", "Z", "ZH",
)
# fmt: on
_GRAPHEME_ID = {g: i for i, g in enumerate(GRAPHEMES)}
_UNK_GRAPHEME = _GRAPHEME_ID["<unk>"]
_END_OF_WORD = _GRAPHEME_ID["</s>"]
_START_PHONE = PHONEMES.index("<s>")
_END_PHONE = PHONEMES.index("</s>")
MAX_PHONES = 20
_FEATURE = "English G2P"
_EXTRA = "en"


def g2p_en_dir() -> Path:
    """Folder of the installed ``g2p_en`` package, found without importing it."""
    try:
        spec = importlib.util.find_spec("g2p_en")
    except (ImportError, ValueError) as e:
        raise MissingDependency(_FEATURE, _EXTRA, e) from e
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(_FEATURE, _EXTRA, ImportError("package g2p_en is not installed"))
    return Path(next(iter(spec.submodule_search_locations)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


class _Gru:
    """One GRU layer (PyTorch gate layout: reset, update, new) over float32 weights."""

    def __init__(self, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray) -> None:
        self.w_ih_t, self.w_hh_t = w_ih.T, w_hh.T
        self.b_ih, self.b_hh = b_ih, b_hh
        self.size = w_hh.shape[1]

    def step(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        gates_x = np.matmul(x, self.w_ih_t) + self.b_ih
        gates_h = np.matmul(h, self.w_hh_t) + self.b_hh
        cut = gates_x.shape[-1] * 2 // 3
        reset, update = np.split(_sigmoid(gates_x[:, :cut] + gates_h[:, :cut]), 2, -1)
        candidate = np.tanh(gates_x[:, cut:] + reset * gates_h[:, cut:])
        return (1 - update) * candidate + update * h


class NeuralG2P:
    """Greedy letter-to-phone prediction for one lower-case word."""

    def __init__(self, weights: Path | None = None) -> None:
        path = weights or g2p_en_dir() / "checkpoint20.npz"
        if not path.is_file():
            raise MissingResource(f"g2p_en weights {path} not found; reinstall the g2p_en package")
        with np.load(path) as w:
            self._enc_emb = w["enc_emb"]
            self._encoder = _Gru(w["enc_w_ih"], w["enc_w_hh"], w["enc_b_ih"], w["enc_b_hh"])
            self._dec_emb = w["dec_emb"]
            self._decoder = _Gru(w["dec_w_ih"], w["dec_w_hh"], w["dec_b_ih"], w["dec_b_hh"])
            self._out_w_t = w["fc_w"].T
            self._out_b = w["fc_b"]

    def predict(self, word: str) -> list[str]:
        """Phones (``PHONEMES`` entries, possibly ``<unk>``/``<pad>``/``UW``) for ``word``."""
        ids = [_GRAPHEME_ID.get(ch, _UNK_GRAPHEME) for ch in word] + [_END_OF_WORD]
        h = np.zeros((1, self._encoder.size), np.float32)
        for i in ids:
            h = self._encoder.step(self._enc_emb[i][None, :], h)
        h = h.astype(np.float32, copy=False)
        x = self._dec_emb[_START_PHONE][None, :]
        out: list[str] = []
        for _ in range(MAX_PHONES):
            h = self._decoder.step(x, h)
            best = int((np.matmul(h, self._out_w_t) + self._out_b).argmax())
            if best == _END_PHONE:
                break
            out.append(PHONEMES[best])
            x = self._dec_emb[best][None, :]
        return out


_shared: NeuralG2P | None = None
_shared_lock = threading.Lock()


def shared_model() -> NeuralG2P:
    """The process-wide predictor (weights are read once, on first use; prediction is re-entrant)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = NeuralG2P()
    return _shared
