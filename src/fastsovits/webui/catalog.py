"""What the models folders hold: GPT and SoVITS weights, converted folders and shared components.

The pickers show labels (paths relative to a scanned folder); the browser only ever sends a label
back, which is looked up here, so no path typed in a browser reaches the loaders.
Files: ``*.ckpt`` are GPT (text-to-semantic) weights, ``*.pth`` SoVITS weights (the official naming);
discriminators (``s2D*``, ``D_*``) and the speaker model (``sv/``, ``*eres2net*``) are not offered.
A folder with a converted ``config.json`` is offered in both pickers. Shared components are found
by their official folder names: ``chinese-hubert-base``, ``chinese-roberta-wwm-ext-large`` and the
ERes2NetV2 checkpoint (any folder whose name contains ``hubert`` / ``roberta`` works too).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from fastsovits.errors import MissingResource

MAX_SCAN_DEPTH = 4
MAX_SCAN_FILES = 20_000
CONVERTED = "converted"


@dataclass(frozen=True)
class ModelFile:
    label: str
    path: Path
    kind: str  # "gpt", "sovits" or "converted"
    size_bytes: int


@dataclass(frozen=True)
class Components:
    hubert_dir: Path | None = None
    bert_dir: Path | None = None
    sv: Path | None = None


@dataclass(frozen=True)
class Catalog:
    gpt: tuple[ModelFile, ...]
    sovits: tuple[ModelFile, ...]
    components: Components

    def gpt_labels(self) -> list[str]:
        return [m.label for m in self.gpt]

    def sovits_labels(self) -> list[str]:
        return [m.label for m in self.sovits]

    def find(self, label: str, kind: str) -> ModelFile:
        for m in self.gpt if kind == "gpt" else self.sovits:
            if m.label == label:
                return m
        raise MissingResource(f"no {kind.upper()} model named {label!r}; press refresh to rescan the models folder")


def _is_converted(folder: Path) -> bool:
    cfg = folder / "config.json"
    if not cfg.is_file() or not (folder / "gpt.safetensors").is_file():
        return False
    try:
        return "format" in json.loads(cfg.read_text("utf-8"))
    except (OSError, ValueError):
        return False


def _walk(root: Path):
    count = 0
    base_depth = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        if len(here.parts) - base_depth >= MAX_SCAN_DEPTH:
            dirnames[:] = []
        dirnames.sort()
        for name in sorted(filenames):
            count += 1
            if count > MAX_SCAN_FILES:
                return
            yield here, name


def scan(dirs: tuple[Path, ...]) -> Catalog:
    gpt: list[ModelFile] = []
    sovits: list[ModelFile] = []
    hubert = bert = sv = None
    for n, root in enumerate(dirs):
        if not root.is_dir():
            continue
        prefix = "" if n == 0 else f"{root.name}/"
        for folder, name in _walk(root):
            path = folder / name
            rel = prefix + str(path.relative_to(root))
            low = rel.lower()
            if name == "config.json":
                low_folder = folder.name.lower()
                if _is_converted(folder):
                    entry = ModelFile(
                        prefix + str(folder.relative_to(root)) + "/",
                        folder,
                        CONVERTED,
                        sum(p.stat().st_size for p in folder.glob("*.safetensors")),
                    )
                    gpt.append(entry)
                    sovits.append(entry)
                elif "hubert" in low_folder and hubert is None:
                    hubert = folder
                elif ("roberta" in low_folder or "bert" in low_folder) and bert is None:
                    bert = folder
                continue
            if "eres2net" in low or low.startswith("sv/") or "/sv/" in low:
                if name.endswith(".ckpt") and sv is None:
                    sv = path
                continue
            if name.endswith(".ckpt"):
                gpt.append(ModelFile(rel, path, "gpt", path.stat().st_size))
            elif name.endswith(".pth") and not (name.startswith("s2D") or name.startswith("D_")):
                sovits.append(ModelFile(rel, path, "sovits", path.stat().st_size))
    return Catalog(tuple(gpt), tuple(sovits), Components(hubert, bert, sv))
