"""``fastsovits prepare``: a ``.list`` + audio -> the official ``logs/<exp>/`` layout.

Stages, in order: text (2-name2text.txt, 3-bert for zh) -> audio (5-wav32k, 4-cnhubert) ->
SV (7-sv_cn, v2Pro/ProPlus) -> semantic (6-name2semantic.tsv). Every item is processed by each
stage unless its output already exists (resume); per-item files are written atomically, the two
tables are rewritten at the end holding exactly the items that passed every stage. A bad item
(bad line, unsupported language, empty text, missing/unreadable/too short/too loud audio, NaN
features) is logged, recorded in ``prepare_report.json`` and skipped; the job continues.

Resume trusts existing outputs by name: after changing an item's text or audio, pass
``redo=True`` (``--redo``) or delete its files.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from fastsovits.errors import FastSovitsError, InvalidInput, InvalidParameter, MissingResource
from fastsovits.train import layout as L
from fastsovits.train.prepare_audio import (
    hubert_features,
    hubert_input,
    load_wav32k,
    semantic_codes,
    sv_features,
    wav32k_int16,
)
from fastsovits.train.prepare_text import ListItem, bert_features, parse_list, text_entry

log = logging.getLogger("fastsovits.prepare")
VERSIONS = ("v1", "v2", "v2Pro", "v2ProPlus")
PRO_VERSIONS = ("v2Pro", "v2ProPlus")


@dataclass(frozen=True)
class PrepareConfig:
    list_path: Path
    exp_dir: Path
    hubert_dir: Path | None = None  # chinese-hubert-base folder (or pass a loaded extractor)
    sovits_path: Path | None = None  # pretrained s2G .pth (or pass a loaded synthesizer)
    wav_dir: Path | None = None  # audio folder; None = the paths in the .list
    version: str = "v2"
    bert_dir: Path | None = None  # chinese-roberta-wwm-ext-large; needed only for zh items
    sv_path: Path | None = None  # ERes2NetV2 checkpoint; needed for v2Pro/ProPlus
    device: str = "cpu"
    half: bool = False  # fp16 features (as the official GPU default); CUDA only
    batch_size: int = 8  # BERT and semantic batches
    min_seconds: float = 0.6  # shorter audio is a bad item (the official SoVITS training drops < 0.6 s)
    redo: bool = False  # ignore existing outputs
    progress: bool = True

    def __post_init__(self) -> None:
        if self.version not in VERSIONS:
            raise InvalidParameter(f"version must be one of {VERSIONS}, got {self.version!r}")
        if self.batch_size < 1 or self.min_seconds < 0:
            raise InvalidParameter("batch_size must be >= 1 and min_seconds >= 0")
        if self.half and not str(self.device).startswith("cuda"):
            raise InvalidParameter("half precision needs a CUDA device")


@dataclass
class Models:
    """Loaded models; anything left None is loaded from the config's paths when needed."""

    hubert: Any = None  # fastsovits.models.ssl.SSLExtractor
    synthesizer: Any = None  # fastsovits.models.sovits.Synthesizer (extract_latent)
    bert: Any = None  # fastsovits.text.bert.BertFeatureExtractor
    sv: Any = None  # fastsovits.models.sv.SpeakerEncoder


@dataclass
class PrepareReport:
    exp_dir: str
    version: str
    total: int = 0  # items in the list (lines that parsed or failed)
    ok: int = 0  # items present in every output after this run
    reused: dict[str, int] = field(default_factory=dict)  # stage -> items whose outputs already existed
    computed: dict[str, int] = field(default_factory=dict)  # stage -> items computed this run
    failed: list[dict] = field(default_factory=list)  # {line, name, stage, error}
    seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1)


