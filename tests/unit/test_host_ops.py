"""Single-threaded joins for control threads equal torch's, and fall back to torch where numpy cannot."""

from __future__ import annotations

import torch

from fastsovits import host_ops


def test_cat_and_zeros_match_torch() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1024, 7, generator=g), torch.randn(1024, 3, generator=g)
    for dim, parts in ((1, [a, b]), (0, [a.T, b.T])):
        got = host_ops.cat(parts, dim=dim)
        assert got.dtype == torch.float32 and torch.equal(got, torch.cat(parts, dim=dim))
    ids = host_ops.cat([torch.tensor([1, 2]), torch.tensor([3])])
    assert ids.dtype == torch.long and ids.tolist() == [1, 2, 3]
    z = host_ops.zeros(4, 5)
    assert z.shape == (4, 5) and z.dtype == torch.float32 and not z.any()


def test_cat_falls_back_to_torch_for_bf16_and_autograd() -> None:
    x = torch.ones(2, 2, dtype=torch.bfloat16)
    assert host_ops.cat([x, x]).dtype == torch.bfloat16
    w = torch.ones(2, requires_grad=True)
    out = host_ops.cat([w, w])
    assert out.requires_grad  # autograd kept (numpy would drop it)
