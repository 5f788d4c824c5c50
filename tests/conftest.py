"""Shared pytest configuration.

* Tiny models run fastest (and most repeatably) on one thread.
* In CI (``CI`` set to ``true``/``1``/``yes``) a skipped test is a failed test: a skip there means a
  resource the setup should have installed is missing (text data, a fixture, a package), and a
  broken setup must not pass. Only tests that need a GPU may skip: those marked ``gpu_only`` or
  whose skip reason names CUDA or a GPU.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator
from typing import Any

import pytest

GPU_REASON = re.compile(r"\b(CUDA|GPU)s?\b", re.IGNORECASE)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_num_threads(1)
    config.addinivalue_line("markers", "gpu_only: needs a GPU; the only kind of test that may skip in CI")


def skip_reason(longrepr: Any) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: reason")
        return str(longrepr[2])
    return str(longrepr)


def skip_allowed_in_ci(reason: str, item: pytest.Item | None = None) -> bool:
    if item is not None and item.get_closest_marker("gpu_only") is not None:
        return True
    return bool(GPU_REASON.search(reason))


def _fail_skip(report: pytest.TestReport | pytest.CollectReport, reason: str) -> None:
    report.outcome = "failed"
    report.longrepr = f"skipped in CI, where every resource must be installed (only GPU tests may skip): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator[None, Any, None]:  # noqa: ARG001
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = skip_reason(report.longrepr)
        if not skip_allowed_in_ci(reason, item):
            _fail_skip(report, reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:  # noqa: ARG001
    """A whole module skipped at import (``pytest.importorskip``, ``allow_module_level``) fails in CI too."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped:
        reason = skip_reason(report.longrepr)
        if not skip_allowed_in_ci(reason):
            _fail_skip(report, reason)
