"""Key mapping between official SoVITS (s2) state_dicts and :class:`~fastsovits.models.sovits.Synthesizer`.

Our module names differ from the official ones (``prior`` for ``enc_p``, ``vocoder`` for ``dec``,
``style_encoder`` for ``ref_enc``, ...); :func:`key_entries` lists, in the official order, every
official key with the key of ours it comes from. Weight-normalised official convs become two
entries (``weight_g``, ``weight_v``) for one plain weight of ours.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch

from fastsovits.models.sovits import SovitsConfig, Synthesizer

# ---- key mapping -------------------------------------------------------------------------------
_ENCODERS = {"content": "encoder_ssl", "phone": "encoder_text", "fused": "encoder2"}
_ENC_PARTS = {"attn": "attn_layers", "norm1": "norm_layers_1", "ffn": "ffn_layers", "norm2": "norm_layers_2"}
_LEAVES = {
    "q": "conv_q",
    "k": "conv_k",
    "v": "conv_v",
    "o": "conv_o",
    "conv1": "conv_1",
    "conv2": "conv_2",
    "rel_k": "emb_rel_k",
    "rel_v": "emb_rel_v",
}
_NORM = {"weight": "gamma", "bias": "beta"}
_STYLE = {
    "fc1": "spectral.0.fc",
    "fc2": "spectral.3.fc",
    "glu1.conv": "temporal.0.conv1.conv",
    "glu2.conv": "temporal.1.conv1.conv",
    "attn.q": "slf_attn.w_qs",
    "attn.k": "slf_attn.w_ks",
    "attn.v": "slf_attn.w_vs",
    "attn.o": "slf_attn.fc",
    "out": "fc.fc",
}
_WAVENET = {"dilated": "in_layers", "res_skip": "res_skip_layers"}


def _encoder_key(m: re.Match) -> str:
    enc, layer, part, rest = m.group(1), m.group(2), m.group(3), m.group(4)
    leaf = ".".join(_NORM[p] if part.startswith("norm") else _LEAVES.get(p, p) for p in rest.split("."))
    return f"enc_p.{_ENCODERS[enc]}.{_ENC_PARTS[part]}.{layer}.{leaf}"


def _wavenet_key(prefix: str) -> Callable[[re.Match], str]:
    def fn(m: re.Match) -> str:
        if m.group("kind") == "cond":
            return f"{prefix(m)}.cond_layer.{m.group('leaf')}"
        return f"{prefix(m)}.{_WAVENET[m.group('kind')]}.{m.group('i')}.{m.group('leaf')}"

    return fn


_WN = r"wavenet\.(?P<kind>dilated|res_skip|cond)(?:\.(?P<i>\d+))?\.(?P<leaf>weight|bias)"
# (our key pattern, official key, weight-normalised in the official module)
_RULES: list[tuple[re.Pattern, Callable[[re.Match], str], bool]] = [
    (re.compile(p), f, wn)
    for p, f, wn in [
        (r"prior\.(content|phone|fused)_encoder\.layers\.(\d+)\.(attn|norm1|ffn|norm2)\.(.+)", _encoder_key, False),
        (r"prior\.content_in\.(.+)", lambda m: f"enc_p.ssl_proj.{m[1]}", False),
        (r"prior\.phone_embedding\.(.+)", lambda m: f"enc_p.text_embedding.{m[1]}", False),
        (r"prior\.mrte\.attn\.([qkvo])\.(.+)", lambda m: f"enc_p.mrte.cross_attention.conv_{m[1]}.{m[2]}", False),
        (
            r"prior\.mrte\.(content_in|phone_in|out)\.(.+)",
            lambda m: f"enc_p.mrte.{ {'content_in': 'c_pre', 'phone_in': 'text_pre', 'out': 'c_post'}[m[1]] }.{m[2]}",
            False,
        ),
        (r"prior\.stats\.(.+)", lambda m: f"enc_p.proj.{m[1]}", False),
        (r"vocoder\.conv_in\.(.+)", lambda m: f"dec.conv_pre.{m[1]}", False),
        (r"vocoder\.ups\.(\d+)\.(.+)", lambda m: f"dec.ups.{m[1]}.{m[2]}", True),
        (r"vocoder\.resblocks\.(\d+)\.(dilated|plain)\.(\d+)\.(.+)", None, True),  # resblock kind: see below
        (r"vocoder\.conv_out\.(.+)", lambda m: f"dec.conv_post.{m[1]}", False),
        (r"vocoder\.cond\.(.+)", lambda m: f"dec.cond.{m[1]}", False),
        (r"posterior\.(pre|proj)\.(.+)", lambda m: f"enc_q.{m[1]}.{m[2]}", False),
        (r"posterior\." + _WN, _wavenet_key(lambda m: "enc_q.enc"), True),
        (
            r"flow\.couplings\.(?P<c>\d+)\.(?P<part>pre|post)\.(?P<leaf2>.+)",
            lambda m: f"flow.flows.{2 * int(m['c'])}.{m['part']}.{m['leaf2']}",
            False,
        ),
        (r"flow\.couplings\.(?P<c>\d+)\." + _WN, _wavenet_key(lambda m: f"flow.flows.{2 * int(m['c'])}.enc"), True),
        (
            r"style_encoder\.(fc1|fc2|glu1\.conv|glu2\.conv|attn\.[qkvo]|out)\.(.+)",
            lambda m: f"ref_enc.{_STYLE[m[1]]}.{m[2]}",
            False,
        ),
        (r"semantic_proj\.(.+)", lambda m: f"ssl_proj.{m[1]}", False),
        (r"codebook\.(.+)", lambda m: f"quantizer.vq.layers.0._codebook.{m[1]}", False),
        (r"sv_proj\.(.+)", lambda m: f"sv_emb.{m[1]}", False),
        (r"style_to_mrte\.(.+)", lambda m: f"ge_to512.{m[1]}", False),
        (r"sv_act\.(.+)", lambda m: f"prelu.{m[1]}", False),
    ]
]


def _official_name(key: str, resblock: str) -> tuple[str, bool]:
    """Our state_dict key -> (official key, is weight-normalised)."""
    for pattern, fn, wn in _RULES:
        m = pattern.fullmatch(key)
        if m is None:
            continue
        if fn is None:  # vocoder resblocks: ResBlock1 has convs1/convs2, ResBlock2 one list "convs"
            lst = "convs" if resblock == "2" else {"dilated": "convs1", "plain": "convs2"}[m[2]]
            return f"dec.resblocks.{m[1]}.{lst}.{m[3]}.{m[4]}", wn
        return fn(m), wn
    raise KeyError(f"no official name for SoVITS key {key!r}")


@dataclass(frozen=True)
class KeyEntry:
    official: str
    ours: str
    kind: str  # "plain", "g" (weight_g) or "v" (weight_v)
    shape: tuple[int, ...]


def _official_order(entries: list[KeyEntry]) -> list[KeyEntry]:
    """Reorder to the official state_dict order: inside each prior encoder the official module
    keeps four lists (attention, norm1, ffn, norm2) so it lists all layers of one kind first."""
    enc = re.compile(
        r"enc_p\.(encoder_ssl|encoder_text|encoder2)\.(attn_layers|norm_layers_1|ffn_layers|norm_layers_2)\.(\d+)\."
    )
    rank = {v: i for i, v in enumerate(_ENC_PARTS.values())}
    out: list[KeyEntry] = []
    run: list[tuple[tuple, KeyEntry]] = []
    run_name = None
    for i, e in enumerate(entries + [None]):  # type: ignore[list-item]
        m = enc.match(e.official) if e is not None else None
        name = m[1] if m else None
        if run and name != run_name:
            out += [x for _, x in sorted(run, key=lambda t: t[0])]
            run = []
        if m:
            run.append(((rank[m[2]], int(m[3]), i), e))
            run_name = name
        elif e is not None:
            out.append(e)
    return out


def key_entries(model: Synthesizer, include_posterior: bool = False) -> list[KeyEntry]:
    """Every official key of ``model`` in the official order, with our key and its shape."""
    state = model.state_dict(keep_vars=True)
    groups: OrderedDict[str, list[str]] = OrderedDict()
    for key in state:
        if key.startswith("posterior.") and not include_posterior:
            continue
        groups.setdefault(key.rsplit(".", 1)[0], []).append(key)
    entries: list[KeyEntry] = []
    for keys in groups.values():
        tail: list[KeyEntry] = []
        for key in keys:
            official, wn = _official_name(key, model.config.resblock)
            shape = tuple(state[key].shape)
            if wn and official.endswith(".weight"):
                g_shape = (shape[0],) + (1,) * (len(shape) - 1)
                tail = [KeyEntry(official + "_g", key, "g", g_shape), KeyEntry(official + "_v", key, "v", shape)]
            else:
                entries.append(KeyEntry(official, key, "plain", shape))
        entries += tail  # official weight-norm modules list bias, weight_g, weight_v
    return _official_order(entries)


def official_layout(config: SovitsConfig) -> OrderedDict[str, tuple[int, ...]]:
    """Every key and shape of an official file for this architecture (built on ``meta``)."""
    with torch.device("meta"):
        model = Synthesizer(config, with_posterior=False)
    return OrderedDict((e.official, e.shape) for e in key_entries(model))


def norm_except_first(v: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(v, dim=tuple(range(1, v.dim())), keepdim=True)


def official_state_dict(model: Synthesizer, dtype: torch.dtype = torch.float16) -> OrderedDict[str, torch.Tensor]:
    """Our weights under the official keys (weight norm split again: v = w, g = ||w||), no enc_q."""
    state = model.state_dict()
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for e in key_entries(model):
        w = state[e.ours].detach().to("cpu", torch.float32)
        out[e.official] = (norm_except_first(w) if e.kind == "g" else w).to(dtype).clone()
    return out
