"""Batch synthesis of a text/CSV/JSONL file into a folder of audio files plus a manifest.

Input lines: a ``.txt`` file has one text per line; a ``.csv`` has a header with ``text`` and optional
``id``, ``lang``, ``ref``, ``ref_text``, ``ref_lang``; a ``.jsonl`` has one object per line with those keys
plus any ``SynthesisParams`` field. Every item is submitted to the engine at once (so they share batches);
finished files are written as they complete. The job is resumable: items whose file is already listed as
done in ``manifest.jsonl`` are skipped. A bad line is reported in the manifest and the job goes on.
Each line of the manifest says how every sentence of its item ended (``sentences``: text, stop reason,
tokens, phones, seconds) and lists under ``capped`` the sentences that ran to their token cap.
"""

from __future__ import annotations

import csv
import json
import time
from collections import deque
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from fastsovits.errors import FastSovitsError, InvalidInput
from fastsovits.params import SynthesisParams

MANIFEST = "manifest.jsonl"
_PARAM_FIELDS = {f.name for f in fields(SynthesisParams)}


@dataclass
class BatchItem:
    id: str
    text: str
    lang: str | None = None
    ref: str | None = None
    ref_text: str | None = None
    ref_lang: str | None = None
    params: dict[str, Any] | None = None
    error: str | None = None  # a line that could not be parsed


def read_items(path: str | Path) -> list[BatchItem]:
    p = Path(path)
    lines = p.read_text("utf-8").splitlines()
    items: list[BatchItem] = []
    if p.suffix == ".jsonl":
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                    raise ValueError("needs a 'text' string")
            except ValueError as e:
                items.append(BatchItem(f"{n:06d}", "", error=f"line {n}: {e}"))
                continue
            params = {k: v for k, v in obj.items() if k in _PARAM_FIELDS}
            items.append(
                BatchItem(
                    str(obj.get("id", f"{n:06d}")),
                    obj["text"],
                    obj.get("lang"),
                    obj.get("ref"),
                    obj.get("ref_text"),
                    obj.get("ref_lang"),
                    params or None,
                )
            )
    elif p.suffix == ".csv":
        for n, row in enumerate(csv.DictReader(lines), 1):
            items.append(
                BatchItem(
                    row.get("id") or f"{n:06d}",
                    row.get("text") or "",
                    row.get("lang") or None,
                    row.get("ref") or None,
                    row.get("ref_text") or None,
                    row.get("ref_lang") or None,
                )
            )
    else:
        items = [BatchItem(f"{n:06d}", line) for n, line in enumerate(lines, 1) if line.strip()]
    return items


def _done(out_dir: Path) -> set[str]:
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        return set()
    done = set()
    for line in manifest.read_text("utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("status") == "ok" and (out_dir / rec.get("file", "")).is_file():
            done.add(rec["id"])
    return done


def run_batch(
    tts,
    items: list[BatchItem],
    out_dir: str | Path,
    *,
    default_ref,
    lang: str,
    fmt: str = "wav",
    params: SynthesisParams | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Synthesize ``items``; returns counts and throughput. ``default_ref`` is a loaded Reference."""
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = _done(out)
    base = params or SynthesisParams()
    manifest = open(out / MANIFEST, "a", encoding="utf-8")
    stats: dict[str, Any] = {"ok": 0, "failed": 0, "skipped": 0, "audio_seconds": 0.0, "capped_sentences": 0}

    def record(item: BatchItem, **rec: Any) -> None:
        manifest.write(json.dumps({"id": item.id, "text": item.text, **rec}, ensure_ascii=False) + "\n")
        manifest.flush()

    t0 = time.perf_counter()
    # A bounded window of submitted items keeps the engine full without queueing the whole file.
    window = max(8, 4 * tts.stats().num_slots)
    pending: deque = deque()
    todo = [item for item in items if item.id not in done]
    stats["skipped"] = len(items) - len(todo)

    def finish_one(bar) -> None:
        item, handle = pending.popleft()
        try:
            audio = handle.result()
            name = f"{item.id}.{fmt}"
            audio.save(out / name, fmt)
            stats["ok"] += 1
            stats["audio_seconds"] += audio.duration
            stats["capped_sentences"] += len(audio.capped)
            record(
                item,
                status="ok",
                file=name,
                duration=round(audio.duration, 3),
                sentences=[s.to_dict() for s in audio.sentences],
                capped=audio.capped,
            )
        except FastSovitsError as e:
            stats["failed"] += 1
            record(item, status="error", error=f"{type(e).__name__}: {e}")
        bar.update(1)

    with tqdm(total=len(todo), disable=not progress, unit="item") as bar:
        for item in todo:
            try:
                if item.error:
                    raise InvalidInput(item.error)
                ref = default_ref
                if item.ref:
                    ref = tts.load_reference(item.ref, item.ref_text, item.ref_lang)
                p = base.with_(**item.params) if item.params else base
                pending.append((item, tts.submit(item.text, ref, item.lang or lang, p, stream=False)))
            except (FastSovitsError, TypeError) as e:
                stats["failed"] += 1
                record(item, status="error", error=f"{type(e).__name__}: {e}")
                bar.update(1)
            while len(pending) >= window:
                finish_one(bar)
        while pending:
            finish_one(bar)
    manifest.close()
    wall = time.perf_counter() - t0
    stats["seconds"] = round(wall, 3)
    stats["audio_seconds"] = round(stats["audio_seconds"], 3)
    stats["audio_seconds_per_second"] = round(stats["audio_seconds"] / wall, 3) if wall > 0 else 0.0
    return stats
