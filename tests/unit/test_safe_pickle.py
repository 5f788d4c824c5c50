"""The restricted unpickler admits plain data and refuses code."""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict

import pytest

from fastsovits.safe_pickle import loads_plain


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_plain_data_round_trips() -> None:
    data = {"a": [1, 2.5, "x"], "b": ("t", True, None), "c": OrderedDict(k=b"v")}
    assert loads_plain(pickle.dumps(data)) == data


def test_code_execution_is_refused() -> None:
    with pytest.raises(pickle.UnpicklingError, match="forbidden global"):
        loads_plain(pickle.dumps(_Evil()))


def test_arbitrary_class_is_refused() -> None:
    with pytest.raises(pickle.UnpicklingError):
        loads_plain(pickle.dumps(ValueError("x")))
