"""Compare the frontend with the official G2P fixtures (used by tests and scripts/parity_report.py)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from fastsovits.errors import EmptyText, InvalidInput
from tests.reference import g2p_cases, group_of


@dataclass
class Outcome:
    case: dict
    ok: bool
    detail: str = ""


def check_case(case: dict) -> Outcome:
    from fastsovits.text import phonemize
    from fastsovits.text.frontend import has_speech

    if "error" in case:
        try:
            got = phonemize(case["text"], case["language"], case["version"])
        except InvalidInput as e:
            return Outcome(case, True, f"raised {type(e).__name__}")
        except Exception as e:  # noqa: BLE001 - reported as a mismatch
            return Outcome(case, False, f"official raised {case['error']}, we raised {type(e).__name__}: {e}")
        return Outcome(case, False, f"official raised {case['error']}, we returned {got.phones}")
    if not has_speech(case["phones"]):
        # Deliberate difference (text/frontend.py): where the official frontend returns only pauses,
        # there is nothing to read and fastsovits raises EmptyText.
        try:
            got = phonemize(case["text"], case["language"], case["version"])
        except EmptyText:
            return Outcome(case, True, "raised EmptyText (official: only pauses)")
        except Exception as e:  # noqa: BLE001 - reported as a mismatch
            return Outcome(case, False, f"official read only pauses, we raised {type(e).__name__}: {e}")
        return Outcome(case, False, f"official read only pauses {case['phones']}, we returned {got.phones}")
    try:
        got = phonemize(case["text"], case["language"], case["version"])
    except Exception as e:  # noqa: BLE001 - reported as a mismatch
        return Outcome(case, False, f"raised {type(e).__name__}: {e}")
    problems = []
    if got.norm_text != case["norm_text"]:
        problems.append(f"norm_text {got.norm_text!r} != {case['norm_text']!r}")
    if got.phone_ids != case["phone_ids"]:
        problems.append(f"phones {' '.join(got.phones)!r} != {' '.join(case['phones'])!r}")
    want_runs = [(s["lang"], s["text"]) for s in case["segments"]]
    got_runs = [(s.lang, s.text) for s in got.segments]
    if got_runs != want_runs:
        problems.append(f"runs {got_runs} != {want_runs}")
    return Outcome(case, not problems, "; ".join(problems))


def check_all(cases: list[dict] | None = None) -> dict[str, list[Outcome]]:
    by_group: dict[str, list[Outcome]] = defaultdict(list)
    for case in cases if cases is not None else g2p_cases():
        by_group[group_of(case)].append(check_case(case))
    return dict(by_group)


def check_run(case: dict, seg: dict) -> str | None:
    """Check one official run through clean_run; None when it matches."""
    from fastsovits.text.frontend import clean_run

    try:
        got = clean_run(seg["text"], seg["lang"], case["version"])
    except Exception as e:  # noqa: BLE001
        return f"raised {type(e).__name__}: {e}"
    problems = []
    if got.norm_text != seg["norm_text"]:
        problems.append(f"norm {got.norm_text!r} != {seg['norm_text']!r}")
    if got.phones != seg["phones"]:
        problems.append(f"phones {' '.join(got.phones)!r} != {' '.join(seg['phones'])!r}")
    if got.word2ph != seg["word2ph"]:
        problems.append(f"word2ph {got.word2ph} != {seg['word2ph']}")
    return "; ".join(problems) or None