class _Run:
    def __init__(self, cfg: PrepareConfig, models: Models) -> None:
        self.cfg, self.models = cfg, models
        self.lay = L.ExperimentLayout(cfg.exp_dir)
        self.report = PrepareReport(str(cfg.exp_dir), cfg.version)
        self.failed: set[str] = set()
        self.dtype = torch.float16 if cfg.half else torch.float32
        self.fresh_audio: set[str] = set()  # items whose 5-wav32k/4-cnhubert were (re)written this run

    # ---- bookkeeping --------------------------------------------------------------------------
    def fail(self, item: ListItem | None, stage: str, err: BaseException | str, line: int = 0, name: str = "") -> None:
        msg = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
        line, name = (item.line_no, item.name) if item is not None else (line, name)
        log.warning("prepare: skipping %s (line %d) at %s: %s", name or "<line>", line, stage, msg)
        self.report.failed.append({"line": line, "name": name, "stage": stage, "error": msg})
        if name:
            self.failed.add(name)

    def count(self, kind: str, stage: str) -> None:
        table = self.report.reused if kind == "reused" else self.report.computed
        table[stage] = table.get(stage, 0) + 1

    def bar(self, items: list, desc: str):
        from tqdm import tqdm

        return tqdm(items, desc=desc, unit="item", disable=not self.cfg.progress)

    def alive(self, items: list[ListItem]) -> list[ListItem]:
        return [it for it in items if it.name not in self.failed]

    # ---- model loading --------------------------------------------------------------------------
    def hubert(self):
        if self.models.hubert is None:
            if self.cfg.hubert_dir is None:
                raise MissingResource("prepare needs the chinese-hubert-base folder (--hubert)")
            from fastsovits.models.ssl import SSLExtractor

            self.models.hubert = SSLExtractor(self.cfg.hubert_dir, self.cfg.device, self.dtype)
        return self.models.hubert

    def synthesizer(self):
        if self.models.synthesizer is None:
            if self.cfg.sovits_path is None:
                raise MissingResource("prepare needs the pretrained SoVITS s2G .pth (--sovits)")
            from fastsovits.checkpoints.sovits import load_sovits

            model, _, info = load_sovits(self.cfg.sovits_path, device=self.cfg.device)
            if (info.symbol_version == "v1") != (self.cfg.version == "v1"):
                raise InvalidParameter(
                    f"{self.cfg.sovits_path} is a {info.model_version} model, not {self.cfg.version}"
                )
            self.models.synthesizer = model
        return self.models.synthesizer

    def bert(self):
        if self.models.bert is None:
            if self.cfg.bert_dir is None:
                raise MissingResource("zh items need the chinese-roberta-wwm-ext-large folder (--bert)")
            from fastsovits.text.bert import BertFeatureExtractor

            self.models.bert = BertFeatureExtractor(self.cfg.bert_dir, self.cfg.device, self.dtype)
        return self.models.bert

    def sv(self):
        if self.models.sv is None:
            if self.cfg.sv_path is None:
                raise MissingResource(f"{self.cfg.version} needs the ERes2NetV2 SV checkpoint (--sv)")
            from fastsovits.models.sv import SpeakerEncoder

            self.models.sv = SpeakerEncoder.from_checkpoint(self.cfg.sv_path, self.cfg.device)
        return self.models.sv

    # ---- stages -----------------------------------------------------------------------------------
    def text_stage(self, items: list[ListItem], old: dict[str, L.TextEntry]) -> dict[str, L.TextEntry]:
        entries: dict[str, L.TextEntry] = {}
        for it in self.bar(items, "text"):
            if it.name in old and not self.cfg.redo:
                entries[it.name] = old[it.name]
                self.count("reused", "text")
                continue
            try:
                entries[it.name] = text_entry(it, self.cfg.version)
                self.count("computed", "text")
            except Exception as e:  # noqa: BLE001 - any G2P failure is this item's failure
                self.fail(it, "text", e)
        by_name = {it.name: it for it in items}
        todo = [
            e
            for n, e in entries.items()
            if by_name[n].language == "zh" and (self.cfg.redo or not _readable(self.lay.load_bert, n))
        ]
        self.report.reused["bert"] = sum(1 for n in entries if by_name[n].language == "zh") - len(todo)
        if todo:
            try:
                bert = self.bert()
            except MissingResource as e:
                for entry in todo:
                    self.fail(by_name[entry.name], "bert", e)
                todo = []
            log.info("prepare: BERT features of %d zh items", len(todo))
            results = bert_features(bert, todo, self.cfg.batch_size) if todo else {}
            for name, res in results.items():
                if isinstance(res, Exception):
                    self.fail(by_name[name], "bert", res)
                    continue
                L.save_tensor(self.lay.bert(name), L.check_bert(res.to(self.dtype), len(entries[name].phones)))
                self.count("computed", "bert")
        return {n: e for n, e in entries.items() if n not in self.failed}

    def audio_stage(self, items: list[ListItem]) -> None:
        for it in self.bar(items, "audio"):
            hub, wav = self.lay.hubert(it.name), self.lay.wav(it.name)
            reusable = _readable(self.lay.load_hubert, it.name) and _readable(self.lay.read_wav, it.name)
            if reusable and not self.cfg.redo:
                self.count("reused", "audio")
                continue
            try:
                audio = load_wav32k(it.wav_path, self.cfg.min_seconds)
                feats = hubert_features(self.hubert(), hubert_input(audio))
                L.write_wav32k(wav, wav32k_int16(audio))
                L.save_tensor(hub, L.check_hubert(feats))
                self.fresh_audio.add(it.name)
                self.count("computed", "audio")
            except (FastSovitsError, OSError, RuntimeError, ValueError) as e:  # torch errors: this item only
                self.fail(it, "audio", e)

    def sv_stage(self, items: list[ListItem]) -> None:
        for it in self.bar(items, "sv"):
            path = self.lay.sv(it.name)
            fresh = it.name in self.fresh_audio
            if not self.cfg.redo and not fresh and _readable(self.lay.load_sv, it.name):
                self.count("reused", "sv")
                continue
            try:
                L.save_tensor(path, L.check_sv(sv_features(self.sv(), self.lay.read_wav(it.name))))
                self.count("computed", "sv")
            except (FastSovitsError, OSError, RuntimeError, ValueError) as e:  # torch errors: this item only
                self.fail(it, "sv", e)

    def semantic_stage(self, items: list[ListItem], old: dict[str, list[int]]) -> dict[str, list[int]]:
        rows: dict[str, list[int]] = {}
        todo: list[tuple[ListItem, torch.Tensor]] = []
        for it in items:
            if it.name in old and not self.cfg.redo and it.name not in self.fresh_audio:
                rows[it.name] = old[it.name]
                self.count("reused", "semantic")
                continue
            try:
                todo.append((it, self.lay.load_hubert(it.name)))
            except (InvalidInput, MissingResource) as e:
                self.fail(it, "semantic", e)
        if todo:
            synth = self.synthesizer()
            for start in self.bar(list(range(0, len(todo), self.cfg.batch_size)), "semantic"):
                chunk = todo[start : start + self.cfg.batch_size]
                for (it, _), codes in zip(chunk, semantic_codes(synth, [f for _, f in chunk], len(chunk))):
                    if not codes:
                        self.fail(it, "semantic", "audio too short for one semantic token")
                        continue
                    rows[it.name] = codes
                    self.count("computed", "semantic")
        return rows


