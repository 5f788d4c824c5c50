"""Print the text-frontend parity per group and per language run, with every mismatch.

python scripts/parity_report.py [--group v2/zh] [--runs zh] [--quiet]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.reference import g2p_cases, group_of  # noqa: E402
from tests.text.parity import check_case, check_run  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--group", action="append", help="only these groups (e.g. v2/zh, v1/v1)")
    p.add_argument("--runs", action="append", help="check official runs of these languages through clean_run")
    p.add_argument("--quiet", action="store_true", help="counts only")
    a = p.parse_args()
    cases = g2p_cases()
    if a.runs:
        for lang in a.runs:
            n = bad = 0
            for c in cases:
                for s in c.get("segments") or []:
                    if "error" in c or s["lang"] != lang:
                        continue
                    n += 1
                    d = check_run(c, s)
                    if d:
                        bad += 1
                        if not a.quiet:
                            print(f"  {c['id']} [{c['version']}] {s['text']!r}: {d}")
            print(f"runs {lang}: {n - bad}/{n} exact")
        return 0
    groups = sorted({group_of(c) for c in cases})
    for g in groups:
        if a.group and g not in a.group:
            continue
        outs = [check_case(c) for c in cases if group_of(c) == g]
        bad = [o for o in outs if not o.ok]
        if not a.quiet:
            for o in bad:
                print(f"  {o.case['id']} {o.case['language']} {o.case['text']!r}: {o.detail}")
        print(f"{g}: {len(outs) - len(bad)}/{len(outs)} exact ({1 - len(bad) / len(outs):.1%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
