"""Fetch the official pretrained weights of one version from the Hugging Face hub (users only;
tests and CI never call the network: they exercise this with a local folder).

The official weights live in the hub repository ``lj1995/GPT-SoVITS`` with the same layout as the
official ``GPT_SoVITS/pretrained_models/`` folder, so the result is usable with
``checkpoints.discovery.discover`` and ``TTS.from_pretrained(folder, version=...)``. When the hub
cannot be reached, the error lists the files to copy in by hand (:func:`manual_layout`).
"""

from __future__ import annotations

from pathlib import Path

from fastsovits.checkpoints.discovery import (
    BERT,
    BERT_FILES,
    BIGVGAN_DIR,
    BIGVGAN_FILES,
    HUBERT,
    HUBERT_FILES,
    LOADABLE_VERSIONS,
    OFFICIAL_FILES,
    SV,
    VOCODER_FILES,
    discover,
)
from fastsovits.errors import InvalidParameter, MissingDependency, MissingResource

DEFAULT_REPO = "lj1995/GPT-SoVITS"
DEFAULT_VERSION = "v2ProPlus"
DOWNLOADABLE_VERSIONS = tuple(OFFICIAL_FILES)  # v1-v2ProPlus and v3/v4 (with their vocoders)

__all__ = [
    "DEFAULT_REPO",
    "DEFAULT_VERSION",
    "DOWNLOADABLE_VERSIONS",
    "LOADABLE_VERSIONS",
    "default_folder",
    "download",
    "files_for",
    "manual_layout",
]


def _check_version(version: str) -> None:
    if version not in OFFICIAL_FILES:
        raise InvalidParameter(f"unknown model version {version!r}; expected one of {list(DOWNLOADABLE_VERSIONS)}")


def files_for(version: str) -> list[str]:
    """Hub path patterns of everything ``version`` needs."""
    _check_version(version)
    gpt, sovits, needs_sv = OFFICIAL_FILES[version]
    patterns = [gpt, sovits, f"{HUBERT}/*", f"{BERT}/*"]
    if version == "v3":
        patterns += [f"{BIGVGAN_DIR}/{f}" for f in BIGVGAN_FILES]
    elif version in VOCODER_FILES:
        patterns.append(VOCODER_FILES[version])
    return patterns + ([SV] if needs_sv else [])


def default_folder() -> Path:
    """Where ``download`` puts the weights unless told otherwise: ``$FASTSOVITS_CACHE/pretrained_models``."""
    from fastsovits.text.assets import cache_root

    return cache_root() / "pretrained_models"


def manual_layout(version: str, target: str | Path, repo: str = DEFAULT_REPO) -> str:
    """How to install ``version`` by hand: the exact files and the folder tree they go in."""
    _check_version(version)
    gpt, sovits, needs_sv = OFFICIAL_FILES[version]
    files = [gpt, sovits, *(f"{HUBERT}/{f}" for f in HUBERT_FILES), *(f"{BERT}/{f}" for f in BERT_FILES)]
    files += [SV] if needs_sv else []
    if version == "v3":
        files += [f"{BIGVGAN_DIR}/{f}" for f in BIGVGAN_FILES]
    elif version in VOCODER_FILES:
        files.append(VOCODER_FILES[version])
    tree = "\n".join(f"  {Path(target) / f}" for f in files)
    return (
        f"To install the {version} weights by hand, copy these files of https://huggingface.co/{repo} "
        f"(same paths as in the repository) to:\n{tree}\n"
        f"Any folder with this layout works: point FASTSOVITS_MODELS at it (the demo looks there), or give it "
        f"as --model (fastsovits synthesize/serve) or TTS.from_pretrained(folder)."
    )


def download(
    version: str = DEFAULT_VERSION,
    cache_dir: str | Path | None = None,
    repo: str = DEFAULT_REPO,
    revision: str | None = None,
) -> Path:
    """Download (or reuse) the files of ``version`` into ``cache_dir``; returns the folder.

    A failure (no network, hub error, files missing afterwards) raises ``MissingResource`` saying what
    failed and which files to copy in by hand.
    """
    patterns = files_for(version)
    target = Path(cache_dir) if cache_dir else default_folder()
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:  # pragma: no cover - transformers depends on it
        raise MissingDependency("downloading weights", "server", e) from e
    try:
        snapshot_download(repo_id=repo, revision=revision, allow_patterns=patterns, local_dir=str(target))
    except Exception as e:  # noqa: BLE001 - network and hub errors differ by version; report them typed
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise MissingResource(
            f"could not download the {version} weights from the Hugging Face hub ({repo}): "
            f"{type(e).__name__}{': ' + reason[:200] if reason else ''}.\n" + manual_layout(version, target, repo)
        ) from None
    try:
        discover(target, version)
    except MissingResource as e:
        raise MissingResource(f"{e}\n{manual_layout(version, target, repo)}") from None
    return target
