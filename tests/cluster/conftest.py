"""One local Ray instance and one fastsovits Serve application per test module (tiny random models).

Ray is held to the CI machine's size: 2 CPUs, a small object store, two engine replicas of half a
CPU each. The application is the same ``fastsovits.cluster.app.deploy`` that ``serve --ray`` runs.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from tests.server.conftest import REF, REF_TEXT, free_port, reference_clip, wav_bytes

READY_TIMEOUT_S = 240
FT_MODELS = ("ft-a", "ft-b")
BIND_ATTEMPTS = 3  # Serve binds its proxy port late: another process may take a port found free


def fine_tuned(src: Path, dst: Path, seed: int) -> Path:
    """A 'fine-tuned' GPT: the tiny checkpoint with its audio-token embedding perturbed (same format)."""
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    g = torch.Generator().manual_seed(seed)
    w = ckpt["weight"]["model.ar_audio_embedding.word_embeddings.weight"]
    ckpt["weight"]["model.ar_audio_embedding.word_embeddings.weight"] = w + torch.randn(w.shape, generator=g) * 0.5
    torch.save(ckpt, dst)
    return dst


class Cluster:
    def __init__(self, url: str, base, config, models: dict) -> None:
        self.url, self.base, self.config, self.models = url, base, config, models

    def wait_replicas(self, n: int, exclude: set[str] = frozenset(), timeout: float = READY_TIMEOUT_S) -> set[str]:
        """Poll /cluster until ``n`` engine replicas (none of ``exclude``) report to the router."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                replicas = set(httpx.get(self.url + "/cluster", timeout=5).json()["replicas"])
                if len(replicas) == n and not replicas & exclude:
                    return replicas
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{n} engine replicas not back within {timeout} s")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    import ray
    from ray import serve

    from fastsovits.cluster.app import deploy, shutdown
    from fastsovits.cluster.settings import ClusterSettings
    from fastsovits.server.config import ModelSpec, ServerConfig
    from fastsovits.server.voices import Voice

    d = tmp_path_factory.mktemp("cluster")
    refs = d / "refs"
    refs.mkdir()
    (refs / "ref.wav").write_bytes(wav_bytes(reference_clip(), 32000))
    base = ModelSpec(
        "default",
        gpt=str(REF / "tiny/tiny_s1_v2.ckpt"),
        sovits=str(REF / "tiny/tiny_s2_v2.pth"),
        hubert_dir=str(REF / "tiny/tiny_hubert"),
    )
    models = {
        name: base.with_(name=name, gpt=str(fine_tuned(REF / "tiny/tiny_s1_v2.ckpt", d / f"{name}.ckpt", i)))
        for i, name in enumerate(FT_MODELS, start=1)
    }
    config = ServerConfig(
        port=free_port(),
        device="cpu",
        num_slots=8,
        max_len=256,
        max_new_tokens=40,
        max_models=3,
        ref_root=refs,
        weights_root=REF / "tiny",
        queue_limit=64,
        max_audio_seconds=20,
    )
    settings = ClusterSettings(
        replicas=2,
        cpus_per_replica=0.5,
        ingress_cpus=0.25,
        replica_queue=8,
        max_queued=64,
        imbalance_threshold=1,
        stats_period_s=1.0,
        local_cpus=2,
        object_store_bytes=150 * 2**20,
        namespace="fastsovits-test",
    )
    ref = Voice("ref", wav_bytes(reference_clip(), 32000), REF_TEXT, "en", source="file")
    try:
        for attempt in range(BIND_ATTEMPTS):
            try:
                deploy(config, base, list(models.values()), settings, [ref], default_voice="ref")
                break
            except Exception as e:  # a free port taken by someone else before Serve's proxy bound it
                if "Failed to bind" not in str(e) or attempt == BIND_ATTEMPTS - 1:
                    raise
                serve.shutdown()  # a local cluster (no ray_address): start it again on a new port
                ray.shutdown()
                config = replace(config, port=free_port())
        c = Cluster(f"http://127.0.0.1:{config.port}", base, config, models)
        c.wait_replicas(2)
        yield c
    finally:
        try:
            shutdown(settings)
        finally:
            if ray.is_initialized():
                serve.shutdown()
                ray.shutdown()


@pytest.fixture()
def client(cluster):
    with httpx.Client(base_url=cluster.url, timeout=180) as c:
        yield c


def replica_of(response: httpx.Response) -> str:
    return response.headers["x-fastsovits-replica"]


def pcm(response: httpx.Response) -> np.ndarray:
    import io

    import soundfile as sf

    samples, _ = sf.read(io.BytesIO(response.content), dtype="float32")
    return samples
