"""Sub-commands of the data-preparation tools: ``slice``, ``transcribe``, ``prepare``.

``fastsovits.cli`` registers them with :func:`add_commands`; argv is parsed there.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

PREPARE_EPILOG = """\
input: an official annotation file, one utterance per line:
    wav_path|speaker|language|text        (language: zh ja en ko yue, any official spelling)
output (the official layout, readable by the official trainers and `fastsovits train`):
    EXP/2-name2text.txt  3-bert/  4-cnhubert/  5-wav32k/  6-name2semantic.tsv  7-sv_cn/ (v2Pro/ProPlus)
    EXP/prepare_report.json: counts per stage and every skipped item with the reason
Run it again to resume: existing outputs are kept, failed items retried (--redo recomputes all).

example:
    fastsovits slice raw/ clips/
    fastsovits transcribe clips/ --model models/faster-whisper-large-v3 -o data.list
    fastsovits prepare --list data.list --exp-dir logs/myvoice --version v2 \\
        --hubert pretrained_models/chinese-hubert-base \\
        --sovits pretrained_models/gsv-v2final-pretrained/s2G2333k.pth \\
        --bert pretrained_models/chinese-roberta-wwm-ext-large
"""


def _cmd_slice(a: argparse.Namespace) -> int:
    from fastsovits.train.slicer import SlicerConfig, slice_folder

    cfg = SlicerConfig(
        threshold_db=a.threshold,
        min_length_ms=a.min_length,
        min_interval_ms=a.min_interval,
        hop_ms=a.hop_size,
        max_sil_kept_ms=a.max_sil_kept,
        max_peak=a.max,
        alpha=a.alpha,
    )
    summary = slice_folder(a.input, a.output, cfg, progress=not a.quiet)
    print(json.dumps({k: v for k, v in summary.items() if k != "written"}, ensure_ascii=False))
    return 1 if summary["failed"] and not summary["clips"] else 0


def _cmd_transcribe(a: argparse.Namespace) -> int:
    from fastsovits.train.asr import FasterWhisperTranscriber, transcribe_folder

    asr = FasterWhisperTranscriber(
        a.model, device=a.device, compute_type=a.precision, language=a.language, allow_download=a.download
    )
    res = transcribe_folder(a.input, asr, a.output, speaker=a.speaker, progress=not a.quiet)
    print(
        json.dumps(
            {
                "list": str(res.list_path),
                "written": res.written,
                "transcribed": res.transcribed,
                "reused": res.reused,
                "failed": res.failed,
            },
            ensure_ascii=False,
        )
    )
    return 0


def _cmd_prepare(a: argparse.Namespace) -> int:
    from fastsovits.train.prepare import PrepareConfig, prepare

    logging.basicConfig(level=logging.WARNING if a.quiet else logging.INFO, format="%(message)s")
    cfg = PrepareConfig(
        list_path=Path(a.list),
        exp_dir=Path(a.exp_dir),
        wav_dir=Path(a.wav_dir) if a.wav_dir else None,
        version=a.version,
        hubert_dir=Path(a.hubert),
        sovits_path=Path(a.sovits),
        bert_dir=Path(a.bert) if a.bert else None,
        sv_path=Path(a.sv) if a.sv else None,
        device=a.device,
        half=a.half,
        batch_size=a.batch_size,
        min_seconds=a.min_seconds,
        redo=a.redo,
        progress=not a.quiet,
    )
    report = prepare(cfg)
    print(
        json.dumps(
            {
                "exp_dir": report.exp_dir,
                "ok": report.ok,
                "total": report.total,
                "failed": len(report.failed),
                "seconds": report.seconds,
            }
        )
    )
    return 0 if report.ok else 1


def add_commands(sub) -> None:
    """Register ``slice``, ``transcribe`` and ``prepare`` on an argparse sub-parsers object."""
    sl = sub.add_parser(
        "slice",
        help="cut long recordings at silences into 32 kHz clips (official defaults)",
        description="Silence-based slicer (RMS), the official WebUI defaults. Clips are written "
        "as <name>_<start>_<end>.wav (sample positions at 32 kHz).",
    )
    sl.add_argument("input", help="an audio file or a folder of them")
    sl.add_argument("output", help="folder for the clips (created)")
    sl.add_argument("--threshold", type=float, default=-34.0, help="silence below this RMS level, dB (-34)")
    sl.add_argument("--min-length", type=int, default=4000, help="shortest clip before a cut, ms (4000)")
    sl.add_argument("--min-interval", type=int, default=300, help="shortest silence that is cut, ms (300)")
    sl.add_argument("--hop-size", type=int, default=10, help="RMS frame step, ms (10)")
    sl.add_argument("--max-sil-kept", type=int, default=500, help="silence kept around a cut, ms (500)")
    sl.add_argument("--max", type=float, default=0.9, help="loudness mix: peak target (0.9)")
    sl.add_argument("--alpha", type=float, default=0.25, help="loudness mix: share of the normalised signal (0.25)")
    sl.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sl.set_defaults(func=_cmd_slice)

    tr = sub.add_parser(
        "transcribe",
        help="label clips with faster-whisper into a .list (extra: asr)",
        description="Write wav_path|speaker|LANG|text for every clip of a folder. Needs "
        "pip install 'fastsovits[asr]'. Resumes an existing output list.",
    )
    tr.add_argument("input", help="folder of clips")
    tr.add_argument("-o", "--output", help="the .list to write (default: <input>.list next to the folder)")
    tr.add_argument("--model", default="large-v3", help="faster-whisper model folder or size name (large-v3)")
    tr.add_argument("--language", default="auto", help="language code or 'auto' (auto)")
    tr.add_argument("--speaker", help="speaker column (default: the folder's name)")
    tr.add_argument("--device", default="auto", help="cpu, cuda or auto (auto)")
    tr.add_argument("--precision", default="default", help="CTranslate2 compute type: float16, int8, ... (default)")
    tr.add_argument("--download", action="store_true", help="allow downloading a model given by size name")
    tr.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=_cmd_transcribe)

    pr = sub.add_parser(
        "prepare",
        help="a .list + audio -> the official logs/<exp>/ training layout",
        description="Data preparation for fine-tuning (official steps 1-get-text, "
        "2-get-hubert-wav32k, 2-get-sv, 3-get-semantic).",
        epilog=PREPARE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pr.add_argument("--list", required=True, help="annotation file wav_path|speaker|language|text")
    pr.add_argument("--exp-dir", required=True, help="experiment folder to write, e.g. logs/myvoice")
    pr.add_argument("--wav-dir", help="read audio as WAV_DIR/<basename of wav_path> (default: the listed paths)")
    pr.add_argument("--version", default="v2", choices=["v1", "v2", "v2Pro", "v2ProPlus"], help="(v2)")
    pr.add_argument("--hubert", required=True, help="chinese-hubert-base folder")
    pr.add_argument("--sovits", required=True, help="pretrained SoVITS s2G .pth of this version (semantic tokens)")
    pr.add_argument("--bert", help="chinese-roberta-wwm-ext-large folder (needed for zh items)")
    pr.add_argument("--sv", help="ERes2NetV2 checkpoint pretrained_eres2netv2w24s4ep4.ckpt (v2Pro/ProPlus)")
    pr.add_argument("--device", default="cpu", help="torch device (cpu)")
    pr.add_argument("--half", action="store_true", help="fp16 features, as the official GPU default (CUDA only)")
    pr.add_argument("--batch-size", type=int, default=8, help="BERT / semantic batch size (8)")
    pr.add_argument("--min-seconds", type=float, default=0.6, help="skip shorter audio (0.6)")
    pr.add_argument("--redo", action="store_true", help="recompute every output instead of resuming")
    pr.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    pr.set_defaults(func=_cmd_prepare)
