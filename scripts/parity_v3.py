"""Print, as JSON, the largest differences between our v3/v4 outputs and the official fixtures.

    python scripts/parity_v3.py [--reference DIR]

Covers what tests/parity/test_sovits_v3_parity.py asserts: decode_encp features, single CFM calls,
in-context syntheses (mel handed to the vocoder, audio), the v4 vocoder, BigVGAN, the v4 LoRA.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _diff(ours: torch.Tensor, ref: np.ndarray, relative: bool = False) -> float:
    d = (ours.detach().float() - torch.from_numpy(np.ascontiguousarray(ref))).abs().max().item()
    return d / float(np.abs(ref).max()) if relative else d


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", help="fixtures folder (default: $FASTSOVITS_REFERENCE or tests/fixtures/reference)")
    a = p.parse_args()
    if a.reference:
        os.environ["FASTSOVITS_REFERENCE"] = a.reference
    torch.set_num_threads(1)
    from tests.parity import test_sovits_v3_parity as t

    out: dict[str, float] = {}
    for v in t.VERSIONS:
        meta, arr = t._io(f"s2_{v}_synthesis")
        model = t._model(v)
        for s in ("1", "1.25"):
            fea, ge = model.decode_encp(t._t(arr["encp.codes"]), t._t(arr["encp.phones"]), t._spec_a(), speed=float(s))
            out[f"{v}.encp.speed{s}.fea"] = _diff(fea, arr[f"encp.speed{s}.fea"])
            out[f"{v}.encp.speed{s}.ge"] = _diff(ge, arr[f"encp.speed{s}.ge"])
        cfm = model.cfm.sample(t._t(arr["cfm.mu"]), t._t(arr["cfm.prompt"]), 4, noise=t._t(arr["cfm.noise"]))
        out[f"{v}.cfm.out"] = _diff(cfm, arr["cfm.out"])
        prompt = t._prompt(model, arr, t._spec_a())
        for case, body in meta["cases"].items():
            k = f"synth.{case}."
            noises = [[t._t(arr[f"{k}noise{i}"]) for i in range(body["n_cfm_calls"])]]
            audio = f"{k}audio" in arr
            res = t.syn.synthesize(
                model,
                t._vocoder("v4") if audio else None,
                [prompt],
                [t._t(arr[f"{k}semantic"])],
                [t._t(arr[f"{k}phones"]).view(1, -1)],
                1.25 if "1.25" in case else 1.0,
                steps=4,
                noises=noises,
            )
            out[f"{v}.{case}.mel_to_vocoder (relative)"] = _diff(res.mels[0], arr[f"{k}mel_to_vocoder"], True)
            if audio and res.audio:
                out[f"{v}.{case}.audio"] = _diff(res.audio[0], arr[f"{k}audio"])
    _, arr = t._io("s2_v4_synthesis")
    with torch.no_grad():
        out["v4.vocoder.wav"] = _diff(t._vocoder("v4")(t._t(arr["vocoder.mel"])), arr["vocoder.wav"])
        _, b = t._io("bigvgan_v3")
        out["bigvgan.vocoder.wav"] = _diff(t._vocoder("v3")(t._t(b["vocoder.mel"])), b["vocoder.wav"])
    model = t._model("v3")
    res = t.syn.synthesize(
        model,
        t._vocoder("v3"),
        [t._prompt(model, b, t._t(b["synth.refer_spec"]))],
        [t._t(b["synth.short.semantic"])],
        [t._t(b["synth.short.phones"]).view(1, -1)],
        1.0,
        steps=4,
        noises=[[t._t(b["synth.short.noise0"])]],
    )
    out["bigvgan.synth.short.mel_to_vocoder (relative)"] = _diff(res.mels[0], b["synth.short.mel_to_vocoder"], True)
    if res.audio:
        out["bigvgan.synth.short.audio"] = _diff(res.audio[0], b["synth.short.audio"])
    _, lo = t._io("lora_v4")
    lora = t._lora_model()[0]
    state = lora.state_dict()
    out["lora.merged (max over weights)"] = max(
        _diff(state[k.removeprefix("merged.")], lo[k]) for k in lo if k.startswith("merged.")
    )
    fea, ge = lora.decode_encp(t._t(lo["encp.codes"]), t._t(lo["encp.phones"]), t._t(lo["encp.refer_spec"]))
    out["lora.encp.fea"], out["lora.encp.ge"] = _diff(fea, lo["encp.fea"]), _diff(ge, lo["encp.ge"])
    cfm = lora.cfm.sample(t._t(lo["cfm.mu"]), t._t(lo["cfm.prompt"]), 4, noise=t._t(lo["cfm.noise"]))
    out["lora.cfm.out"] = _diff(cfm, lo["cfm.out"])
    print(json.dumps({k: float(f"{v:.3g}") for k, v in out.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
