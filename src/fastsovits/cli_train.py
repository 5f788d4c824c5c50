"""``fastsovits train gpt|sovits``."""

from __future__ import annotations

import argparse
import json

from fastsovits.cli_common import Sub, add_parser
from fastsovits.train.config import SovitsLoraTrainConfig


def _is_v3_base(path: str, version: str | None) -> bool:
    """Whether ``train sovits`` trains a v3/v4 model (LoRA): by ``--version``, else the official detection."""
    from fastsovits.checkpoints.sovits import detect_sovits_version_fast
    from fastsovits.models.sovits_v3 import V3_VERSIONS

    if version is not None:
        return version in V3_VERSIONS
    return detect_sovits_version_fast(path)[1] in V3_VERSIONS


def _has_cfm(path: str) -> bool:
    from fastsovits.checkpoints.common import HPARAMS_GLOBAL, HParamsStandIn, read_torch_file

    weight = read_torch_file(path, extra={HPARAMS_GLOBAL: HParamsStandIn}).obj.get("weight") or {}
    return any(str(k).startswith("cfm.") for k in weight)


def _cmd_train(a: argparse.Namespace) -> int:
    import os

    from fastsovits.errors import CheckpointError, InvalidParameter
    from fastsovits.train.config import GPTTrainConfig, SovitsTrainConfig, load_config

    keys = ("epochs", "batch_size", "lr", "precision", "grad_accum", "save_every", "device", "seed")
    overrides = {k: getattr(a, k) for k in keys}
    overrides["progress"] = False if a.quiet else None
    if a.model == "gpt":
        from fastsovits.train.t2s import train_gpt

        overrides["dpo"] = True if a.dpo else None
        cfg = load_config(GPTTrainConfig, a.config, overrides)
        result = train_gpt(
            a.exp_dir,
            a.pretrained,
            cfg,
            run_dir=a.run_dir,
            weights_dir=a.weights_dir,
            exp_name=a.exp_name,
            resume=not a.no_resume,
        )
    elif _is_v3_base(a.pretrained_g, a.version):
        from fastsovits.train.sovits_v3 import train_sovits_v3

        if a.pretrained_d is not None:
            raise InvalidParameter("v3/v4 training has no discriminator: leave out --pretrained-d")
        overrides["lora_rank"] = a.lora_rank
        cfg = load_config(SovitsLoraTrainConfig, a.config, overrides)
        result = train_sovits_v3(
            a.exp_dir,
            a.pretrained_g,
            cfg,
            version=a.version,
            run_dir=a.run_dir,
            weights_dir=a.weights_dir,
            exp_name=a.exp_name,
            resume=not a.no_resume,
        )
    else:
        from fastsovits.train.sovits import train_sovits

        if a.lora_rank is not None:
            raise InvalidParameter("--lora-rank is for v3/v4 models only (v1-v2ProPlus train in full)")
        cfg = load_config(SovitsTrainConfig, a.config, overrides)
        try:
            result = train_sovits(
                a.exp_dir,
                a.pretrained_g,
                cfg,
                pretrained_d=a.pretrained_d,
                version=a.version,
                run_dir=a.run_dir,
                weights_dir=a.weights_dir,
                exp_name=a.exp_name,
                resume=not a.no_resume,
            )
        except CheckpointError as e:
            if a.version is None and _has_cfm(a.pretrained_g):
                raise CheckpointError(
                    f"{a.pretrained_g!r} holds v3/v4 weights but is detected as a v1/v2 file (the official rule for "
                    "small files): pass --version v3 or --version v4"
                ) from e
            raise
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return 0
    last = result.history[-1] if result.history else {}
    print(
        json.dumps(
            {
                "run_dir": str(result.run_dir),
                "epochs": [result.first_epoch, result.last_epoch],
                "steps": result.steps,
                "seconds": round(result.seconds, 2),
                "exported": [str(p) for p in result.exported],
                "last": last,
            }
        )
    )
    return 0


