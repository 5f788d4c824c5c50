"""fastsovits on Ray Serve with two engine replicas: clients, voice affinity, model routing, faults.

One local Ray instance for the module (see conftest). Replica ids and cache outcomes are read from
the ``X-Fastsovits-Replica`` / ``X-Fastsovits-Cache`` response headers and ``GET /cluster``.
"""

from __future__ import annotations

import base64
import collections
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import soundfile as sf
from openai import OpenAI

from tests.cluster.conftest import FT_MODELS, pcm, replica_of
from tests.server.conftest import REF, REF_TEXT, metric, wav_bytes

pytestmark = pytest.mark.ray
TEXT = "Hello there. How are you today?"
SHORT = "Good morning to you."


def clip(key: str, gain: float = 1.0) -> bytes:
    x = np.load(REF / "io/audio_inputs.npz")[key] * gain
    return wav_bytes(x, {"wav32k": 32000, "wav24k": 24000, "wav16k": 16000}[key[:6]])


def register(client: httpx.Client, name: str, audio: bytes) -> httpx.Response:
    r = client.post(
        "/v1/voices",
        json={
            "name": name,
            "audio": base64.b64encode(audio).decode(),
            "text": REF_TEXT,
            "language": "en",
            "replace": True,
        },
    )
    assert r.status_code == 201, r.text
    return r


def speak(client: httpx.Client, voice: str, text: str = SHORT, **extra) -> httpx.Response:
    r = client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "voice": voice, "input": text, "response_format": "wav", "stream": False, **extra},
    )
    assert r.status_code == 200, r.text
    return r


def cluster_view(client: httpx.Client) -> dict:
    return client.get("/cluster").json()["replicas"]


def test_openai_client_and_api_v2_through_the_ingress(cluster, client) -> None:
    oa = OpenAI(base_url=cluster.url + "/v1", api_key="unused", max_retries=0, timeout=180)
    ids = [m.id for m in oa.models.list()]
    assert {"default", *FT_MODELS, "tts-1"} <= set(ids)
    resp = oa.audio.speech.create(model="tts-1", voice="ref", input=TEXT, response_format="wav")
    samples, sr = sf.read(io.BytesIO(resp.read()))
    assert sr == 32000 and samples.ndim == 1 and len(samples) > 3200
    with oa.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="opus"
    ) as stream:
        data = b"".join(stream.iter_bytes())
        assert stream.headers["x-fastsovits-replica"]
    assert data[:4] == b"OggS" and data.count(b"OpusHead") == 1
    # api_v2 with a reference file under --ref-root (travels inline to the replica), streamed WAV
    with client.stream(
        "GET",
        "/tts",
        params={
            "text": TEXT,
            "text_lang": "en",
            "ref_audio_path": "ref.wav",
            "prompt_text": REF_TEXT,
            "prompt_lang": "en",
            "streaming_mode": 1,
        },
    ) as r:
        assert r.status_code == 200 and r.headers["x-fastsovits-cache"] in ("hit", "miss")
        data = b"".join(r.iter_bytes())
    assert data[:4] == b"RIFF" and data[40:44] == b"\xff\xff\xff\xff"
    assert len(sf.read(io.BytesIO(data))[0]) == (len(data) - 44) // 2
    # OpenAI server-sent events end with speech.audio.done
    r = client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "voice": "ref", "input": TEXT, "response_format": "pcm", "stream_format": "sse"},
    )
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1]["type"] == "speech.audio.done" and events[0]["type"] == "speech.audio.delta"
    # typed errors from the replica keep their status; unknown names are 404 at the ingress
    assert client.post("/v1/audio/speech", json={"model": "nope", "voice": "ref", "input": TEXT}).status_code == 404
    assert client.get("/tts", params={"text": TEXT, "text_lang": "xx", "voice": "ref"}).status_code == 400


def test_voices_stay_on_the_replica_that_first_served_them(client) -> None:
    register(client, "va", clip("wav16k_prompt"))
    register(client, "vb", clip("wav32k_b", 0.8))
    homes: dict[str, list[str]] = {"va": [], "vb": []}
    hits = 0
    for _ in range(10):
        for voice in homes:
            r = speak(client, voice)
            homes[voice].append(replica_of(r))
            hits += r.headers["x-fastsovits-cache"] == "hit"
    for voice, seen in homes.items():
        share = seen.count(seen[0]) / len(seen)
        assert share >= 0.9, f"{voice}: {collections.Counter(seen)}"
    assert hits >= 18  # each voice was encoded at registration; its replica keeps the features


def test_skewed_load_spills_and_voices_are_shared(client) -> None:
    r = register(client, "vs", clip("wav32k_b", 0.6))
    registered_on = replica_of(r)
    seen: collections.Counter = collections.Counter()
    misses_elsewhere = 0
    with ThreadPoolExecutor(12) as pool:
        for _ in range(3):  # bursts of one voice: its replica's queue grows past the threshold
            for resp in pool.map(lambda _: speak(client, "vs", TEXT), range(12)):
                seen[replica_of(resp)] += 1
                assert len(pcm(resp)) > 3200
                if replica_of(resp) != registered_on and resp.headers["x-fastsovits-cache"] == "miss":
                    misses_elsewhere += 1
            if len(seen) == 2:
                break
    assert len(seen) == 2, f"a burst of one voice never left replica {registered_on}: {seen}"
    assert seen[registered_on] >= max(seen.values()) * 0.5  # the voice's replica still takes a good share
    assert misses_elsewhere >= 1  # the other replica fetched the voice from the store and encoded it itself


