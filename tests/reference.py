"""Where parity tests find their fixtures: $FASTSOVITS_REFERENCE or tests/fixtures/reference."""

from __future__ import annotations

import json
import os
from pathlib import Path

DEFAULT = Path(__file__).parent / "fixtures" / "reference"


def reference_dir() -> Path:
    return Path(os.environ.get("FASTSOVITS_REFERENCE", DEFAULT))


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def g2p_cases() -> list[dict]:
    return [c for p in sorted((reference_dir() / "text").glob("g2p*.jsonl")) for c in read_jsonl(p)]


def split_cases() -> list[dict]:
    return [c for p in sorted((reference_dir() / "text").glob("split*.jsonl")) for c in read_jsonl(p)]


def group_of(case: dict) -> str:
    """'v2/zh', 'v2/en', ..., 'v2/mix', 'v1/v1' from ids like v2-zh-001 / v1-001."""
    parts = case["id"].split("-")
    return f"{case['version']}/{parts[1] if parts[0] == 'v2' else 'v1'}"
