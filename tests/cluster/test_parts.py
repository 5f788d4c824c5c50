"""Cluster pieces without a running Ray instance: settings, routing keys, error mapping, app arguments."""

from __future__ import annotations

import pytest

from fastsovits.cluster.messages import EngineJob, RoutingKey, VoiceRef, routing_key, voice_digest
from fastsovits.cluster.settings import ClusterSettings, RouterKind
from fastsovits.errors import CapacityError, InvalidParameter
from fastsovits.params import SynthesisParams
from fastsovits.server.config import ModelSpec
from fastsovits.server.voices import Voice

pytestmark = pytest.mark.ray


def test_settings_are_checked_once() -> None:
    assert ClusterSettings(min_replicas=1, max_replicas=3).autoscaling["max_replicas"] == 3
    assert ClusterSettings(router="pow2").router is RouterKind.POW2
    for bad in (
        {"replicas": 0},
        {"min_replicas": 2},
        {"min_replicas": 3, "max_replicas": 2},
        {"replica_queue": 0},
        {"imbalance_threshold": -1},
        {"gpus_per_replica": -1},
    ):
        with pytest.raises(InvalidParameter):
            ClusterSettings(**bad)


def test_routing_key_is_model_voice_and_avoid() -> None:
    voice = Voice("v", b"RIFF-one", "hello", "en")
    same = Voice("other-name", b"RIFF-one", "hello", "en")
    assert voice_digest(voice) == voice_digest(same) != voice_digest(Voice("v", b"RIFF-two", "hello", "en"))
    ref = VoiceRef.of(voice, stored=True)
    assert ref.name == "v" and ref.inline is None
    assert VoiceRef.of(voice, stored=False).inline is voice
    job = EngineJob("text", "en", ref, SynthesisParams(), ModelSpec("ft"), avoid="r1")
    assert routing_key([job], {}) == RoutingKey("ft", ref.key, "r1")
    assert routing_key([ref, ModelSpec("m")], {}) == RoutingKey("m", ref.key)
    assert routing_key([ModelSpec("m")], {}) == RoutingKey("m", None)
    assert routing_key(["x"], {"y": 1}) is None


def test_backpressure_is_a_503_and_replica_errors_keep_their_type() -> None:
    from ray.exceptions import ActorDiedError
    from ray.serve.exceptions import BackPressureError

    from fastsovits.cluster.remote import replica_failure, unwrap
    from fastsovits.server.errors import status_of

    err = unwrap(BackPressureError(num_queued_requests=3, max_queued_requests=2))
    assert isinstance(err, CapacityError) and status_of(err) == 503
    assert replica_failure(ActorDiedError()) and not replica_failure(ValueError())
    plain = InvalidParameter("x")
    assert unwrap(plain) is plain


def test_application_arguments_from_strings() -> None:
    from fastsovits.cluster.app import _coerce
    from fastsovits.server.config import ServerConfig

    assert _coerce(ClusterSettings, "replicas", "2") == 2
    assert _coerce(ClusterSettings, "gpus_per_replica", "0.5") == 0.5
    assert _coerce(ClusterSettings, "min_replicas", "1") == 1
    assert _coerce(ServerConfig, "allow_control", "false") is False
    assert _coerce(ClusterSettings, "router", "pow2") == "pow2"


def test_application_builder_for_serve_run() -> None:
    from ray.serve import Application

    from fastsovits.cluster.app import from_args

    app = from_args(
        {
            "gpt": "s1.ckpt",
            "sovits": "s2.pth",
            "hubert_dir": "hubert",
            "replicas": "2",
            "router": "pow2",
            "max_models": "3",
            "gpus_per_replica": "0",
        }
    )
    assert isinstance(app, Application)
    with pytest.raises(InvalidParameter, match="replica_count"):
        from_args({"gpt": "s1.ckpt", "replica_count": "2"})
    with pytest.raises(InvalidParameter):
        from_args({"gpt": "s1.ckpt", "replicas": "0"})
