"""``fastsovits serve``: options whose defaults are ``ServerConfig``'s."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

from fastsovits.cli_common import CUDA_GRAPHS, Sub, add_model_args, add_parser, check_model_args

SERVE_FLAGS = {
    "host": "host",
    "port": "port",
    "queue_limit": "queue_limit",
    "timeout": "request_timeout_s",
    "shutdown_timeout": "shutdown_timeout_s",
    "max_text_chars": "max_text_chars",
    "max_audio_seconds": "max_audio_seconds",
    "max_models": "max_models",
    "num_slots": "num_slots",
    "max_len": "max_len",
    "max_new_tokens": "max_new_tokens",
    "allow_control": "allow_control",
    "device": "device",
    "dtype": "dtype",
    "max_aux_clips": "max_aux_clips",
    "access_log": "access_log",
}


def _cmd_serve(a: argparse.Namespace) -> int:
    import os

    import torch

    from fastsovits.server.app import serve
    from fastsovits.server.config import ModelSpec, ServerConfig

    check_model_args(a, required=False)
    if a.threads:
        torch.set_num_threads(a.threads)
    spec = ModelSpec(
        "default",
        path=a.model,
        gpt=a.gpt,
        sovits=a.sovits,
        hubert_dir=a.hubert,
        bert_dir=a.bert,
        sv=a.sv,
        version=a.version,
        vocoder=a.vocoder,
        base=a.base,
    )
    given: dict[str, Any] = {field: getattr(a, flag) for flag, field in SERVE_FLAGS.items() if hasattr(a, flag)}
    if "max_new_tokens" in given:
        given["default_params"] = {"max_new_tokens": given["max_new_tokens"]}
    if hasattr(a, "max_clip_mb"):
        given["max_clip_bytes"] = int(a.max_clip_mb * 2**20)
    if hasattr(a, "max_body_mb"):
        given["max_body_bytes"] = int(a.max_body_mb * 2**20)
    if a.max_model_mb:
        given["max_model_bytes"] = int(a.max_model_mb * 2**20)
    config = ServerConfig(
        api_key=a.api_key or os.environ.get("FASTSOVITS_API_KEY") or None,
        cors_origins=tuple(a.cors or ()),
        ref_root=Path(a.ref_root) if a.ref_root else None,
        weights_root=Path(a.weights_root) if a.weights_root else None,
        voices_file=Path(a.voices) if a.voices else None,
        cuda_graphs=CUDA_GRAPHS[a.cuda_graphs],
        data_dir=Path(a.data_dir) if a.data_dir else None,
        **given,
    )
    if getattr(a, "ray", False):
        from fastsovits.cluster.cli import run_cluster

        return run_cluster(a, config, spec)
    serve(config, spec)
    return 0


def _server_default(name: str) -> Any:
    from fastsovits.server.config import ServerConfig

    return next(f.default for f in fields(ServerConfig) if f.name == name)


def add_serve(sub: Sub) -> None:
    p = add_parser(
        sub,
        "serve",
        "the speech server: api_v2 and OpenAI routes over the batching engine",
        "Serve /tts (api_v2), /v1/audio/speech (OpenAI), /v1/voices, /metrics. Needs the 'server' extra: "
        "pip install 'fastsovits[server]'. See docs/http_api.md.",
    )
    add_model_args(p)
    s = argparse.SUPPRESS  # not given -> ServerConfig's default (shown in the help)

    def opt(flag: str, field: str, help: str, **kw: Any) -> None:
        p.add_argument(flag, default=s, help=f"{help} (default: {_server_default(field)})", **kw)

    p.add_argument("--voices", help="voices.yaml: voices (and fine-tuned models) to register at start")
    p.add_argument(
        "--data-dir",
        help="folder of the voice store that keeps uploaded voices across restarts "
        "(default: $FASTSOVITS_DATA_DIR, else $XDG_DATA_HOME/fastsovits or ~/.local/share/fastsovits)",
    )
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
    opt("--max-aux-clips", "max_aux_clips", "most aux_ref_audio_paths one /tts request may name", type=int)
    p.add_argument(
        "--max-clip-mb",
        type=float,
        default=s,
        help=f"largest reference file a client may name by path, in MiB "
        f"(default: {_server_default('max_clip_bytes') / 2**20:g})",
    )
    p.add_argument(
        "--access-log",
        action="store_true",
        default=s,
        help="log one INFO line per request on the 'fastsovits.access' logger (request id, route, "
        "status, duration, audio seconds)",
    )
    opt("--max-models", "max_models", "resident models (least recently used goes first)", type=int)
    p.add_argument("--max-model-mb", type=float, help="memory bound over resident models (weights + KV cache)")
    p.add_argument("--num-slots", type=int, default=s, help="KV-cache slots per model (default: from free memory)")
    p.add_argument("--max-len", type=int, default=s, help="tokens per KV-cache slot (default: from free memory)")
    opt("--max-new-tokens", "max_new_tokens", "cap on semantic tokens per sentence", type=int)
    p.add_argument("--allow-control", action="store_true", default=s, help="let /control?command=exit stop the server")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    from fastsovits.cluster.cli import add_ray_args  # imports no ray

    add_ray_args(p)
    p.set_defaults(func=_cmd_serve)
