"""Open JTalk access for the Japanese frontend: system dictionary, user dictionary, labels.

Open JTalk (MeCab + NJD + JPCommon, wrapped by ``pyopenjtalk``) is C code with mutable
state inside each analyser and process-wide allocations in MeCab. Everything we hand to it
(building the analyser, ``run_frontend``, ``make_label``) goes through :data:`_JTALK_LOCK`, so
one thread at a time is inside the C library, whatever threads the caller runs.

We never use ``pyopenjtalk``'s module-level helpers (``pyopenjtalk.g2p`` & co.): they download
a dictionary from the internet when their default folder is empty. We build our own
``OpenJTalk`` object on an explicit dictionary folder instead:

* system dictionary: ``$FASTSOVITS_OPENJTALK_DICT``, else ``$OPEN_JTALK_DICT_DIR``, else Debian's
  ``/var/lib/mecab/dic/open-jtalk/naist-jdic`` (package ``open-jtalk-mecab-naist-jdic``);
* user dictionary: the official ``ja_userdic/userdict.csv`` (CMUdict words in katakana and a few
  names), compiled once with MeCab's dictionary compiler into
  ``<cache_root>/openjtalk/`` under a name derived from the csv's and the system dictionary's
  hashes, then reused by every later process.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from fastsovits.errors import MissingDependency, MissingResource
from fastsovits.hashing import sha256_file

DEBIAN_DICT_DIR = "/var/lib/mecab/dic/open-jtalk/naist-jdic"
DEBIAN_PACKAGE = "open-jtalk-mecab-naist-jdic"
USERDICT_CSV = "ja_userdic/userdict.csv"
# Files a compiled MeCab system dictionary must have.
_REQUIRED_DICT_FILES = ("sys.dic", "unk.dic", "matrix.bin", "char.bin")
# Files whose content decides how a user csv compiles (ids, rewrite rules, charset).
_DICT_KEY_FILES = ("left-id.def", "right-id.def", "pos-id.def", "rewrite.def", "dicrc", "char.bin")

# One lock for every call into the Open JTalk C library (see the module docstring).
_JTALK_LOCK = threading.Lock()
# Guards compiling the user dictionary (slow; never hold _JTALK_LOCK while compiling).
_COMPILE_LOCK = threading.Lock()


def import_openjtalk() -> Any:
    """The compiled ``pyopenjtalk.openjtalk`` module, or ``MissingDependency('ja')``."""
    try:
        from pyopenjtalk import openjtalk
    except ImportError as e:
        raise MissingDependency("Japanese G2P", "ja", e) from e
    return openjtalk


def system_dict_dir() -> Path:
    """The Open JTalk system dictionary folder (checked to exist and be complete)."""
    configured = os.environ.get("FASTSOVITS_OPENJTALK_DICT") or os.environ.get("OPEN_JTALK_DICT_DIR")
    path = Path(configured) if configured else Path(DEBIAN_DICT_DIR)
    missing = [name for name in _REQUIRED_DICT_FILES if not (path / name).is_file()]
    if missing:
        raise MissingResource(
            f"Open JTalk dictionary not found in {str(path)!r} (missing {', '.join(missing)}). "
            f"Install the Debian/Ubuntu package '{DEBIAN_PACKAGE}' (apt-get install {DEBIAN_PACKAGE}) "
            f"or point FASTSOVITS_OPENJTALK_DICT (or OPEN_JTALK_DICT_DIR) at a compiled naist-jdic "
            f"folder (open_jtalk_dic_utf_8-1.11). fastsovits never downloads it."
        )
    return path


def _dict_fingerprint(dict_dir: Path) -> str:
    """A short hash of the system-dictionary files a user dictionary depends on."""
    digest = hashlib.sha256()
    for name in _DICT_KEY_FILES:
        path = dict_dir / name
        digest.update(name.encode())
        digest.update(sha256_file(path).encode() if path.is_file() else b"-")
    return digest.hexdigest()[:12]


def user_dict_cache_dir() -> Path:
    from fastsovits.text.assets import cache_root

    return cache_root() / "openjtalk"


def compiled_user_dict(csv_path: Path, dict_dir: Path) -> Path:
    """Path of the compiled user dictionary for ``csv_path``; compiled on first use.

    The name carries the csv's sha256 and the system dictionary's fingerprint, so an edited
    csv or another dictionary compiles anew and a stale file is never used. The compiler runs
    in a child process (it prints a progress bar from C and must not share our file
    descriptors); its result is moved into place atomically, so concurrent processes are safe.
    """
    key = f"{sha256_file(csv_path)[:24]}-{_dict_fingerprint(dict_dir)}"
    target = user_dict_cache_dir() / f"userdict-{key}.dic"
    if target.is_file():
        return target
    with _COMPILE_LOCK:
        if target.is_file():
            return target
        import_openjtalk()  # fail early with MissingDependency, not in the child
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".userdict-", suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            cmd = [sys.executable, "-m", __name__, str(dict_dir), str(csv_path), tmp_name]
            done = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
            if done.returncode != 0 or os.path.getsize(tmp_name) == 0:
                tail = (done.stderr or done.stdout)[-2000:]
                raise MissingResource(
                    f"could not compile the Japanese user dictionary {csv_path} against {dict_dir} "
                    f"(exit {done.returncode}): {tail.strip()}"
                )
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, target)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
    return target


class OpenJTalk:
    """One Open JTalk analyser on a system dictionary and an optional compiled user dictionary."""

    def __init__(self, dict_dir: Path, user_dict: Path | None = None) -> None:
        module = import_openjtalk()
        kwargs: dict[str, bytes] = {"dn_mecab": os.fsencode(dict_dir)}
        if user_dict is not None:
            kwargs["userdic"] = os.fsencode(user_dict)
        with _JTALK_LOCK:
            try:
                self._jtalk = module.OpenJTalk(**kwargs)
            except RuntimeError as e:
                raise MissingResource(
                    f"Open JTalk could not load the dictionary {dict_dir}"
                    + (f" with user dictionary {user_dict}" if user_dict else "")
                    + f": {e}"
                ) from e
        self.dict_dir = dict_dir
        self.user_dict = user_dict

    def labels(self, text: str) -> list[str]:
        """HTS full-context labels of ``text`` (Open JTalk front end + label maker)."""
        with _JTALK_LOCK:
            features = self._jtalk.run_frontend(text)
            return list(self._jtalk.make_label(features))


def _compile_main(argv: list[str]) -> int:
    """Child-process entry: ``python -m fastsovits.text.g2p.ja_openjtalk DICT CSV OUT``."""
    dict_dir, csv_path, out_path = argv
    module = import_openjtalk()
    rc = module.mecab_dict_index(os.fsencode(dict_dir), os.fsencode(csv_path), os.fsencode(out_path))
    # MeCab's compiler returns 0 on success.
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    raise SystemExit(_compile_main(sys.argv[1:]))
