"""One fine-tuning step, run as its own process by the WebUI (``python -m fastsovits.webui.finetune_worker``).

    python -m fastsovits.webui.finetune_worker STEP SPEC.json

STEP is slice, transcribe, prepare, train_gpt or train_sovits; SPEC.json holds the paths and
settings the WebUI resolved (inside its allowed folders). Progress goes to ``<spec.progress>`` as
JSON lines (``{"done", "total", "message"}``; the last line ``{"state": "done"|"failed", ...}``); the
log (stdout/stderr) is captured by the WebUI. Every step resumes: existing clips, transcripts,
prepared features and training states are kept.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from fastsovits.train.slicer import AUDIO_SUFFIXES


class Progress:
    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, **rec: Any) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"time": time.time(), **rec}, ensure_ascii=False) + "\n")


def _slice(spec: dict, progress: Progress) -> None:
    from fastsovits.train.slicer import SlicerConfig, slice_folder

    src, dest = Path(spec["input"]), Path(spec["clips"])
    files = [src] if src.is_file() else sorted(p for p in src.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    dest.mkdir(parents=True, exist_ok=True)
    cfg = SlicerConfig(**spec.get("slicer", {}))
    clips = 0
    for n, f in enumerate(files):
        progress.write(done=n, total=len(files), message=f"slicing {f.name}")
        if spec.get("copy_only"):
            import soundfile as sf

            from fastsovits.audio.io import load_audio

            audio, _ = load_audio(f, 32000)
            sf.write(str(dest / (f.stem + ".wav")), audio, 32000, subtype="PCM_16")
            clips += 1
        else:
            clips += slice_folder(f, dest, cfg, progress=False)["clips"]
        print(f"{f.name}: {clips} clips so far", flush=True)
    progress.write(done=len(files), total=len(files), message=f"{clips} clips")


def _transcribe(spec: dict, progress: Progress) -> None:
    from fastsovits.train.asr import FasterWhisperTranscriber, list_line

    clips = sorted(p for p in Path(spec["clips"]).iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    asr = FasterWhisperTranscriber(
        spec["model"], device=spec.get("device", "auto"), language=spec.get("language", "auto")
    )
    out = Path(spec["list"])
    done = {}
    if out.is_file():
        done = {line.split("|", 1)[0]: line for line in out.read_text("utf-8").splitlines() if line.count("|") >= 3}
    lines = []
    for n, clip in enumerate(clips):
        progress.write(done=n, total=len(clips), message=f"transcribing {clip.name}")
        if str(clip) in done:
            lines.append(done[str(clip)])
            continue
        try:
            lines.append(list_line(clip, spec["speaker"], asr.transcribe(clip)))
        except Exception as e:  # noqa: BLE001 - one clip's failure must not stop the folder
            print(f"{clip.name}: {type(e).__name__}: {e}", flush=True)
        out.write_text("".join(line + "\n" for line in lines), "utf-8")
    progress.write(done=len(clips), total=len(clips), message=f"{len(lines)} transcripts")


def _prepare(spec: dict, progress: Progress) -> None:
    from fastsovits.checkpoints.sovits import detect_sovits_version
    from fastsovits.train.prepare import PrepareConfig, prepare

    _, version, _ = detect_sovits_version(spec["sovits"])
    opt = lambda k: Path(spec[k]) if spec.get(k) else None  # noqa: E731
    cfg = PrepareConfig(
        list_path=Path(spec["list"]),
        exp_dir=Path(spec["exp_dir"]),
        hubert_dir=opt("hubert"),
        sovits_path=Path(spec["sovits"]),
        version=version,
        bert_dir=opt("bert"),
        sv_path=opt("sv"),
        device=spec.get("device", "cpu"),
        progress=False,
    )
    progress.write(done=0, total=1, message=f"preparing ({version})")
    report = prepare(cfg)
    for f in report.failed:
        print(f"skipped {f.get('name')}: {f.get('stage')}: {f.get('error')}", flush=True)
    print(f"prepared {report.ok} of {report.total} items in {report.seconds:.1f} s", flush=True)
    if not report.ok:
        raise RuntimeError("no item could be prepared; see the log")
    progress.write(done=1, total=1, message=f"{report.ok}/{report.total} items ready")


def _overrides(spec: dict) -> dict:
    """The form's settings, then the advanced YAML overrides on top (they win)."""
    settings = {k: v for k, v in spec.get("settings", {}).items() if v is not None}
    return {**settings, **spec.get("overrides", {})}


def _train_gpt(spec: dict, progress: Progress) -> None:
    from fastsovits.train.config import GPTTrainConfig, load_config
    from fastsovits.train.t2s import train_gpt

    cfg = load_config(GPTTrainConfig, None, {**_overrides(spec), "progress": False, "save_every": 1})
    progress.write(done=0, total=cfg.epochs, message="training GPT")
    result = train_gpt(spec["exp_dir"], spec["pretrained"], cfg, weights_dir=spec["weights_dir"], exp_name=spec["name"])
    print(f"GPT: epochs {result.first_epoch}-{result.last_epoch}, {result.steps} steps", flush=True)
    progress.write(done=cfg.epochs, total=cfg.epochs, message="GPT trained")


def _train_sovits(spec: dict, progress: Progress) -> None:
    from fastsovits.train.config import SovitsTrainConfig, load_config
    from fastsovits.train.sovits import train_sovits

    cfg = load_config(SovitsTrainConfig, None, {**_overrides(spec), "progress": False, "save_every": 1})
    progress.write(done=0, total=cfg.epochs, message="training SoVITS")
    result = train_sovits(
        spec["exp_dir"],
        spec["pretrained"],
        cfg,
        pretrained_d=spec.get("pretrained_d"),
        weights_dir=spec["weights_dir"],
        exp_name=spec["name"],
    )
    print(f"SoVITS: epochs {result.first_epoch}-{result.last_epoch}, {result.steps} steps", flush=True)
    progress.write(done=cfg.epochs, total=cfg.epochs, message="SoVITS trained")


STEPS = {
    "slice": _slice,
    "transcribe": _transcribe,
    "prepare": _prepare,
    "train_gpt": _train_gpt,
    "train_sovits": _train_sovits,
}


def main(argv: list[str]) -> int:
    from fastsovits.runtime import configure_openmp

    configure_openmp()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    step, spec_path = argv
    spec = json.loads(Path(spec_path).read_text("utf-8"))
    progress = Progress(Path(spec["progress"]))
    try:
        STEPS[step](spec, progress)
    except Exception as e:  # noqa: BLE001 - reported to the WebUI, which keeps what was done
        logging.exception("step %s failed", step)
        progress.write(state="failed", error=f"{type(e).__name__}: {e}")
        return 1
    progress.write(state="done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
