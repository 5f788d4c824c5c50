"""The checks a converted folder's ``config.json`` must pass before any model is built from it.

A converted folder may come from anyone, so its config is untrusted input: every architecture value
has a type and a range wide enough for any real GPT-SoVITS model (official sizes are far inside) and
narrow enough that building the modules stays cheap (``n_layers: 1000000`` would build a million
layers). Anything else raises :class:`CheckpointError` naming the field, never ``TypeError``.
"""

from __future__ import annotations

from typing import Any

from fastsovits.errors import CheckpointError

_CHANNELS = (1, 16384)
_LAYERS = (1, 256)
_HEADS = (1, 256)

# field -> (min, max) for ints; None: a float in [0, 1)
T2S_RANGES: dict[str, tuple[int, int] | None] = {
    "embedding_dim": _CHANNELS,
    "hidden_dim": _CHANNELS,
    "heads": _HEADS,
    "n_layers": _LAYERS,
    "phoneme_vocab_size": (1, 100_000),
    "vocab_size": (2, 65_536),
    "eos": (1, 65_535),
    "bert_dim": _CHANNELS,
    "dropout": None,
    "layer_dropout": None,
}
SOVITS_RANGES: dict[str, tuple[int, int] | None] = {
    "spec_channels": (1, 8193),
    "segment_frames": (1, 100_000),
    "inter_channels": _CHANNELS,
    "hidden_channels": _CHANNELS,
    "filter_channels": _CHANNELS,
    "n_heads": _HEADS,
    "n_layers": _LAYERS,
    "kernel_size": (1, 63),
    "p_dropout": None,
    "upsample_initial_channel": _CHANNELS,
    "gin_channels": _CHANNELS,
    "sampling_rate": (8000, 192_000),
    "hop_length": (1, 8192),
    "filter_length": (1, 16384),
    "win_length": (1, 16384),
    "ssl_dim": _CHANNELS,
    "codebook_size": (1, 65_536),
    "mrte_hidden": _CHANNELS,
    "mrte_heads": _HEADS,
    "sv_dim": (1, 65_536),
    "flow_layers": _LAYERS,
    "n_flows": _LAYERS,
    "posterior_layers": _LAYERS,
}
# list-valued SoVITS fields: (most entries, (min, max) of each int)
SOVITS_LISTS = {
    "upsample_rates": (16, (1, 64)),
    "upsample_kernel_sizes": (16, (1, 128)),
    "resblock_kernel_sizes": (16, (1, 63)),
}
SOVITS_STRINGS = {"version": 16, "resblock": 4, "semantic_frame_rate": 8}
MAX_SEC = 3600.0


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _Checker:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.where}: {what}")

    def mapping(self, obj: Any, name: str) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise self.fail(f"{name} must be an object, got {type(obj).__name__}")
        return obj

    def int_in(self, value: Any, name: str, bounds: tuple[int, int]) -> None:
        lo, hi = bounds
        if not _is_int(value) or not lo <= value <= hi:
            raise self.fail(f"{name} must be an integer in [{lo}, {hi}], got {value!r:.60}")

    def ranges(self, cfg: dict[str, Any], part: str, ranges: dict[str, tuple[int, int] | None]) -> None:
        for key, bounds in ranges.items():
            if key not in cfg:
                continue  # the model's own default applies
            value = cfg[key]
            if bounds is None:
                if not _is_number(value) or not 0.0 <= value < 1.0:
                    raise self.fail(f"{part}.{key} must be a number in [0, 1), got {value!r:.60}")
            else:
                self.int_in(value, f"{part}.{key}", bounds)


def check_config(config: dict[str, Any], where: str) -> None:
    """Raise ``CheckpointError`` unless ``config`` (a parsed converted ``config.json``) is well-formed."""
    c = _Checker(where)
    if "gpt" not in config and "sovits" not in config and "sovits_v3" not in config:
        raise c.fail("holds neither a gpt nor a sovits model")
    if "sovits_v3" in config:
        if "sovits" in config:
            raise c.fail("holds both a v1-v2ProPlus sovits and a v3/v4 sovits_v3 model")
        v3 = c.mapping(config["sovits_v3"], "sovits_v3")
        if v3.get("version") not in ("v3", "v4") or not isinstance(v3.get("is_lora"), bool):
            raise c.fail("sovits_v3 must name its version (v3 or v4) and is_lora (true/false)")
        if v3.get("vocoder") not in (None, "bigvgan", "v4"):
            raise c.fail(f"sovits_v3.vocoder must be bigvgan, v4 or null, got {v3.get('vocoder')!r:.60}")
    if "gpt" in config:
        gpt = c.mapping(config["gpt"], "gpt")
        c.ranges(c.mapping(gpt.get("config"), "gpt.config"), "gpt.config", T2S_RANGES)
        max_sec = gpt.get("max_sec")
        if max_sec is not None and (not _is_number(max_sec) or not 0 < max_sec <= MAX_SEC):
            raise c.fail(f"gpt.max_sec must be a number in (0, {MAX_SEC:g}], got {max_sec!r:.60}")
    if "sovits" in config:
        cfg = c.mapping(c.mapping(config["sovits"], "sovits").get("config"), "sovits.config")
        c.ranges(cfg, "sovits.config", SOVITS_RANGES)
        for key, (most, bounds) in SOVITS_LISTS.items():
            if key in cfg:
                value = cfg[key]
                if not isinstance(value, list) or not 1 <= len(value) <= most:
                    raise c.fail(f"sovits.config.{key} must be a list of 1 to {most} integers")
                for v in value:
                    c.int_in(v, f"sovits.config.{key}[]", bounds)
        if "resblock_dilation_sizes" in cfg:
            value = cfg["resblock_dilation_sizes"]
            if not isinstance(value, list) or not 1 <= len(value) <= 16:
                raise c.fail("sovits.config.resblock_dilation_sizes must be a list of 1 to 16 lists")
            for row in value:
                if not isinstance(row, list) or not 1 <= len(row) <= 16:
                    raise c.fail("sovits.config.resblock_dilation_sizes must hold lists of 1 to 16 integers")
                for v in row:
                    c.int_in(v, "sovits.config.resblock_dilation_sizes[][]", (1, 64))
        for key, longest in SOVITS_STRINGS.items():
            if key in cfg and (not isinstance(cfg[key], str) or len(cfg[key]) > longest):
                raise c.fail(f"sovits.config.{key} must be a short string, got {cfg[key]!r:.60}")
        if "extra" in cfg and not isinstance(cfg["extra"], dict):
            raise c.fail("sovits.config.extra must be an object")
    paths = config.get("paths", {})
    c.mapping(paths, "paths")
    for key, value in paths.items():
        if key not in ("hubert_dir", "bert_dir", "sv") or not isinstance(value, str) or not value:
            raise c.fail(f"paths.{key} must be one of hubert_dir, bert_dir, sv with a path string")
