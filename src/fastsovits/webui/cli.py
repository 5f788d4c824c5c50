"""``fastsovits webui`` (and ``python -m fastsovits.webui``): argument parsing for the WebUI.

The main CLI registers it with :func:`add_webui_parser`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from fastsovits.errors import InvalidParameter
from fastsovits.limits import MAX_NEW_TOKENS

DESCRIPTION = (
    "The browser UI: synthesize with any model of the models folder, batch jobs, a voice library, the whole "
    "fine-tuning flow and model management. Every browser tab shares one batching engine per loaded model. "
    "Needs the 'webui' extra: pip install 'fastsovits[webui]'."
)


def add_webui_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--models",
        required=True,
        metavar="DIR",
        help="folder scanned for models: GPT .ckpt, SoVITS .pth, converted folders, an official "
        "pretrained_models/ folder, and the shared chinese-hubert-base / roberta / sv files",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help="writable folder for voices, batch jobs, experiments and fine-tuned models "
        "(default $FASTSOVITS_CACHE/webui or ~/.cache/fastsovits/webui)",
    )
    p.add_argument(
        "--roots",
        nargs="*",
        default=[],
        metavar="DIR",
        help="more folders whose paths may be typed into the UI (recordings to fine-tune on, "
        "references of batch lines); the models and data folders always are",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9874, help="port (default 9874, the official WebUI's)")
    p.add_argument("--share", action="store_true", help="also publish a public gradio.live link (off by default)")
    p.add_argument("--auth", metavar="USER:PASS", help="require this login")
    p.add_argument("--language", choices=("en", "zh"), default="en", help="UI language: en or zh (default en)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    p.add_argument("--dtype", default="auto", help="weights' precision: auto, fp32, fp16, bf16 (see synthesize)")
    p.add_argument("--num-slots", type=int, help="KV-cache slots per model (default: sized from free memory)")
    p.add_argument("--max-len", type=int, help="tokens per KV-cache slot")
    p.add_argument("--max-models", type=int, default=2, help="models kept loaded at once (default 2)")
    p.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS, help="cap on semantic tokens per sentence")
    p.add_argument(
        "--voices-data-dir",
        metavar="DIR",
        help="the voice store shared with 'fastsovits serve --data-dir' (default: the server's, "
        "$FASTSOVITS_DATA_DIR or ~/.local/share/fastsovits)",
    )
    p.add_argument("--whisper", metavar="DIR", help="faster-whisper model folder for the transcribe step")
    p.add_argument("--train-device", default="auto", help="device for data preparation and training (auto)")


def add_webui_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "webui", help="the browser UI (gradio): synthesize, batch, voices, fine-tune, models", description=DESCRIPTION
    )
    add_webui_arguments(p)
    p.set_defaults(func=run_webui)
    return p


def config_from_args(a: argparse.Namespace):
    from fastsovits.webui.config import WebUIConfig

    auth = None
    if a.auth:
        user, sep, password = a.auth.partition(":")
        if not sep or not user or not password:
            raise InvalidParameter("--auth takes USER:PASS")
        auth = (user, password)
    if a.data:
        data = Path(a.data)
    else:
        data = Path(os.environ.get("FASTSOVITS_CACHE", Path.home() / ".cache" / "fastsovits")) / "webui"
    models = Path(a.models)
    if not models.is_dir():
        raise InvalidParameter(f"--models {a.models!r} is not a folder")
    return WebUIConfig(
        models_dir=models.resolve(),
        data_dir=data.resolve(),
        roots=tuple(Path(r).resolve() for r in a.roots),
        host=a.host,
        port=a.port,
        share=a.share,
        auth=auth,
        language=a.language,
        device=a.device,
        dtype=a.dtype,
        num_slots=a.num_slots,
        max_len=a.max_len,
        max_models=a.max_models,
        max_new_tokens=a.max_new_tokens,
        whisper_dir=Path(a.whisper).resolve() if a.whisper else None,
        train_device=a.train_device,
        voice_data_dir=Path(a.voices_data_dir).resolve() if a.voices_data_dir else None,
    )


def run_webui(a: argparse.Namespace) -> int:
    import logging

    from fastsovits.webui.app import launch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    launch(config_from_args(a))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    import sys

    from fastsovits.errors import FastSovitsError
    from fastsovits.runtime import configure_openmp

    configure_openmp()
    p = argparse.ArgumentParser(prog="python -m fastsovits.webui", description=DESCRIPTION)
    add_webui_arguments(p)
    a = p.parse_args(argv)
    try:
        return run_webui(a)
    except FastSovitsError as e:
        print(f"fastsovits webui: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