def prepare(cfg: PrepareConfig, models: Models | None = None) -> PrepareReport:
    """Run every stage; returns (and writes to ``exp_dir/prepare_report.json``) the report."""
    t0 = time.perf_counter()
    run = _Run(cfg, models or Models())
    _check_inputs(cfg, run.models)
    lay = run.lay
    items, bad = parse_list(cfg.list_path, cfg.wav_dir, cfg.version)
    run.report.total = len(items) + len(bad)
    for b in bad:
        run.fail(None, "list", b.reason, b.line_no, b.name)
    pro = cfg.version in PRO_VERSIONS
    lay.make_dirs(with_bert=True, with_sv=pro)
    old_text = {} if cfg.redo or not lay.name2text.is_file() else _read_or_empty(lay.read_name2text)
    old_sem = {} if cfg.redo or not lay.semantic.is_file() else _read_or_empty(lay.read_semantic)

    entries = run.text_stage(items, old_text)
    L.write_name2text(lay.name2text, entries.values())  # checkpoint: G2P is not redone on resume
    run.audio_stage(run.alive(items))
    if pro:
        run.sv_stage(run.alive(items))
    rows = run.semantic_stage(run.alive(items), old_sem)
    done = [it.name for it in run.alive(items) if it.name in entries and it.name in rows]
    L.write_name2text(lay.name2text, [entries[n] for n in done])
    L.write_semantic(lay.semantic, {n: rows[n] for n in done})
    run.report.ok = len(done)
    run.report.seconds = round(time.perf_counter() - t0, 3)
    with L.atomic_path(lay.report) as tmp:
        tmp.write_text(run.report.to_json(), encoding="utf-8")
    log.info(
        "prepare: %d of %d items ready in %s (%d failed)", len(done), run.report.total, lay.root, len(run.report.failed)
    )
    return run.report


def _check_inputs(cfg: PrepareConfig, models: Models) -> None:
    """Fail before any work when a model the run needs is neither loaded nor found on disk."""
    if not Path(cfg.list_path).is_file():
        raise MissingResource(f"the list file {str(cfg.list_path)!r} does not exist")
    if cfg.wav_dir is not None and not Path(cfg.wav_dir).is_dir():
        raise MissingResource(f"the audio folder {str(cfg.wav_dir)!r} does not exist")
    needs = [
        ("hubert", cfg.hubert_dir, "--hubert (chinese-hubert-base folder)"),
        ("synthesizer", cfg.sovits_path, "--sovits (pretrained s2G .pth)"),
    ]
    if cfg.version in PRO_VERSIONS:
        needs.append(("sv", cfg.sv_path, f"--sv (ERes2NetV2 checkpoint, needed for {cfg.version})"))
    if cfg.bert_dir is not None:
        needs.append(("bert", cfg.bert_dir, "--bert"))
    for attr, path, flag in needs:
        if getattr(models, attr) is None and (path is None or not Path(path).exists()):
            raise MissingResource(f"prepare needs {flag}; {'not given' if path is None else f'{path} not found'}")


def _readable(load: Callable[[str], object], name: str) -> bool:
    """Whether a previous run's output loads and has the right shape (else it is recomputed)."""
    try:
        load(name)
    except (InvalidInput, MissingResource):
        return False
    return True


def _read_or_empty(reader: Callable[[], dict]) -> dict:
    """A previous table that cannot be parsed is recomputed rather than trusted."""
    try:
        return reader()
    except InvalidInput as e:
        log.warning("prepare: ignoring an unreadable previous table (%s); recomputing it", e)
        return {}