def add_train(sub: Sub) -> None:
    tr = add_parser(
        sub,
        "train",
        "fine-tune the GPT or the SoVITS model on a prepared logs/<exp> folder",
        "Fine-tune on a folder in the official logs/<exp> layout (see `fastsovits prepare`). Resumes from "
        "<run-dir>/state_latest.pt; writes train_log.jsonl and official-format weights every --save-every "
        "epochs (for SoVITS v3/v4: official LoRA files <exp>_e<epoch>_s<step>_l<rank>.pth, loaded together "
        "with their base model). Several processes: run it under "
        "`torchrun --nproc_per_node N fastsovits train ...` (DDP).",
    )
    models = tr.add_subparsers(dest="model", required=True, metavar="MODEL")
    helps = {
        "gpt": "text-to-semantic GPT (official s1) from a pretrained .ckpt",
        "sovits": "SoVITS (official s2) from a pretrained G .pth: v1-v2ProPlus in full with a discriminator, "
        "v3/v4 as LoRA on the CFM",
    }
    keep = "(default: the config's value)"
    for name, text in helps.items():
        m = add_parser(models, name, text, text + ". Options left out keep the config's values.")
        m.add_argument("--exp-dir", required=True, help="the prepared logs/<exp> folder")
        if name == "gpt":
            m.add_argument("--pretrained", required=True, help="pretrained GPT .ckpt (official format)")
            m.add_argument("--dpo", action="store_true", help="add the DPO loss on corrupted sequences")
        else:
            m.add_argument(
                "--pretrained-g",
                required=True,
                help="pretrained SoVITS generator .pth (s2G...); for v3/v4 the plain base the LoRA is trained on "
                "(s2Gv3.pth, gsv-v4-pretrained/s2Gv4.pth)",
            )
            m.add_argument(
                "--pretrained-d", help="pretrained discriminator .pth (s2D... or D_*.pth), optional; not for v3/v4"
            )
            m.add_argument(
                "--version",
                choices=("v1", "v2", "v2Pro", "v2ProPlus", "v3", "v4"),
                help="force the SoVITS version; default: detected as officially (small v3/v4 files, e.g. test "
                "models, are detected as v2 and need --version)",
            )
            m.add_argument(
                "--lora-rank",
                type=int,
                help="v3/v4 only: rank of the LoRA adapters on the CFM attention (alpha = rank; official "
                f"choices 16, 32, 64, 128) (default: the config's value, {SovitsLoraTrainConfig.lora_rank}). "
                "The exported file holds the adapters and the other trained parts and loads over its base model",
            )
        m.add_argument("--config", help="YAML file of config fields to override (flat mapping, plain values)")
        m.add_argument("--epochs", type=int, help=f"epochs to train {keep}")
        m.add_argument("--batch-size", type=int, help=f"clips per micro-batch {keep}")
        m.add_argument("--lr", type=float, help=f"peak learning rate {keep}")
        m.add_argument("--precision", choices=("fp32", "bf16", "fp16"), help=f"training precision {keep}")
        m.add_argument("--grad-accum", type=int, help=f"micro-batches per optimizer step {keep}")
        m.add_argument("--save-every", type=int, help=f"epochs between saves and exports {keep}")
        m.add_argument("--seed", type=int, help=f"random seed {keep}")
        m.add_argument("--device", help=f"auto, cpu or cuda {keep}")
        m.add_argument(
            "--run-dir",
            help="state, logs and weights (default: <exp-dir>/logs_s1_<v>, logs_s2_<v> or, for v3/v4, "
            "logs_s2_<v>_lora_<rank>)",
        )
        m.add_argument("--weights-dir", help="where exported weights go (default: <run-dir>/weights)")
        m.add_argument("--exp-name", help="name in exported files (default: the exp folder's name)")
        m.add_argument("--no-resume", action="store_true", help="ignore an existing state_latest.pt")
        m.add_argument("--quiet", action="store_true", help="no progress bar")
        m.set_defaults(func=_cmd_train)
