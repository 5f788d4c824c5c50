"""The fine-tuning wizard's logic (no UI): experiment folders, transcripts, step specs, export.

Layout of one experiment under ``<data dir>/experiments/<name>/``: ``raw/`` (uploaded recordings),
``clips/`` (sliced), ``data.list`` (the saved transcripts), ``logs/<name>/`` (prepared features and
training states, the official layout), ``weights/`` (weights written while training).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from fastsovits.errors import InvalidInput, MissingResource
from fastsovits.train.slicer import AUDIO_SUFFIXES
from fastsovits.webui.config import MAX_TRAIN_CLIPS, MAX_UPLOAD_BYTES
from fastsovits.webui.paths import safe_name

LANGS = {"zh", "ja", "jp", "en", "ko", "yue"}
TABLE_COLUMNS = ["keep", "clip", "speaker", "language", "text"]


@dataclass(frozen=True)
class Experiment:
    name: str
    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def clips(self) -> Path:
        return self.root / "clips"

    @property
    def list_path(self) -> Path:
        return self.root / "data.list"

    @property
    def exp_dir(self) -> Path:
        return self.root / "logs" / self.name

    @property
    def weights(self) -> Path:
        return self.root / "weights"


def experiment(experiments_dir: Path, name: str) -> Experiment:
    name = safe_name(name or "", "experiment name")
    exp = Experiment(name, experiments_dir / name)
    exp.root.mkdir(parents=True, exist_ok=True)
    return exp


def store_uploads(exp: Experiment, uploads: list[str]) -> Path:
    """Copy uploaded recordings into ``raw/``; returns the folder to slice."""
    exp.raw.mkdir(exist_ok=True)
    for up in uploads:
        src = Path(up)
        if src.suffix.lower() not in AUDIO_SUFFIXES:
            raise InvalidInput(f"{src.name!r} is not an audio file ({', '.join(AUDIO_SUFFIXES)})")
        if src.stat().st_size > MAX_UPLOAD_BYTES:
            raise InvalidInput(f"{src.name!r} is larger than {MAX_UPLOAD_BYTES // 2**20} MB")
        shutil.copyfile(src, exp.raw / _file_name(src.name))
    return exp.raw


def _file_name(name: str) -> str:
    """An uploaded file's name made safe for the experiment folder (spaces and the like become '_')."""
    import re

    clean = re.sub(r"[^A-Za-z0-9_.\-]", "_", name).lstrip(".")[-64:]
    return clean if clean and clean[0].isalnum() else f"audio_{clean}"[-64:]


def clip_names(exp: Experiment) -> list[str]:
    if not exp.clips.is_dir():
        return []
    return sorted(p.name for p in exp.clips.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)[:MAX_TRAIN_CLIPS]


def table_from_clips(exp: Experiment) -> list[list]:
    """The transcript table: the saved list where it has a clip's line, else an empty text."""
    saved = {}
    if exp.list_path.is_file():
        for line in exp.list_path.read_text("utf-8").splitlines():
            parts = line.split("|", 3)
            if len(parts) == 4:
                saved[Path(parts[0]).name] = parts
    rows = []
    for name in clip_names(exp):
        p = saved.get(name)
        rows.append([True, name, p[1] if p else exp.name, p[2].lower() if p else "en", p[3] if p else ""])
    return rows


def table_from_list(exp: Experiment, text: str) -> tuple[list[list], int]:
    """Rows from an uploaded ``.list``: each line's file is matched to a clip by name (or the one clip
    sliced from it); returns (rows, lines that matched no clip)."""
    clips = clip_names(exp)
    by_name = set(clips)
    rows, unmatched = [], 0
    for line in text.splitlines():
        parts = line.strip().split("|", 3)
        if len(parts) != 4:
            continue
        base = Path(parts[0].replace("\\", "/")).name
        match = base if base in by_name else None
        if match is None:
            sliced = [c for c in clips if c.startswith(base + "_")]
            match = sliced[0] if len(sliced) == 1 else None
        if match is None:
            unmatched += 1
            continue
        rows.append([True, match, parts[1], parts[2].lower(), parts[3].strip()])
    return rows, unmatched


def save_table(exp: Experiment, rows: list[list]) -> int:
    """Write the kept rows as ``data.list`` (absolute clip paths); returns how many were kept."""
    clips = set(clip_names(exp))
    lines = []
    for n, row in enumerate(rows, 1):
        if len(row) != len(TABLE_COLUMNS):
            raise InvalidInput(f"row {n} needs the columns {TABLE_COLUMNS}")
        keep, clip, speaker, lang, text = row
        if not (keep is True or str(keep).lower() in ("true", "1", "yes")):
            continue
        clip = str(clip)
        if clip not in clips:
            raise InvalidInput(f"row {n}: {clip!r} is not a clip of this experiment")
        if str(lang).lower() not in LANGS:
            raise InvalidInput(f"row {n}: language {lang!r} is not one of {sorted(LANGS)}")
        text = " ".join(str(text or "").replace("|", " ").split())
        if not text:
            raise InvalidInput(f"row {n} ({clip}) has no text; type it or untick 'keep'")
        speaker = " ".join(str(speaker or exp.name).replace("|", " ").split()) or exp.name
        lines.append(f"{exp.clips / clip}|{speaker}|{str(lang).lower()}|{text}")
    if not lines:
        raise InvalidInput("no clip is kept")
    exp.list_path.write_text("".join(line + "\n" for line in lines), "utf-8")
    return len(lines)


def latest_weights(exp: Experiment) -> tuple[Path, Path]:
    """The newest GPT ``<name>-e<N>.ckpt`` and SoVITS ``<name>_e<N>_s<S>.pth`` written by training."""
    import re

    def newest(pattern: str, rx: str) -> Path | None:
        found = []
        for p in exp.weights.glob(pattern) if exp.weights.is_dir() else []:
            m = re.search(rx, p.name)
            if m:
                found.append((tuple(int(g) for g in m.groups()), p))
        return max(found)[1] if found else None

    gpt = newest(f"{exp.name}-e*.ckpt", r"-e(\d+)\.ckpt$")
    sovits = newest(f"{exp.name}_e*_s*.pth", r"_e(\d+)_s(\d+)\.pth$")
    if gpt is None or sovits is None:
        missing = [k for k, v in (("GPT", gpt), ("SoVITS", sovits)) if v is None]
        raise MissingResource(f"no trained {' and '.join(missing)} weights yet: run the training steps first")
    return gpt, sovits


def export(exp: Experiment, exports_dir: Path) -> tuple[Path, Path]:
    gpt, sovits = latest_weights(exp)
    dest = exports_dir / exp.name
    dest.mkdir(parents=True, exist_ok=True)
    out_gpt, out_sovits = dest / f"{exp.name}.ckpt", dest / f"{exp.name}.pth"
    for src, dst in ((gpt, out_gpt), (sovits, out_sovits)):
        tmp = dst.with_name(dst.name + ".tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
    return out_gpt, out_sovits


def train_progress(exp: Experiment, kind: str) -> dict:
    """The last line of the training log of ``kind`` ("s1" GPT or "s2" SoVITS): epoch, step, losses."""
    import json

    logs = sorted(exp.exp_dir.glob(f"logs_{kind}_*/train_log.jsonl"))
    if not logs:
        return {}
    lines = logs[-1].read_text("utf-8").splitlines()
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return {}
