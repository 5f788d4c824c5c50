"""The v3/v4 training forward (official ``SynthesizerTrnV3.forward`` + ``CFM.forward``).

:func:`mel_features` (the encode path, as training runs it): style ``ge`` from the target's own
spectrogram (first 704 bins, trainable); semantic codes of the target's HuBERT features through the
frozen ``ssl_proj`` + codebook, upsampled x2 to 50 Hz; the frozen prior (content + phones + MRTE
with ``ge``) under ``no_grad``; ``bridge`` (1x1 conv + leaky ReLU), nearest upsampling to the
mel rate (x1.875 v3, x2 v4) and ``wns1`` conditioned on ``ge``, masked by each row's **mel**
length (at inference the mask follows the code count instead).

:func:`flow_matching_loss` (the official CFM objective): ``t ~ U(0, 1)``, ``x0 ~ N(0, 1)``,
``x_t = x0 + t (x1 - x0)``, target ``v = x1 - x0``; row b's first ``P_b = floor(U * ratio * len_b)``
frames are the in-context prompt: copied to the prompt input, zeroed in ``x_t`` and left out of the
loss. With probability ``shortcut_prob`` (per step, for the whole batch) the target is the
self-consistency one: ``d = 2^-k`` (k uniform in 2..7 per row), ``v = (v(x_t, t) + v(x_t + d v(x_t, t),
t + d)) / 2`` from the current model without gradient (conditioned on ``d``, or 0 where d < 0.01),
and the trained prediction is conditioned on ``2 d`` instead of 0. Loss: the mean squared error
over each row's frames ``[P_b, len_b)``, averaged over rows.

Unlike the official code (on purpose, as in inference): padded frames never reach real ones
(the DiT masks convolutions and the response normalisation, the style encoder excludes padding),
so a row's loss does not depend on what it is batched with; every random draw comes from torch's
generator (the official trainer also uses Python's ``random`` for the shortcut coin).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from fastsovits.models.dit import DiT, DiTBlock
from fastsovits.models.sovits_prior import length_mask
from fastsovits.models.sovits_v3 import STYLE_BINS, SynthesizerV3

SHORTCUT_MIN_EXP, SHORTCUT_MAX_EXP = 2, 7  # d = 2^-k, k in 2..7 (official)
SHORTCUT_D_FLOOR = 1e-2  # step sizes below this are fed to the d-embedding as 0 (official)


def mel_features(
    model: SynthesizerV3,
    ssl: Tensor,
    spec: Tensor,
    spec_lens: Tensor,
    phones: Tensor,
    phone_lens: Tensor,
    mel_lens: Tensor,
) -> tuple[Tensor, Tensor]:
    """ssl [B, 768, W], spec [B, 1025, W] (W even), phones [B, N] -> (features [B, 512, T_mel], ge [B, gin, 1])."""
    mask = length_mask(spec_lens, spec.shape[2], spec.dtype)
    ge = model.style_encoder(spec[:, :STYLE_BINS] * mask, spec_lens)
    with torch.no_grad():
        codes = model.extract_latent(ssl.float())[:, 0]  # [B, W / 2]
        semantic = model.codebook.decode(codes).repeat_interleave(2, dim=2)  # nearest x2 -> [B, 768, W]
        prior = model.prior(semantic, spec_lens, phones, phone_lens, ge)
    x = F.leaky_relu(model.bridge(prior.x))
    x = F.interpolate(x, scale_factor=model.config.mel_scale, mode="nearest")
    fea = model.mel_encoder(x, length_mask(mel_lens, x.shape[2], x.dtype), ge)
    return fea, ge


def random_prompt_lengths(lengths: Tensor, ratio: float) -> Tensor:
    """floor(U(0, 1) * ratio * length) per row (int64)."""
    u = torch.rand(lengths.shape[0], device=lengths.device)
    return (u * lengths.float() * ratio).floor().long()


def flow_matching_loss(
    estimator: DiT,
    x1: Tensor,
    lengths: Tensor,
    prompt_lens: Tensor,
    mu: Tensor,
    shortcut_prob: float,
) -> Tensor:
    """x1: target mel [B, mel, T], lengths / prompt_lens [B], mu: features [B, T, C] -> scalar loss."""
    b, _, width = x1.shape
    dev = x1.device
    t = torch.rand(b, device=dev, dtype=x1.dtype)
    x0 = torch.randn_like(x1)
    target = x1 - x0
    xt = x0 + t[:, None, None] * target
    frames = torch.arange(width, device=dev).view(1, 1, -1)
    in_prompt = frames < prompt_lens.view(-1, 1, 1)
    prompt = (x1 * in_prompt).transpose(1, 2)  # [B, T, mel]
    xt = xt.masked_fill(in_prompt, 0.0)
    row_lengths = None if bool((lengths >= width).all()) else lengths
    dt = torch.zeros_like(t)
    if shortcut_prob > 0 and float(torch.rand(())) < shortcut_prob:
        k = torch.randint(SHORTCUT_MIN_EXP, SHORTCUT_MAX_EXP + 1, (b,), device=dev)
        d = torch.pow(2.0, -k.to(x1.dtype))
        d_in = d.masked_fill(d < SHORTCUT_D_FLOOR, 0.0)
        with torch.no_grad():
            cache = estimator.condition(mu, d_in, row_lengths)
            v1 = estimator(xt.transpose(1, 2), prompt, t, cache, row_lengths).transpose(1, 2)
            x_mid = xt + d[:, None, None] * v1
            v2 = estimator(x_mid.transpose(1, 2), prompt, t + d, cache, row_lengths).transpose(1, 2)
        target = ((v1 + v2) / 2).to(x1.dtype)
        dt = 2 * d
    cache = estimator.condition(mu, dt, row_lengths)
    pred = estimator(xt.transpose(1, 2), prompt, t, cache, row_lengths).transpose(1, 2)
    scored = ((frames >= prompt_lens.view(-1, 1, 1)) & (frames < lengths.view(-1, 1, 1))).to(torch.float32)
    err = (pred.float() - target.float()).pow(2) * scored  # [B, mel, T]
    per_row = err.sum(dim=(1, 2)) / (scored.sum(dim=(1, 2)) * x1.shape[1]).clamp(min=1)
    return per_row.mean()


# ---- training-only behaviour of the DiT -------------------------------------------------------
def _attn_dropout(p: float, module: nn.Module, args: tuple, out: Tensor) -> Tensor:
    return F.dropout(out, p, module.training)


def enable_dit_dropout(estimator: DiT, p: float) -> None:
    """The official DiT's training dropout: on the attention output and between the feed-forward layers.

    Inference (``eval()``) is unchanged; the state dict is unchanged (dropout has no tensors).
    """
    if p <= 0:
        return
    for block in estimator.transformer_blocks:
        assert isinstance(block, DiTBlock)
        block.ff.ff[1] = nn.Dropout(p)  # the feed-forward's (inference-free) dropout slot
        block.attn.register_forward_hook(functools.partial(_attn_dropout, p))


def enable_grad_checkpointing(estimator: DiT) -> None:
    """Recompute each DiT block in the backward pass instead of keeping its activations."""
    for block in estimator.transformer_blocks:
        forward = block.forward

        def run(*args: object, _f=forward) -> Tensor:
            if torch.is_grad_enabled():
                return checkpoint(_f, *args, use_reentrant=False)
            return _f(*args)

        block.forward = run  # type: ignore[method-assign]
