"""A restricted unpickler for untrusted files (official checkpoints, dictionary caches).

Official ``.pth``/``.ckpt`` files and some data caches are Python pickles. A plain
``pickle.load`` runs whatever callable the file names, so we only admit an explicit
allow-list of ``(module, name)`` pairs; anything else raises ``UnpicklingError``.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping
from typing import Any, BinaryIO

# Plain containers and scalars only; enough for dictionary caches.
PLAIN_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("builtins", "dict"),
        ("builtins", "list"),
        ("builtins", "tuple"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "str"),
        ("builtins", "int"),
        ("builtins", "float"),
        ("builtins", "bool"),
        ("builtins", "bytes"),
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
    }
)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allow-listed globals.

    ``extra`` maps ``(module, name)`` to the object to use instead (e.g. a stand-in class for
    the official ``utils.HParams``).
    """

    def __init__(
        self,
        file: BinaryIO,
        allowed: frozenset[tuple[str, str]] = PLAIN_GLOBALS,
        extra: Mapping[tuple[str, str], Any] | None = None,
    ) -> None:
        super().__init__(file)
        self._allowed = allowed
        self._extra = dict(extra or {})

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in self._extra:
            return self._extra[key]
        if key in self._allowed:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"forbidden global in pickle: {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed in this pickle")


def loads_plain(data: bytes) -> Any:
    """Unpickle data that may contain only plain containers and scalars."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


def load_plain_file(path: str) -> Any:
    with open(path, "rb") as f:
        return RestrictedUnpickler(f).load()
