"""Fetch the official pretrained weights of one version from the Hugging Face hub (users only;
tests and CI never call the network: they exercise this with a local folder).

The official weights live in the hub repository ``lj1995/GPT-SoVITS`` with the same layout as the
official ``GPT_SoVITS/pretrained_models/`` folder, so the result is usable with
``checkpoints.discovery.discover`` and ``TTS.from_pretrained(folder, version=...)``.
"""

from __future__ import annotations

from pathlib import Path

from fastsovits.checkpoints.discovery import (
    BERT,
    BIGVGAN_DIR,
    BIGVGAN_FILES,
    HUBERT,
    OFFICIAL_FILES,
    SV,
    VOCODER_FILES,
    discover,
)
from fastsovits.errors import InvalidParameter, MissingDependency, MissingResource

DEFAULT_REPO = "lj1995/GPT-SoVITS"


def files_for(version: str) -> list[str]:
    """Hub path patterns of everything ``version`` needs."""
    if version not in OFFICIAL_FILES:
        raise InvalidParameter(f"unknown model version {version!r}; expected one of {list(OFFICIAL_FILES)}")
    gpt, sovits, needs_sv = OFFICIAL_FILES[version]
    patterns = [gpt, sovits, f"{HUBERT}/*", f"{BERT}/*"]
    if version == "v3":
        patterns += [f"{BIGVGAN_DIR}/{f}" for f in BIGVGAN_FILES]
    elif version in VOCODER_FILES:
        patterns.append(VOCODER_FILES[version])
    return patterns + ([SV] if needs_sv else [])


def download(
    version: str = "v2ProPlus",
    cache_dir: str | Path | None = None,
    repo: str = DEFAULT_REPO,
    revision: str | None = None,
) -> Path:
    """Download (or reuse) the files of ``version`` into ``cache_dir``; returns the folder."""
    from fastsovits.text.assets import cache_root

    target = Path(cache_dir) if cache_dir else cache_root() / "pretrained_models"
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:  # pragma: no cover - transformers depends on it
        raise MissingDependency("downloading weights", "server", e) from e
    try:
        snapshot_download(repo_id=repo, revision=revision, allow_patterns=files_for(version), local_dir=str(target))
    except Exception as e:  # noqa: BLE001 - network/hub errors differ by version; report them typed
        raise MissingResource(f"could not download {version} weights from {repo}: {type(e).__name__}: {e}") from e
    discover(target, version)  # raises MissingResource listing anything the hub did not provide
    return target
