"""Training datasets over the official ``logs/<exp>/`` layout, their collates, a length-bucketed sampler.

* :class:`T2SDataset` (GPT): ``2-name2text.txt`` + ``6-name2semantic.tsv`` (+ ``3-bert/<name>.pt``
  for zh; zeros otherwise). Official filters: codes <= max_sec * 25, phones <=
  max_sec * 25 / 2.5, 3 <= phones per second <= 25.
* :class:`SovitsDataset`: ``2-name2text.txt`` + ``4-cnhubert/<name>.pt`` + ``5-wav32k/<name>``
  (+ ``7-sv_cn/<name>.pt`` for v2Pro/ProPlus). Official filter: 0.6 s < duration < 54 s.

Items that cannot be used are skipped and recorded in ``dataset.skipped`` (name -> reason).
Collates pad on the right and return lengths; the GPT loss moves text to left padding itself
(:meth:`fastsovits.models.t2s.Text2Semantic.training_loss`), so mask and padding always agree.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from fastsovits.errors import InvalidInput, MissingResource
from fastsovits.text.symbols import phones_to_ids
from fastsovits.train import layout as L

CODE_HZ = 25
HOP = 640
CODEBOOK, BERT_DIM, SSL_DIM, SV_DIM, SAMPLE_RATE = L.CODEBOOK, L.BERT_DIM, L.SSL_DIM, L.SV_DIM, L.SAMPLE_RATE


_load_tensor = L.load_tensor


def _repeat(items: list, min_items: int) -> list:
    """The official rule: fewer than ``min_items`` items are repeated max(2, min_items // n) times."""
    if not items or len(items) >= min_items:
        return items
    return items * max(2, min_items // len(items))


# ---- GPT --------------------------------------------------------------------------------------
@dataclass
class T2SItem:
    name: str
    phone_ids: list[int]
    codes: list[int]
    bert: Path | None  # 3-bert/<name>.pt when present (zh), else zeros


@dataclass
class T2SBatch:
    phones: Tensor  # [B, N] int64, right-padded with 0
    phone_lens: Tensor  # [B]
    bert: Tensor  # [B, 1024, N] float32
    codes: Tensor  # [B, T] int64, right-padded with 1024
    code_lens: Tensor  # [B]
    names: list[str]

    def to(self, device: torch.device | str) -> T2SBatch:
        return T2SBatch(
            self.phones.to(device),
            self.phone_lens.to(device),
            self.bert.to(device),
            self.codes.to(device),
            self.code_lens.to(device),
            self.names,
        )


class T2SDataset(Dataset):
    def __init__(
        self,
        exp_dir: str | Path,
        symbol_version: str = "v2",
        *,
        max_sec: float = 54.0,
        min_ps_ratio: float = 3.0,
        max_ps_ratio: float = 25.0,
        min_items: int = 0,
    ) -> None:
        self.exp_dir = Path(exp_dir)
        exp = L.ExperimentLayout(self.exp_dir)
        texts = {name: e.phones for name, e in exp.read_name2text().items()}
        semantic = exp.read_semantic()
        self.skipped: dict[str, str] = {}
        items: list[T2SItem] = []
        for name, codes in semantic.items():
            if name not in texts:
                self.skipped[name] = "not in 2-name2text.txt"
                continue
            phones = texts[name]
            try:
                ids = phones_to_ids(phones, symbol_version)
            except ValueError as e:
                self.skipped[name] = str(e)
                continue
            if not ids or not codes:
                self.skipped[name] = "no phones" if not ids else "no semantic tokens"
                continue
            if min(codes) < 0 or max(codes) >= CODEBOOK:
                self.skipped[name] = f"semantic token outside [0, {CODEBOOK})"
                continue
            if len(codes) > max_sec * CODE_HZ or len(ids) > max_sec * CODE_HZ / 2.5:
                self.skipped[name] = f"longer than max_sec={max_sec}"
                continue
            ratio = len(ids) / (len(codes) / CODE_HZ)
            if not min_ps_ratio <= ratio <= max_ps_ratio:
                self.skipped[name] = f"{ratio:.1f} phones per second, outside [{min_ps_ratio}, {max_ps_ratio}]"
                continue
            bert = exp.bert(name)
            if bert.is_file():
                try:
                    shape = tuple(_load_tensor(bert).shape)
                except InvalidInput as e:
                    self.skipped[name] = str(e)
                    continue
                if shape != (BERT_DIM, len(ids)):
                    self.skipped[name] = f"BERT features {shape}, expected {(BERT_DIM, len(ids))}"
                    continue
            items.append(T2SItem(name, ids, codes, bert if bert.is_file() else None))
        if not items:
            raise InvalidInput(
                f"{str(self.exp_dir)!r}: no usable GPT training item ({len(self.skipped)} skipped: "
                f"{dict(list(self.skipped.items())[:3])})"
            )
        self.unique = len(items)
        self.items = _repeat(items, min_items)

    def __len__(self) -> int:
        return len(self.items)

    def lengths(self) -> list[int]:
        return [len(it.phone_ids) + len(it.codes) for it in self.items]

    def __getitem__(self, i: int) -> dict:
        it = self.items[i]
        bert = _load_tensor(it.bert).float() if it.bert is not None else torch.zeros(BERT_DIM, len(it.phone_ids))
        return {"name": it.name, "phones": torch.tensor(it.phone_ids), "codes": torch.tensor(it.codes), "bert": bert}


def collate_t2s(rows: Sequence[dict], eos: int = 1024) -> T2SBatch:
    b = len(rows)
    n = max(len(r["phones"]) for r in rows)
    t = max(len(r["codes"]) for r in rows)
    phones = torch.zeros(b, n, dtype=torch.long)
    codes = torch.full((b, t), eos, dtype=torch.long)
    bert = torch.zeros(b, BERT_DIM, n)
    for i, r in enumerate(rows):
        phones[i, : len(r["phones"])] = r["phones"]
        codes[i, : len(r["codes"])] = r["codes"]
        bert[i, :, : r["bert"].shape[1]] = r["bert"]
    return T2SBatch(
        phones,
        torch.tensor([len(r["phones"]) for r in rows]),
        bert,
        codes,
        torch.tensor([len(r["codes"]) for r in rows]),
        [r["name"] for r in rows],
    )


# ---- SoVITS -----------------------------------------------------------------------------------
@dataclass
class SovitsItem:
    name: str
    phone_ids: list[int]
    wav: Path
    ssl: Path
    sv: Path | None
    frames: int  # spectrogram frames (hop 640)


@dataclass
class SovitsBatch:
    ssl: Tensor  # [B, 768, W] HuBERT features fitted to the spectrogram frames
    spec: Tensor  # [B, 1025, W] linear magnitudes
    spec_lens: Tensor  # [B]
    wav: Tensor  # [B, 1, W * 640]
    phones: Tensor  # [B, N]
    phone_lens: Tensor  # [B]
    sv: Tensor | None  # [B, 20480] (v2Pro/ProPlus)
    names: list[str]

    def to(self, device: torch.device | str) -> SovitsBatch:
        return SovitsBatch(
            self.ssl.to(device),
            self.spec.to(device),
            self.spec_lens.to(device),
            self.wav.to(device),
            self.phones.to(device),
            self.phone_lens.to(device),
            None if self.sv is None else self.sv.to(device),
            self.names,
        )


class SovitsDataset(Dataset):
    def __init__(
        self,
        exp_dir: str | Path,
        model_version: str = "v2",
        *,
        min_sec: float = 0.6,
        max_sec: float = 54.0,
        min_items: int = 0,
    ) -> None:
        import soundfile as sf

        self.exp_dir = Path(exp_dir)
        self.pro = model_version in ("v2Pro", "v2ProPlus")
        exp = L.ExperimentLayout(self.exp_dir)
        texts = {name: e.phones for name, e in exp.read_name2text().items()}
        ssl_dir, wav_dir, sv_dir = exp.hubert_dir, exp.wav_dir, exp.sv_dir
        for d in (ssl_dir, wav_dir) + ((sv_dir,) if self.pro else ()):
            if not d.is_dir():
                raise MissingResource(f"{str(d)!r} does not exist: run `fastsovits prepare` first")
        self.skipped: dict[str, str] = {}
        items: list[SovitsItem] = []
        for name, phones in texts.items():
            wav, ssl, sv = wav_dir / name, ssl_dir / f"{name}.pt", sv_dir / f"{name}.pt"
            missing = [p.parent.name for p in (wav, ssl) + ((sv,) if self.pro else ()) if not p.is_file()]
            if missing:
                self.skipped[name] = f"missing in {missing}"
                continue
            try:
                ids = phones_to_ids(phones, model_version)
                info = sf.info(str(wav))
            except (ValueError, RuntimeError) as e:
                self.skipped[name] = str(e)
                continue
            seconds = info.frames / info.samplerate
            if not ids or not min_sec < seconds < max_sec:
                self.skipped[name] = "no phones" if not ids else f"{seconds:.2f} s outside ({min_sec}, {max_sec})"
                continue
            frames = round(seconds * SAMPLE_RATE) // HOP
            problem = _check_features(ssl, sv if self.pro else None, frames)
            if problem:
                self.skipped[name] = problem
                continue
            items.append(SovitsItem(name, ids, wav, ssl, sv if self.pro else None, frames))
        if not items:
            raise InvalidInput(
                f"{str(self.exp_dir)!r}: no usable SoVITS training item ({len(self.skipped)} "
                f"skipped: {dict(list(self.skipped.items())[:3])})"
            )
        self.unique = len(items)
        self.items = _repeat(items, min_items)

    def __len__(self) -> int:
        return len(self.items)

    def lengths(self) -> list[int]:
        return [it.frames for it in self.items]

    def __getitem__(self, i: int) -> dict:
        from fastsovits.audio.dsp import reference_spectrogram

        it = self.items[i]
        wav = L.read_wav32k(it.wav).astype("float32") / 32768.0
        wav_t = torch.from_numpy(wav).unsqueeze(0)  # [1, S]
        spec = reference_spectrogram(wav_t)[0]  # [1025, T]
        ssl = _load_tensor(it.ssl).float()
        if ssl.dim() != 3 or ssl.shape[:2] != (1, SSL_DIM):
            raise InvalidInput(f"{str(it.ssl)!r}: HuBERT features {tuple(ssl.shape)}, expected [1, {SSL_DIM}, T]")
        t = spec.shape[1]
        if abs(ssl.shape[2] - t) > 2:
            raise InvalidInput(f"{it.name}: {ssl.shape[2]} HuBERT frames for {t} spectrogram frames")
        if ssl.shape[2] < t:  # the official loader pads one frame by replication
            ssl = F.pad(ssl, (0, t - ssl.shape[2]), mode="replicate")
        row = {
            "name": it.name,
            "ssl": ssl[0, :, :t],
            "spec": spec,
            "wav": wav_t[:, : t * HOP],
            "phones": torch.tensor(it.phone_ids),
        }
        if it.sv is not None:
            sv = _load_tensor(it.sv).float().reshape(-1)
            if sv.numel() != SV_DIM:
                raise InvalidInput(f"{str(it.sv)!r}: {sv.numel()} values, expected {SV_DIM}")
            row["sv"] = sv
        return row


def _check_features(ssl: Path, sv: Path | None, frames: int) -> str | None:
    """Why an item's HuBERT (and SV) files cannot be used, or None (read once, at dataset build)."""
    try:
        t = _load_tensor(ssl)
        if t.dim() != 3 or t.shape[:2] != (1, SSL_DIM):
            return f"{str(ssl)!r}: HuBERT features {tuple(t.shape)}, expected [1, {SSL_DIM}, T]"
        if abs(t.shape[2] - frames) > 2:
            return f"{str(ssl)!r}: {t.shape[2]} HuBERT frames for {frames} spectrogram frames"
        if sv is not None and _load_tensor(sv).numel() != SV_DIM:
            return f"{str(sv)!r}: not {SV_DIM} speaker-verification values"
    except InvalidInput as e:
        return str(e)
    return None


def collate_sovits(rows: Sequence[dict], min_frames: int = 0) -> SovitsBatch:
    """Right-pad to an even frame count of at least ``min_frames`` (the decoder segment)."""
    b = len(rows)
    t = max(max(r["spec"].shape[1] for r in rows), min_frames)
    t += t % 2
    n = max(len(r["phones"]) for r in rows)
    ssl = torch.zeros(b, SSL_DIM, t)
    spec = torch.zeros(b, rows[0]["spec"].shape[0], t)
    wav = torch.zeros(b, 1, t * HOP)
    phones = torch.zeros(b, n, dtype=torch.long)
    for i, r in enumerate(rows):
        k = r["spec"].shape[1]
        ssl[i, :, :k], spec[i, :, :k] = r["ssl"], r["spec"]
        wav[i, :, : r["wav"].shape[1]] = r["wav"]
        phones[i, : len(r["phones"])] = r["phones"]
    sv = torch.stack([r["sv"] for r in rows]) if "sv" in rows[0] else None
    return SovitsBatch(
        ssl,
        spec,
        torch.tensor([r["spec"].shape[1] for r in rows]),
        wav,
        phones,
        torch.tensor([len(r["phones"]) for r in rows]),
        sv,
        [r["name"] for r in rows],
    )


# ---- sampler ----------------------------------------------------------------------------------
class BucketBatchSampler(Sampler[list[int]]):
    """Batches of items of similar length, reshuffled every epoch, sharded over DDP ranks.

    With ``boundaries`` (e.g. the official SoVITS frame boundaries) an item goes to the bucket
    whose range holds its length (items outside go to the first/last bucket, not dropped);
    without, items are sorted by length (ties shuffled) and cut into consecutive batches.
    ``max_tokens`` > 0 also splits a batch whose lengths sum past it. Every rank gets the same
    number of batches (the list is padded by repeating batches), as DDP needs.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        boundaries: Sequence[int] | None = None,
        max_tokens: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1 or not 0 <= rank < world_size:
            raise InvalidInput(f"bad sampler settings: batch_size={batch_size}, rank={rank}, world={world_size}")
        self.lengths = list(lengths)
        self.batch_size, self.boundaries, self.max_tokens = batch_size, boundaries, max_tokens
        self.shuffle, self.seed, self.rank, self.world_size = shuffle, seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _groups(self, rng: random.Random) -> list[list[int]]:
        order = list(range(len(self.lengths)))
        if self.shuffle:
            rng.shuffle(order)
        if not self.boundaries:
            return [sorted(order, key=lambda i: self.lengths[i])]
        bounds = list(self.boundaries)
        groups: list[list[int]] = [[] for _ in range(max(1, len(bounds) - 1))]
        for i in order:
            k = sum(1 for edge in bounds[1:-1] if self.lengths[i] > edge)
            groups[k].append(i)
        return [g for g in groups if g]

    def _split(self, group: list[int]) -> list[list[int]]:
        batches, cur, tokens = [], [], 0
        for i in group:
            n = self.lengths[i]
            if cur and (len(cur) == self.batch_size or (self.max_tokens and tokens + n > self.max_tokens)):
                batches.append(cur)
                cur, tokens = [], 0
            cur.append(i)
            tokens += n
        return batches + ([cur] if cur else [])

    def batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 1000003 + self.epoch)
        out = [b for g in self._groups(rng) for b in self._split(g)]
        if self.shuffle:
            rng.shuffle(out)
        if self.world_size > 1:
            pad = (-len(out)) % self.world_size
            out = out + out[:pad] if pad <= len(out) else out * self.world_size
            out = out[: len(out) - len(out) % self.world_size][self.rank :: self.world_size]
        return out

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.batches())
