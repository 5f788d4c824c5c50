"""Reading official torch checkpoint files without running code from them.

Official ``.ckpt`` / ``.pth`` files are ``torch.save`` zip archives: ``<folder>/data.pkl`` (a pickle)
plus one entry ``<folder>/data/<key>`` per tensor storage. The folder name is arbitrary. SoVITS
files may carry a two-byte version tag (``05``, ``06``, ...) in place of the zip's leading ``PK``.

The pickle is read by :class:`fastsovits.safe_pickle.RestrictedUnpickler`: only plain containers,
``collections.OrderedDict``, the tensor-rebuild function and the storage classes resolve (to our
own safe stand-ins); anything else, e.g. ``os.system``, raises :class:`CheckpointError`.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fastsovits.errors import CheckpointError, MissingResource
from fastsovits.safe_pickle import PLAIN_GLOBALS, RestrictedUnpickler

_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "HalfStorage": torch.float16,
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}


class _StorageKind:
    """What a storage class name in the pickle resolves to: just its element dtype."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    # storage: the flat tensor returned by persistent_load
    if not isinstance(storage, torch.Tensor):
        raise pickle.UnpicklingError(f"tensor rebuilt from a non-storage object {type(storage).__name__}")
    return storage.as_strided(tuple(size), tuple(stride), int(storage_offset))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


class HParamsStandIn:
    """Stand-in for the official ``utils.HParams`` config object: keeps its attributes.

    Read with ``obj["key"]`` / ``obj.key``; :meth:`to_dict` converts nested stand-ins to dicts.
    """

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"utils.HParams state must be a dict, got {type(state).__name__}")
        self.__dict__.update(state)

    def __getitem__(self, key: str) -> Any:
        return self.__dict__[key]

    def __contains__(self, key: object) -> bool:
        return key in self.__dict__

    def keys(self):
        return self.__dict__.keys()

    def to_dict(self) -> dict[str, Any]:
        return {k: v.to_dict() if isinstance(v, HParamsStandIn) else v for k, v in self.__dict__.items()}

    def __repr__(self) -> str:
        return f"HParams({self.to_dict()!r})"


TORCH_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageKind(dtype) for name, dtype in _STORAGE_DTYPES.items()},
}
HPARAMS_GLOBAL = ("utils", "HParams")


@dataclass
class TorchFile:
    """What :func:`read_torch_file` found: the unpickled object and the header tag, if any."""

    obj: Any
    header_tag: str | None  # e.g. "05" when the file started with b"05" instead of b"PK"


class _ZipUnpickler(RestrictedUnpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, folder: str, extra: Mapping) -> None:
        super().__init__(io.BytesIO(data), allowed=PLAIN_GLOBALS, extra={**TORCH_GLOBALS, **extra})
        self._archive = archive
        self._folder = folder
        self._storages: dict[str, torch.Tensor] = {}

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        _, kind, key, _location, numel = pid
        if not isinstance(kind, _StorageKind):
            raise pickle.UnpicklingError(f"persistent id names a non-storage type {kind!r:.80}")
        key = str(key)
        if key not in self._storages:
            raw = self._archive.read(f"{self._folder}data/{key}")
            itemsize = torch.empty(0, dtype=kind.dtype).element_size()
            if len(raw) < int(numel) * itemsize and kind.dtype != torch.uint8:
                raise pickle.UnpicklingError(f"storage {key}: {len(raw)} bytes for {numel} x {kind.dtype}")
            buf = bytearray(raw)
            flat = torch.frombuffer(buf, dtype=kind.dtype) if buf else torch.empty(0, dtype=kind.dtype)
            self._storages[key] = flat
        return self._storages[key]


def read_torch_file(path: str | Path, extra: Mapping[tuple[str, str], Any] | None = None) -> TorchFile:
    """Unpickle an official torch zip checkpoint with the restricted unpickler.

    ``extra`` adds ``(module, name) -> stand-in`` entries (e.g. ``HPARAMS_GLOBAL``). Every failure
    (truncated, corrupt, not a zip, forbidden global) raises :class:`CheckpointError`;
    a missing file raises :class:`MissingResource`.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise MissingResource(f"checkpoint file {str(path)!r} does not exist") from e
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: {e}") from e
    tag = None
    if len(data) >= 2 and data[:2] != b"PK":
        tag = data[:2].decode("latin-1")
        data = b"PK" + data[2:]
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointError(f"{str(path)!r}: expected one <folder>/data.pkl in the archive, found {pickles[:4]}")
        folder = pickles[0][: -len("data.pkl")]
        if f"{folder}byteorder" in archive.namelist():
            order = archive.read(f"{folder}byteorder").decode("ascii", "replace").strip()
            if order != "little":
                raise CheckpointError(f"{str(path)!r}: byte order {order!r} is not supported")
        obj = _ZipUnpickler(archive.read(pickles[0]), archive, folder, extra or {}).load()
    except CheckpointError:
        raise
    except zipfile.BadZipFile as e:
        raise CheckpointError(
            f"{str(path)!r} is not a readable torch zip checkpoint (truncated or corrupt?): {e}"
        ) from e
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{str(path)!r}: refused to unpickle: {e}") from e
    except Exception as e:  # corrupt pickle streams raise many types (EOFError, KeyError, ValueError, ...)
        raise CheckpointError(f"{str(path)!r}: corrupt checkpoint ({type(e).__name__}: {e})") from e
    return TorchFile(obj, tag)
