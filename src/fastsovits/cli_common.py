"""What the ``fastsovits`` subcommands share: the help format, flag names in errors, model options."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from fastsovits.errors import MissingResource

Sub = Any  # argparse's subparsers action (a private type)
CUDA_GRAPHS = {"auto": None, "on": True, "off": False}

# SynthesisParams field -> the synthesize flag that sets it.
PARAM_FLAGS = {
    "top_k": "--top-k",
    "top_p": "--top-p",
    "temperature": "--temperature",
    "repetition_penalty": "--repetition-penalty",
    "text_split_method": "--split",
    "speed_factor": "--speed",
    "fragment_interval": "--fragment-interval",
    "seed": "--seed",
    "noise_scale": "--noise-scale",
    "sample_steps": "--sample-steps",
}
# Library keyword arguments named in error messages -> the CLI flags that set them.
LIBRARY_FLAGS = {
    **PARAM_FLAGS,
    "gpt": "--gpt",
    "sovits": "--sovits",
    "hubert_dir": "--hubert",
    "bert_dir": "--bert",
    "sv": "--sv",
    "vocoder": "--vocoder",
    "base": "--base",
    "out_dir": "--out",
    "sovits_version": "--sovits-version",
    "max_new_tokens": "--max-new-tokens",
    "num_slots": "--num-slots",
    "max_len": "--max-len",
}
_LIBRARY_NAME = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, LIBRARY_FLAGS)) + r")=")


def cli_message(message: str) -> str:
    """An error message from the library with its keyword names (``hubert_dir=``) as CLI flags (``--hubert``)."""
    return _LIBRARY_NAME.sub(lambda m: LIBRARY_FLAGS[m.group(1)] + " ", message)


def read_text(text: str) -> str:
    return sys.stdin.read() if text == "-" else text


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" to an option's help unless the help states it or there is none to state."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


def add_parser(sub: Sub, name: str, help: str, description: str | None = None, **kw: Any) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=description or help, formatter_class=HelpFormatter, **kw)


# ----------------------------------------------------------------------------- model options
def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="converted folder or official pretrained_models/ folder")
    p.add_argument("--gpt", help="official GPT .ckpt (with --sovits, instead of --model)")
    p.add_argument("--sovits", help="official SoVITS .pth (with --gpt, instead of --model)")
    p.add_argument("--hubert", help="chinese-hubert-base folder (needed for a reference transcript)")
    p.add_argument("--bert", help="chinese-roberta-wwm-ext-large folder (needed for Chinese text)")
    p.add_argument("--sv", help="ERes2NetV2 checkpoint (v2Pro/v2ProPlus)")
    p.add_argument(
        "--vocoder",
        help="v3/v4 with --sovits: the vocoder (v4: gsv-v4-pretrained/vocoder.pth, v3: the "
        "models--nvidia--bigvgan_v2_24khz_100band_256x folder); a --model folder holds its own",
    )
    p.add_argument("--base", help="a v3/v4 LoRA --sovits file's base model (official s2Gv3.pth or s2Gv4.pth)")
    p.add_argument("--version", help="model version when it cannot be detected (default: detected)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    p.add_argument(
        "--dtype",
        default="auto",
        help="weights' precision: auto (fp32 on CPU, fp16 on CUDA), fp32, fp16, bf16, or int8 (CPU only: "
        "weight-only int8 T2S with a bf16 SoVITS, fastest for one request at a time), or per stage as "
        "t2s=int8,sovits=bf16; bf16 and int8 need a CPU with AVX512_BF16/AMX to be fast (docs/engine.md)",
    )
    p.add_argument(
        "--cuda-graphs",
        choices=sorted(CUDA_GRAPHS),
        default="auto",
        help="replay the T2S decode step from captured CUDA graphs: auto (on for CUDA, falls back to "
        "eager steps with a warning if a capture fails), on (a failed capture is an error), off",
    )


def check_model_args(a: argparse.Namespace, *, required: bool = True) -> None:
    """Refuse a missing or half-given model before anything loads, naming the flags."""
    if required and a.model is None and (a.gpt is None or a.sovits is None):
        raise MissingResource("give --model DIR, or both --gpt FILE and --sovits FILE")
    for flag, value in (
        ("--model", a.model),
        ("--gpt", a.gpt),
        ("--sovits", a.sovits),
        ("--hubert", a.hubert),
        ("--bert", a.bert),
        ("--sv", a.sv),
        ("--vocoder", a.vocoder),
        ("--base", a.base),
    ):
        if value is not None and not Path(value).exists():
            raise MissingResource(f"{flag} {value}: not found")


def open_tts(a: argparse.Namespace):  # -> fastsovits.api.TTS
    from fastsovits.api import TTS

    return TTS.from_pretrained(
        a.model,
        gpt=a.gpt,
        sovits=a.sovits,
        hubert_dir=a.hubert,
        bert_dir=a.bert,
        sv=a.sv,
        version=a.version,
        vocoder=a.vocoder,
        base=a.base,
        device=a.device,
        dtype=a.dtype,
        cuda_graphs=CUDA_GRAPHS[a.cuda_graphs],
    )