def test_fine_tuned_models_load_only_where_routed_and_never_mix(cluster, client) -> None:
    from fastsovits.api import TTS
    from fastsovits.server.schemas import SpeechRequest, to_params

    body = {"voice": "ref", "input": SHORT, "seed": 7, "top_k": 1, "response_format": "wav", "stream": False}
    served: dict[str, set[str]] = {m: set() for m in FT_MODELS}
    outputs: dict[str, list[np.ndarray]] = {m: [] for m in FT_MODELS}
    for _ in range(3):
        for model in FT_MODELS:
            r = client.post("/v1/audio/speech", json={**body, "model": model})
            assert r.status_code == 200, r.text
            served[model].add(replica_of(r))
            outputs[model].append(pcm(r))
    for model, replicas in served.items():
        assert len(replicas) == 1, f"{model} was loaded on {replicas} under light load"
    time.sleep(2.5)  # a routing-stats period or two
    for replica, info in cluster_view(client).items():
        routed_here = {m for m, rs in served.items() if replica in rs}
        assert set(info["models"]) - {"default"} <= routed_here, (replica, info["models"], served)

    params = to_params(SpeechRequest(model="x", **body), cluster.config)
    direct = {}
    for model in FT_MODELS:
        spec = cluster.models[model]
        with TTS.from_pretrained(
            gpt=spec.gpt, sovits=spec.sovits, hubert_dir=spec.hubert_dir, device="cpu", num_slots=2, max_len=256
        ) as tts:
            ref = tts.load_reference(clip("wav32k_b"), REF_TEXT, "en")
            direct[model] = tts.synthesize(SHORT, ref, "en", params).samples

    def dist(a: np.ndarray, b: np.ndarray) -> float:
        n = min(len(a), len(b))
        return float(np.abs(a[:n] - b[:n]).mean()) + abs(len(a) - len(b)) / max(len(a), len(b))

    assert dist(direct["ft-a"], direct["ft-b"]) > 0.05  # the two models really speak differently
    for model, other in (FT_MODELS, FT_MODELS[::-1]):
        for out in outputs[model]:
            assert dist(out, direct[model]) < 0.01 < dist(out, direct[other]), model


def test_client_disconnect_cancels_the_job_on_the_replica(client) -> None:
    before = sum(r["cancelled"] for r in cluster_view(client).values())
    long_text = " ".join(f"This is sentence number {i} of a long text." for i in range(40))
    with client.stream(
        "POST",
        "/v1/audio/speech",
        json={"model": "tts-1", "voice": "ref", "input": long_text, "response_format": "pcm"},
    ) as r:
        assert r.status_code == 200
        next(r.iter_bytes())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        view = cluster_view(client)
        if sum(r["cancelled"] for r in view.values()) > before and all(r["in_flight"] == 0 for r in view.values()):
            return
        time.sleep(0.5)
    raise AssertionError(f"the replica kept the job after the client left: {view}")


def test_killed_replica_mid_run_loses_no_request(cluster) -> None:
    import ray

    cluster.wait_replicas(2)
    results: list[int] = []
    served: list[str] = []

    def one(i: int) -> int:
        with httpx.Client(base_url=cluster.url, timeout=180) as c:
            r = c.post(
                "/v1/audio/speech",
                json={
                    "model": "tts-1",
                    "voice": "ref",
                    "input": f"Request {i}. {SHORT}",
                    "response_format": "wav",
                    "stream": False,
                },
            )
            ok = r.status_code == 200 and len(pcm(r)) > 3200
            results.append(r.status_code if ok else -r.status_code)
            served.append(r.headers.get("x-fastsovits-replica", ""))
            return r.status_code

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(one, i) for i in range(40)]
        while len(results) < 6:
            time.sleep(0.05)
        victim = served[-1]  # the replica answering now: it holds in-flight requests
        actors = [a for a in ray.util.list_named_actors(all_namespaces=True) if victim in a["name"]]
        assert actors, f"no actor named for replica {victim}"
        ray.kill(ray.get_actor(actors[0]["name"], namespace=actors[0]["namespace"]), no_restart=True)
        codes = [f.result() for f in futures]
    assert codes.count(200) == 40 and results.count(200) == 40, collections.Counter(results)
    back = cluster.wait_replicas(2, exclude={victim})
    assert victim not in back
    with httpx.Client(base_url=cluster.url, timeout=180) as c:
        metrics = c.get("/metrics").text
    assert metric(metrics, "fastsovits_cluster_replica_failures_total", outcome="retried") >= 1
    assert metric(metrics, "fastsovits_cluster_replica_failures_total", outcome="failed") == 0


def test_set_weights_loads_on_a_replica_and_becomes_the_default(client) -> None:
    r = client.get("/set_gpt_weights", params={"weights_path": "tiny_s1_v2.ckpt"})
    assert r.status_code == 200, r.text
    assert client.get("/set_gpt_weights", params={"weights_path": "../secret.ckpt"}).status_code == 403
    models = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    new = [name for name, m in models.items() if m.get("default")]
    assert new == ["default+tiny_s1_v2.ckpt+tiny_s2_v2.pth"]  # named by both of its files
    r = client.get("/tts", params={"text": SHORT, "text_lang": "en", "voice": "ref"})
    assert r.status_code == 200 and len(pcm(r)) > 3200
    assert new[0] in client.get("/cluster").json()["answered"][replica_of(r)]
