"""In CI a skip for a missing resource fails the run; only GPU tests may skip (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).resolve().parents[1] / "conftest.py").read_text()
TESTS = """
import pytest

def test_data_missing():
    pytest.skip("official text data not installed")

@pytest.mark.skipif(True, reason="no HuBERT fixture in this reference folder")
def test_fixture_missing():
    pass

def test_needs_gpu():
    pytest.skip("needs a CUDA device")

@pytest.mark.gpu_only
def test_marked_gpu_only():
    pytest.skip("graph capture")

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False

def test_passes():
    pass
"""


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None) -> pytest.RunResult:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_things=TESTS, test_module_skip="import pytest\npytest.importorskip('no_such_mod_xyz')\n")
    return pytester.runpytest("-p", "no:cacheprovider", "-q", "--continue-on-collection-errors")


def test_skips_for_missing_resources_fail_in_ci(pytester, monkeypatch) -> None:
    result = _run(pytester, monkeypatch, "true")
    outcomes = result.parseoutcomes()
    # a skip in the test body fails it; one in setup (skipif) or at import (a module) is an error
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 3 and outcomes.get("skipped") == 2, outcomes
    assert outcomes.get("passed") == 1 and outcomes.get("xfailed") == 1, outcomes
    result.stdout.fnmatch_lines(["*skipped in CI*official text data not installed*"])
    result.stdout.fnmatch_lines(["*skipped in CI*no HuBERT fixture*"])
    result.stdout.fnmatch_lines(["*skipped in CI*no_such_mod_xyz*"])


def test_outside_ci_skips_stay_skips(pytester, monkeypatch) -> None:
    outcomes = _run(pytester, monkeypatch, None).parseoutcomes()
    assert outcomes.get("failed") is None and outcomes.get("skipped") == 5, outcomes
