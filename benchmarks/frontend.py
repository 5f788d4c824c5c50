"""Text-frontend throughput, cold start and peak memory per language. Prints JSON.

    python benchmarks/frontend.py [--repeat 3] [--languages zh en ja ko yue auto]

Each language runs in a fresh subprocess, so the cold-start time includes importing and
loading its dictionaries/models (e.g. the Japanese user dictionary compile on a first run, then
its cache), and the peak RSS is that of a process that only ran this language. Sentences are
the official fixture cases of that language group.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GROUP = {"zh": "v2/zh", "en": "v2/en", "ja": "v2/ja", "ko": "v2/ko", "yue": "v2/yue", "auto": "v2/mix", "v1": "v1/v1"}

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()


def peak_mb():
    # VmHWM: peak RSS of this process image (ru_maxrss would include the forked parent)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
from fastsovits.text import phonemize
from fastsovits.errors import InvalidInput
cases = json.loads(sys.stdin.read())
repeat = int(sys.argv[1])
first = cases[0]
phonemize(first["text"], first["language"], first["version"])
cold = time.perf_counter() - t0
n = 0
t1 = time.perf_counter()
for _ in range(repeat):
    for c in cases:
        try:
            phonemize(c["text"], c["language"], c["version"])
        except InvalidInput:
            pass
        n += 1
dt = time.perf_counter() - t1
print(json.dumps({"cold_start_s": round(cold, 3), "sentences": n, "seconds": round(dt, 3),
                  "sentences_per_s": round(n / dt, 1), "chars_per_s": round(sum(len(c["text"]) for c in cases) * repeat / dt),
                  "peak_rss_mb": round(peak_mb(), 1)}))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=3, help="passes over the sentences after warm-up")
    p.add_argument("--languages", nargs="+", default=list(GROUP), choices=list(GROUP))
    a = p.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.reference import g2p_cases, group_of

    cases = [c for c in g2p_cases() if "error" not in c]
    results = {}
    for lang in a.languages:
        chosen = [c for c in cases if group_of(c) == GROUP[lang]]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(a.repeat)],
            input=json.dumps(chosen),
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if out.returncode != 0:
            results[lang] = {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
        else:
            results[lang] = json.loads(out.stdout.strip().splitlines()[-1])
    import platform

    print(
        json.dumps(
            {
                "benchmark": "text_frontend",
                "machine": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(),
                "results": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
