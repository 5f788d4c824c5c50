"""Shared pytest configuration: tiny models run fastest (and most repeatably) on one thread."""

from __future__ import annotations


def pytest_configure(config) -> None:  # noqa: ARG001
    import torch

    torch.set_num_threads(1)
