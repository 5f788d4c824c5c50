"""``fastsovits synthesize`` and ``fastsovits batch``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fastsovits.cli_common import (
    PARAM_FLAGS,
    Sub,
    add_model_args,
    add_parser,
    check_model_args,
    open_tts,
    read_text,
)
from fastsovits.errors import InvalidParameter, MissingResource


def check_output_file(out: str) -> None:
    """Refuse an output the synthesis could not be written to, before the synthesis."""
    from fastsovits.audio.io import ENCODE_FORMATS

    path = Path(out)
    fmt = path.suffix.lstrip(".").lower() or "wav"
    if fmt not in ENCODE_FORMATS:
        raise InvalidParameter(f"--out {out}: unknown audio format {fmt!r}; use one of {sorted(ENCODE_FORMATS)}")
    if path.is_dir():
        raise InvalidParameter(f"--out {out} is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InvalidParameter(f"--out {out}: cannot create its folder: {e.strerror}") from None


def synthesis_params(a: argparse.Namespace):  # -> SynthesisParams
    """SynthesisParams from the flags the user gave; the others keep SynthesisParams' defaults."""
    from fastsovits.params import SynthesisParams

    given = {name: getattr(a, name) for name in PARAM_FLAGS if hasattr(a, name)}
    return SynthesisParams(**given)


def _cmd_synthesize(a: argparse.Namespace) -> int:
    text = read_text(a.text)
    params = synthesis_params(a)
    check_model_args(a)
    check_output_file(a.out)
    for clip in (a.ref, *(a.aux or ())):
        if not Path(clip).is_file():
            raise MissingResource(f"reference audio {clip}: not found")
    with open_tts(a) as tts:
        ref = tts.load_reference(a.ref, a.ref_text, a.ref_lang, aux=a.aux or ())
        audio = tts.synthesize(text, ref, a.lang, params)
        audio.save(a.out)
    print(f"wrote {a.out} ({audio.duration:.2f} s at {audio.sample_rate} Hz)")
    return 0


def _add_sampling_args(p: argparse.ArgumentParser) -> None:
    from fastsovits.limits import SAMPLE_STEPS
    from fastsovits.params import SPLIT_METHODS, SynthesisParams

    d = SynthesisParams()
    s = argparse.SUPPRESS  # not given -> SynthesisParams' default
    p.add_argument(
        "--top-k", dest="top_k", type=int, default=s, help=f"sample among the k likeliest tokens (default: {d.top_k})"
    )
    p.add_argument(
        "--top-p",
        dest="top_p",
        type=float,
        default=s,
        help=f"nucleus sampling: smallest token set with this probability (default: {d.top_p})",
    )
    p.add_argument("--temperature", type=float, default=s, help=f"sampling temperature (default: {d.temperature})")
    p.add_argument(
        "--repetition-penalty",
        dest="repetition_penalty",
        type=float,
        default=s,
        help=f"penalty on tokens already generated (default: {d.repetition_penalty})",
    )
    p.add_argument(
        "--split",
        dest="text_split_method",
        choices=SPLIT_METHODS,
        default=s,
        help=f"sentence split method, see 'fastsovits split --help' (default: {d.text_split_method})",
    )
    p.add_argument(
        "--speed", dest="speed_factor", type=float, default=s, help=f"speech speed factor (default: {d.speed_factor})"
    )
    p.add_argument(
        "--fragment-interval",
        dest="fragment_interval",
        type=float,
        default=s,
        help=f"seconds of silence between sentences (default: {d.fragment_interval})",
    )
    p.add_argument(
        "--noise-scale",
        dest="noise_scale",
        type=float,
        default=s,
        help=f"SoVITS prior noise scale, v1-v2ProPlus (default: {d.noise_scale})",
    )
    p.add_argument(
        "--sample-steps",
        dest="sample_steps",
        type=int,
        default=s,
        help=f"v3/v4 only: flow-matching (CFM) steps per chunk; the official choices are {', '.join(map(str, SAMPLE_STEPS))}. "
        f"Fewer steps are faster, more are smoother (default: {d.sample_steps}, as the official TTS.run)",
    )
    p.add_argument("--seed", type=int, default=s, help="fix the seed for reproducible output (default: random)")


def add_synthesize(sub: Sub) -> None:
    from fastsovits.audio.io import ENCODE_FORMATS

    p = add_parser(
        sub,
        "synthesize",
        "text + a 3-10 s reference clip -> speech in that voice",
        "Synthesize TEXT in the voice of REF. Models: a converted folder or official pretrained_models/ "
        "folder (--model), or official files (--gpt, --sovits, --hubert, --bert for Chinese, --sv for "
        "v2Pro/ProPlus). Sampling options default to the official TTS.run defaults.",
        aliases=["synth"],
    )
    p.add_argument("text", help="the text to speak ('-' reads standard input)")
    p.add_argument("--lang", required=True, help="language mode of the text (zh en ja ko yue auto ...)")
    p.add_argument("--ref", required=True, help="reference audio file (3-10 s)")
    p.add_argument("--ref-text", help="transcript of the reference (omit for reference-free mode)")
    p.add_argument("--ref-lang", help="language of the reference transcript")
    p.add_argument("--aux", nargs="*", help="more reference clips whose timbre is averaged in")
    p.add_argument(
        "--out",
        default="out.wav",
        help=f"output file; its suffix picks the format: {' '.join(sorted(ENCODE_FORMATS))} "
        "(raw/pcm: 16-bit little-endian samples); a missing folder is created",
    )
    add_model_args(p)
    _add_sampling_args(p)
    p.set_defaults(func=_cmd_synthesize)


def _cmd_batch(a: argparse.Namespace) -> int:
    from fastsovits.batch import read_items, run_batch

    if not Path(a.input).is_file():
        raise MissingResource(f"input file {a.input}: not found")
    if not Path(a.ref).is_file():
        raise MissingResource(f"--ref {a.ref}: not found")
    check_model_args(a)
    check_output_file(str(Path(a.out) / f"x.{a.format}"))
    items = read_items(a.input)
    with open_tts(a) as tts:
        ref = tts.load_reference(a.ref, a.ref_text, a.ref_lang)
        stats = run_batch(tts, items, a.out, default_ref=ref, lang=a.lang, fmt=a.format, progress=not a.quiet)
    print(json.dumps(stats))
    return 0 if stats["failed"] == 0 else 1


def add_batch(sub: Sub) -> None:
    from fastsovits.audio.io import ENCODE_FORMATS

    p = add_parser(
        sub,
        "batch",
        "a TXT/CSV/JSONL of lines -> a folder of audio files + manifest.jsonl",
        "Synthesize every line of INPUT (.txt: one text per line; .csv: columns text[,id,lang,ref,ref_text,"
        "ref_lang]; .jsonl: objects with those keys and any synthesis parameter). All lines share the "
        "engine's batches. Resumable: items already done in OUT/manifest.jsonl are skipped; a bad line is "
        "recorded and the job goes on. Prints counts and throughput as JSON at the end.",
    )
    p.add_argument("input", help="the .txt, .csv or .jsonl file of lines")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--lang", required=True, help="default language of the lines")
    p.add_argument("--ref", required=True, help="default reference audio (3-10 s)")
    p.add_argument("--ref-text", help="transcript of the default reference")
    p.add_argument("--ref-lang", help="language of that transcript")
    p.add_argument("--format", default="wav", choices=sorted(ENCODE_FORMATS), help="audio format of the files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_args(p)
    p.set_defaults(func=_cmd_batch)
