"""SynthesisParams: official defaults and typed validation."""

from __future__ import annotations

import pytest

from fastsovits.errors import InvalidParameter
from fastsovits.params import SynthesisParams


def test_defaults_follow_official_run() -> None:
    p = SynthesisParams()
    assert (p.top_k, p.top_p, p.temperature, p.repetition_penalty) == (15, 1.0, 1.0, 1.35)
    assert (p.text_split_method, p.speed_factor, p.fragment_interval, p.noise_scale) == ("cut1", 1.0, 0.3, 0.5)
    assert (
        p.fixed_seed is None and SynthesisParams(seed=-1).fixed_seed is None and SynthesisParams(seed=3).fixed_seed == 3
    )


@pytest.mark.parametrize(
    "field,value",
    [
        ("top_k", 0),
        ("top_k", 2.5),
        ("top_p", 0.0),
        ("top_p", 1.5),
        ("temperature", 0),
        ("repetition_penalty", -1),
        ("text_split_method", "cut9"),
        ("batch_size", 0),
        ("speed_factor", 0.1),
        ("fragment_interval", -1),
        ("seed", -2),
        ("noise_scale", 3),
        ("max_new_tokens", 1501),
        ("sample_steps", 0),
        ("min_chunk_length", 0),
        ("overlap_length", 65),
        ("top_k", True),
        ("streaming_mode", 1),
    ],
)
def test_out_of_range_is_typed(field: str, value) -> None:
    with pytest.raises(InvalidParameter, match=field):
        SynthesisParams(**{field: value})


def test_limits_have_one_home() -> None:
    from fastsovits import limits

    p = SynthesisParams()
    assert p.max_new_tokens == limits.MAX_NEW_TOKENS
    assert SynthesisParams(max_new_tokens=limits.MAX_NEW_TOKENS).max_new_tokens == limits.MAX_NEW_TOKENS
    for name, rng in limits.PARAM_RANGES.items():
        assert rng.contains(getattr(p, name)), name  # every default lies inside its own range
        with pytest.raises(InvalidParameter, match=name):
            SynthesisParams(**{name: rng.high + 1})


def test_from_options_keeps_defaults_for_options_not_given() -> None:
    p = SynthesisParams.from_options(top_k=5, temperature=None)
    assert p.top_k == 5 and p.temperature == SynthesisParams().temperature
    base = SynthesisParams(seed=3)
    assert SynthesisParams.from_options(base, seed=None, speed_factor=1.5) == SynthesisParams(seed=3, speed_factor=1.5)
