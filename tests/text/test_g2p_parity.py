"""Parity of phonemize() with the official frontend, per language group (>= 99 % exact each)."""

from __future__ import annotations

import pytest

from tests.reference import g2p_cases, group_of
from tests.text.parity import check_case, check_run

REQUIRED = 0.99
CASES = g2p_cases()
GROUPS = sorted({group_of(c) for c in CASES})


@pytest.mark.parity
@pytest.mark.parametrize("group", GROUPS)
def test_group_parity(group: str) -> None:
    outcomes = [check_case(c) for c in CASES if group_of(c) == group]
    bad = [o for o in outcomes if not o.ok]
    rate = 1 - len(bad) / len(outcomes)
    report = "\n".join(f"{o.case['id']} {o.case['text']!r}: {o.detail}" for o in bad)
    assert rate >= REQUIRED, f"{group}: {rate:.1%} exact ({len(bad)}/{len(outcomes)} mismatches)\n{report}"


RUNS = [(c, i, s) for c in CASES if "error" not in c for i, s in enumerate(c["segments"] or [])]


@pytest.mark.parity
@pytest.mark.parametrize("lang", ["zh", "en", "ja", "ko", "yue"])
def test_run_parity(lang: str) -> None:
    """Each official language run, fed to clean_run directly (independent of segmentation)."""
    runs = [(c, s) for c, _, s in RUNS if s["lang"] == lang]
    if not runs:
        pytest.skip(f"no {lang} runs in this fixture folder")
    bad = [(c, s, d) for c, s in runs if (d := check_run(c, s))]
    rate = 1 - len(bad) / len(runs)
    report = "\n".join(f"{c['id']} {s['text']!r}: {d}" for c, s, d in bad)
    assert rate >= REQUIRED, f"{lang} runs: {rate:.1%} exact ({len(bad)}/{len(runs)})\n{report}"
