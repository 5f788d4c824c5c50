"""SynthesisParams: official defaults and typed validation."""

from __future__ import annotations

import pytest

from fastsovits.errors import InvalidParameter
from fastsovits.params import SynthesisParams


def test_defaults_follow_official_run() -> None:
    p = SynthesisParams()
    assert (p.top_k, p.top_p, p.temperature, p.repetition_penalty) == (15, 1.0, 1.0, 1.35)
    assert (p.text_split_method, p.speed_factor, p.fragment_interval, p.noise_scale) == ("cut1", 1.0, 0.3, 0.5)
    assert p.fixed_seed is None and SynthesisParams(seed=-1).fixed_seed is None and SynthesisParams(seed=3).fixed_seed == 3


@pytest.mark.parametrize(
    "field,value",
    [("top_k", 0), ("top_k", 2.5), ("top_p", 0.0), ("top_p", 1.5), ("temperature", 0), ("repetition_penalty", -1),
     ("text_split_method", "cut9"), ("batch_size", 0), ("speed_factor", 0.1), ("fragment_interval", -1),
     ("seed", -2), ("noise_scale", 3), ("max_new_tokens", 1501), ("sample_steps", 0)],
)
def test_out_of_range_is_typed(field: str, value) -> None:
    with pytest.raises(InvalidParameter, match=field):
        SynthesisParams(**{field: value})
