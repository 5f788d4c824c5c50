"""SoVITS synthesizer for v1 / v2 / v2Pro / v2ProPlus: semantic codes + phones + style -> 32 kHz audio.

One :class:`Synthesizer` serves every version; :class:`SovitsConfig` says which:

* style: ``StyleEncoder`` on the first ``style_bins`` spectrogram bins (1025 for v1, 704 after);
  Pro versions add ``sv_proj`` of a 20480-d speaker-verification vector, apply a PReLU, and give
  the MRTE a 512-d projection (``style_to_mrte``) while flow and vocoder get the ``gin``-d vector.
  Several references are averaged (after the PReLU).
* decode: codes -> codebook rows -> nearest x2 upsampling (25 Hz codes) -> prior (m, logs) ->
  z_p = m + noise * exp(logs) * noise_scale -> inverse coupling flow -> HiFi-GAN.

Rows of different lengths may be batched (``code_lengths`` / ``phone_lengths``); each row then
equals its own single-row decode (masks are applied wherever a padded frame could leak).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import Tensor, nn

from fastsovits.errors import InvalidInput, InvalidParameter
from fastsovits.models.hifigan import HifiGan
from fastsovits.models.ref_encoder import StyleEncoder
from fastsovits.models.sovits_modules import CouplingFlow, PosteriorEncoder
from fastsovits.models.sovits_prior import PriorEncoder, PriorOutput, speed_lengths
from fastsovits.models.sovits_quantizer import SemanticCodebook

VERSIONS = ("v1", "v2", "v2Pro", "v2ProPlus")
PRO_VERSIONS = ("v2Pro", "v2ProPlus")
N_SYMBOLS = {"v1": 322, "v2": 732}  # symbol-table sizes by symbol version
_MODEL_KEYS = (  # fields read from / written to the official ``hps.model`` section
    "inter_channels",
    "hidden_channels",
    "filter_channels",
    "n_heads",
    "n_layers",
    "kernel_size",
    "p_dropout",
    "resblock",
    "resblock_kernel_sizes",
    "resblock_dilation_sizes",
    "upsample_rates",
    "upsample_initial_channel",
    "upsample_kernel_sizes",
    "gin_channels",
    "semantic_frame_rate",
)


@dataclass(frozen=True)
class SovitsConfig:
    """Architecture of one SoVITS model (defaults: the official ``configs/s2.json``, version v2)."""

    version: str = "v2"
    spec_channels: int = 1025  # filter_length // 2 + 1
    segment_frames: int = 32  # training segment_size // hop_length
    inter_channels: int = 192
    hidden_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    p_dropout: float = 0.1
    resblock: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    upsample_rates: tuple[int, ...] = (10, 8, 2, 2, 2)
    upsample_initial_channel: int = 512
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 8, 2, 2)
    gin_channels: int = 512
    semantic_frame_rate: str = "25hz"
    sampling_rate: int = 32000
    hop_length: int = 640
    filter_length: int = 2048
    win_length: int = 2048
    # sizes the official code hard-codes
    ssl_dim: int = 768
    codebook_size: int = 1024
    mrte_hidden: int = 512
    mrte_heads: int = 4
    sv_dim: int = 20480
    flow_layers: int = 4
    n_flows: int = 4
    posterior_layers: int = 16
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # other hps.model entries, kept for export

    def __post_init__(self) -> None:
        if self.version not in VERSIONS:
            raise InvalidParameter(f"SoVITS version must be one of {VERSIONS}, got {self.version!r}")
        if self.semantic_frame_rate not in ("25hz", "50hz"):
            raise InvalidParameter(f"semantic_frame_rate must be '25hz' or '50hz', got {self.semantic_frame_rate!r}")
        if not self.is_pro and self.gin_channels != self.mrte_hidden:
            raise InvalidParameter(
                f"version {self.version} adds the style vector inside the MRTE, so gin_channels must be "
                f"{self.mrte_hidden}, got {self.gin_channels}"
            )
        if self.hidden_channels % self.n_heads:
            raise InvalidParameter(f"hidden_channels {self.hidden_channels} not divisible by n_heads {self.n_heads}")
        if self.upsample_initial_channel >> len(self.upsample_rates) < 1:
            raise InvalidParameter(
                f"upsample_initial_channel {self.upsample_initial_channel} cannot be halved "
                f"{len(self.upsample_rates)} times"
            )
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise InvalidParameter(f"upsample_rates {self.upsample_rates} vs kernel sizes {self.upsample_kernel_sizes}")

    @property
    def is_pro(self) -> bool:
        return self.version in PRO_VERSIONS

    @property
    def symbol_version(self) -> str:
        return "v1" if self.version == "v1" else "v2"

    @property
    def n_symbols(self) -> int:
        return N_SYMBOLS[self.symbol_version]

    @property
    def style_bins(self) -> int:
        return self.spec_channels if self.version == "v1" else 704

    @property
    def samples_per_frame(self) -> int:
        """Waveform samples per latent (50 Hz) frame: the product of the upsample rates."""
        n = 1
        for r in self.upsample_rates:
            n *= r
        return n

    @property
    def frames_per_code(self) -> int:
        return 2 if self.semantic_frame_rate == "25hz" else 1

    @classmethod
    def from_official(cls, hps: Mapping[str, Any], version: str) -> SovitsConfig:
        """From an official ``hps`` (the whole config with ``model``/``data``/``train``, or its model section)."""
        hps = as_plain_dict(hps)
        model = dict(hps.get("model", hps))
        data, train = dict(hps.get("data") or {}), dict(hps.get("train") or {})
        missing = [k for k in _MODEL_KEYS if k not in model and k != "semantic_frame_rate"]
        if missing:
            raise InvalidParameter(f"official SoVITS config lacks model keys {missing}")
        kw: dict[str, Any] = {k: model[k] for k in _MODEL_KEYS if k in model}
        kw["semantic_frame_rate"] = model.get("semantic_frame_rate") or "25hz"
        for k in ("resblock_kernel_sizes", "upsample_rates", "upsample_kernel_sizes"):
            kw[k] = tuple(int(v) for v in kw[k])
        kw["resblock_dilation_sizes"] = tuple(tuple(int(v) for v in d) for d in kw["resblock_dilation_sizes"])
        kw["resblock"] = str(kw["resblock"])
        for k in ("sampling_rate", "hop_length", "filter_length", "win_length"):
            if k in data:
                kw[k] = int(data[k])
        kw["spec_channels"] = kw.get("filter_length", cls.filter_length) // 2 + 1
        if "segment_size" in train:
            kw["segment_frames"] = int(train["segment_size"]) // kw.get("hop_length", cls.hop_length)
        extra = {k: v for k, v in model.items() if k not in _MODEL_KEYS and k != "version"}
        return cls(version=version, extra=extra, **kw)

    def to_official(self) -> dict[str, Any]:
        """The official ``hps.model`` section (lists, as in the json files)."""
        d = asdict(self)
        out = {**self.extra}
        for k in _MODEL_KEYS:
            v = d[k]
            out[k] = [list(x) for x in v] if k == "resblock_dilation_sizes" else list(v) if isinstance(v, tuple) else v
        out["version"] = self.version
        return out

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def as_plain_dict(obj: Any) -> Any:
    """Nested HParams-like objects (anything with ``to_dict``/``keys``) -> dicts."""
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, Mapping):
        return {k: as_plain_dict(v) for k, v in obj.items()}
    return obj


class Synthesizer(nn.Module):
    def __init__(self, config: SovitsConfig, with_posterior: bool = True) -> None:
        super().__init__()
        c = config
        self.config = c
        # registration order follows the official state_dict order (enc_p, dec, enc_q, flow, ...)
        self.prior = PriorEncoder.from_config(c)
        self.vocoder = HifiGan(
            c.inter_channels,
            c.resblock,
            c.resblock_kernel_sizes,
            c.resblock_dilation_sizes,
            c.upsample_rates,
            c.upsample_initial_channel,
            c.upsample_kernel_sizes,
            c.gin_channels,
        )
        self.posterior = self.build_posterior() if with_posterior else None
        self.flow = CouplingFlow(c.inter_channels, c.hidden_channels, 5, 1, c.flow_layers, c.n_flows, c.gin_channels)
        self.style_encoder = StyleEncoder(c.style_bins, c.gin_channels)
        k = 2 if c.semantic_frame_rate == "25hz" else 1
        self.semantic_proj = nn.Conv1d(c.ssl_dim, c.ssl_dim, k, stride=k)
        self.codebook = SemanticCodebook(c.codebook_size, c.ssl_dim)
        if c.is_pro:
            self.sv_proj = nn.Linear(c.sv_dim, c.gin_channels)
            self.style_to_mrte = nn.Linear(c.gin_channels, c.mrte_hidden)
            self.sv_act = nn.PReLU(c.gin_channels)

    def build_posterior(self) -> PosteriorEncoder:
        """A fresh posterior encoder (training); official files do not carry its weights."""
        c = self.config
        return PosteriorEncoder(
            c.spec_channels, c.inter_channels, c.hidden_channels, 5, 1, c.posterior_layers, c.gin_channels
        )

    # ---- semantic codes -------------------------------------------------------------------
    @property
    def weight_dtype(self) -> torch.dtype:
        """The dtype the model runs in; float inputs are cast to it at the entry points."""
        return self.semantic_proj.weight.dtype

    def project_ssl(self, ssl: Tensor) -> Tensor:
        """ssl: [B, ssl_dim, T50] HuBERT features -> [B, ssl_dim, T25]."""
        return self.semantic_proj(ssl.to(self.weight_dtype))

    def extract_latent(self, ssl: Tensor) -> Tensor:
        """ssl: [B, ssl_dim, T50] -> codes [B, 1, T25] int64."""
        return self.codebook.encode(self.project_ssl(ssl)).unsqueeze(1)

    # ---- style ----------------------------------------------------------------------------
    def style_one(self, spec: Tensor, sv_emb: Tensor | None = None, trace: dict | None = None) -> Tensor:
        """One reference: spec [1, F, T] (F >= style_bins), sv_emb [1, sv_dim] (Pro only) -> ge [1, gin, 1]."""
        if spec.dim() != 3 or spec.shape[1] < self.config.style_bins:
            raise InvalidInput(
                f"reference spectrogram must be [B, >= {self.config.style_bins}, T], got {tuple(spec.shape)}"
            )
        ge = self.style_encoder(spec.to(self.weight_dtype))
        _record(trace, "ge_ref_enc", ge)
        if self.config.is_pro:
            if sv_emb is None:
                raise InvalidInput(f"SoVITS {self.config.version} needs a speaker-verification vector per reference")
            ge = ge + self.sv_proj(sv_emb.to(self.weight_dtype)).unsqueeze(-1)
            _record(trace, "ge_with_sv", ge)
            ge = self.sv_act(ge)
            _record(trace, "ge_after_prelu", ge)
        elif sv_emb is not None:
            raise InvalidInput(f"SoVITS {self.config.version} takes no speaker-verification vector (sv_emb)")
        return ge

    def style(
        self,
        refer: Sequence[Tensor] | Tensor,
        sv_emb: Sequence[Tensor] | Tensor | None = None,
        trace: dict | None = None,
    ) -> Tensor:
        """Global style vector of one voice: the mean over references -> ge [1, gin, 1].

        refer: list of [1, F, T_ref] linear spectrograms (or one tensor); sv_emb: one [1, sv_dim]
        per reference for Pro versions.
        """
        refs = [refer] if isinstance(refer, Tensor) else list(refer)
        if not refs:
            raise InvalidInput("at least one reference spectrogram is needed")
        if sv_emb is None:
            svs: list[Tensor | None] = [None] * len(refs)
        else:
            svs = [sv_emb] if isinstance(sv_emb, Tensor) else list(sv_emb)
            if len(svs) != len(refs):
                raise InvalidInput(f"{len(refs)} references but {len(svs)} sv_emb vectors")
        ges = [self.style_one(r, s, trace) for r, s in zip(refs, svs)]
        return torch.stack(ges, 0).mean(0)

    # ---- decode ---------------------------------------------------------------------------
    def wav_lengths(self, code_lengths: Tensor, speed: float | Sequence[float] = 1.0) -> Tensor:
        """Samples of each row's waveform: code_lengths [B] -> [B] int64."""
        frames = [n * self.config.frames_per_code for n in code_lengths.tolist()]
        frames = speed_lengths(frames, _speeds(speed, len(frames)))
        return torch.tensor(frames, dtype=torch.int64) * self.config.samples_per_frame

    def prior_stats(
        self,
        codes: Tensor,
        phones: Tensor,
        ge: Tensor,
        speed: float | Sequence[float] = 1.0,
        code_lengths: Tensor | None = None,
        phone_lengths: Tensor | None = None,
        trace: dict | None = None,
    ) -> PriorOutput:
        """codes [B, 1, T25], phones [B, N], ge [B or 1, gin, 1] -> prior (m, logs) per latent frame."""
        if codes.dim() != 3 or codes.shape[1] != 1:
            raise InvalidInput(f"codes must be [B, 1, T], got {tuple(codes.shape)}")
        if phones.dim() != 2 or phones.shape[0] != codes.shape[0]:
            raise InvalidInput(f"phones must be [B={codes.shape[0]}, N], got {tuple(phones.shape)}")
        b, dev = codes.shape[0], codes.device
        if code_lengths is None:
            code_lengths = torch.full((b,), codes.shape[2], dtype=torch.int64, device=dev)
        if phone_lengths is None:
            phone_lengths = torch.full((b,), phones.shape[1], dtype=torch.int64, device=dev)
        semantic = self.codebook.decode(codes[:, 0])  # [B, ssl_dim, T25]
        k = self.config.frames_per_code
        if k > 1:
            semantic = semantic.repeat_interleave(k, dim=2)  # nearest x2 upsampling -> [B, ssl_dim, T50]
        style = ge
        if self.config.is_pro:
            style = self.style_to_mrte(ge.transpose(1, 2))  # [B, 1, 512]
            _record(trace, "ge512", style)
            style = style.transpose(1, 2)
        out = self.prior(semantic, code_lengths.to(dev) * k, phones, phone_lengths.to(dev), style, _speeds(speed, b))
        for name, value in (("enc_p_x", out.x), ("m_p", out.m), ("logs_p", out.logs), ("y_mask", out.mask)):
            _record(trace, name, value)
        return out

    def decode_with_style(
        self,
        codes: Tensor,
        phones: Tensor,
        ge: Tensor,
        noise_scale: float = 0.5,
        speed: float | Sequence[float] = 1.0,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
        code_lengths: Tensor | None = None,
        phone_lengths: Tensor | None = None,
        trace: dict | None = None,
    ) -> Tensor:
        """codes [B, 1, T25], phones [B, N], ge [B or 1, gin, 1] (from :meth:`style`) -> wav [B, 1, samples].

        ``noise`` [B, inter, T] replaces the N(0, 1) draw (else it comes from ``generator``);
        batched rows are zero past :meth:`wav_lengths`.
        """
        ge = ge.to(self.weight_dtype)
        prior = self.prior_stats(codes, phones, ge, speed, code_lengths, phone_lengths, trace)
        z_p = prior.m
        if noise_scale != 0:
            if noise is None:
                noise = torch.randn(prior.m.shape, generator=generator, device=prior.m.device, dtype=prior.m.dtype)
            elif noise.shape != prior.m.shape:
                raise InvalidInput(f"noise must have shape {tuple(prior.m.shape)}, got {tuple(noise.shape)}")
            z_p = prior.m + noise.to(prior.m.dtype) * torch.exp(prior.logs) * noise_scale
        z = self.flow(z_p, prior.mask, ge, reverse=True)
        _record(trace, "z", z)
        z = z * prior.mask
        _record(trace, "dec_in", z)
        full = bool((prior.lengths == z.shape[2]).all())
        wav = self.vocoder(z, ge, None if full else prior.lengths)
        _record(trace, "wav", wav)
        return wav

    @torch.no_grad()
    def decode(
        self,
        codes: Tensor,
        phones: Tensor,
        refer: Sequence[Tensor] | Tensor,
        noise_scale: float = 0.5,
        speed: float | Sequence[float] = 1.0,
        sv_emb: Sequence[Tensor] | Tensor | None = None,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
        code_lengths: Tensor | None = None,
        phone_lengths: Tensor | None = None,
        trace: dict | None = None,
    ) -> Tensor:
        """The official ``decode`` call: style from ``refer`` (+ ``sv_emb``), then :meth:`decode_with_style`."""
        ge = self.style(refer, sv_emb, trace)
        return self.decode_with_style(
            codes, phones, ge, noise_scale, speed, noise, generator, code_lengths, phone_lengths, trace
        )

    forward = decode


def _speeds(speed: float | Sequence[float], n: int) -> list[float]:
    speeds = [float(speed)] * n if isinstance(speed, (int, float)) else [float(s) for s in speed]
    if len(speeds) != n:
        raise InvalidInput(f"{n} rows but {len(speeds)} speeds")
    bad = [s for s in speeds if not s > 0]
    if bad:
        raise InvalidInput(f"speed must be > 0, got {bad[0]}")
    return speeds


def _record(trace: dict | None, name: str, value: Tensor) -> None:
    """Store an intermediate for parity checks; repeated names (one per reference) become lists."""
    if trace is None:
        return
    if name in ("ge_ref_enc", "ge_with_sv", "ge_after_prelu"):
        trace.setdefault(name, []).append(value.detach().clone())
    else:
        trace[name] = value.detach().clone()
