"""Client-named server paths, admitted only inside a folder the operator allows (traversal rejected)."""

from __future__ import annotations

from pathlib import Path

from fastsovits.server.errors import ForbiddenPath, NotFound


def resolve_inside(root: Path | None, name: str, what: str) -> Path:
    if root is None:
        raise ForbiddenPath(
            f"this server reads no {what} a client names ({name!r}); upload a voice with "
            "POST /v1/voices, or ask the operator to start the server with the matching --*-root"
        )
    if not name or "\x00" in name:
        raise ForbiddenPath(f"{what} {name!r} is not a valid path")
    base = Path(root).resolve()
    path = (base / name).resolve()  # an absolute name replaces base: it must still land inside it
    if path != base and base not in path.parents:
        raise ForbiddenPath(f"{what} {name!r} is outside the folder this server allows")
    if not path.is_file():
        raise NotFound(f"{what} {name!r} does not exist in the allowed folder")
    return path
