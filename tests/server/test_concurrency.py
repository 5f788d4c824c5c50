"""Many clients at once: they share batches; a disconnect frees its slots; beyond the queue limit, 503."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.server.conftest import QUEUE_LIMIT, metric

LONG = " ".join(f"Sentence number {i} of the story." for i in range(30))


def speech(text: str, **extra) -> dict:
    return {"model": "tts-1", "input": text, "voice": "ref", "response_format": "wav", "stream": False, **extra}


async def _burst(url: str, bodies: list[dict]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        return await asyncio.gather(*(c.post("/v1/audio/speech", json=b) for b in bodies))


def wait_idle(client: httpx.Client, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = client.get("/metrics").text
        if (
            metric(text, "fastsovits_requests_in_flight") == 0
            and metric(text, "fastsovits_active_rows") == 0
            and metric(text, "fastsovits_queue_depth") == 0
        ):
            return text
        assert time.monotonic() < deadline, "the server did not go idle"
        time.sleep(0.2)


def test_32_concurrent_requests_share_batches(server, client) -> None:
    before = wait_idle(client)
    bodies = [speech(f"Request number {i} says hello.", seed=i, max_new_tokens=12) for i in range(32)]
    responses = asyncio.run(_burst(server.url, bodies))
    assert [r.status_code for r in responses] == [200] * 32, [r.text[:200] for r in responses if r.status_code != 200]
    assert all(r.content[:4] == b"RIFF" and len(r.content) > 44 for r in responses)
    after = client.get("/metrics").text
    steps = metric(after, "fastsovits_batch_size_count") - metric(before, "fastsovits_batch_size_count")
    single = metric(after, "fastsovits_batch_size_bucket", le="1.0") - metric(
        before, "fastsovits_batch_size_bucket", le="1.0"
    )
    assert steps > 0 and single < steps  # some decode steps ran more than one row
    rows = metric(after, "fastsovits_batch_size_sum") - metric(before, "fastsovits_batch_size_sum")
    assert rows / steps > 1.0
    grew = {
        stage: metric(after, "fastsovits_stage_busy_seconds_total", stage=stage)
        - metric(before, "fastsovits_stage_busy_seconds_total", stage=stage)
        for stage in ("t2s", "prefill", "decode")
    }
    assert all(v > 0 for v in grew.values()), grew  # the engine's busy time per stage grew with the work
    assert grew["prefill"] < grew["t2s"]  # prefill is a part of the T2S stage


def test_disconnect_mid_stream_frees_its_slots(server, client) -> None:
    before = wait_idle(client)
    with client.stream(
        "GET",
        "/tts",
        params={
            "text": LONG,
            "text_lang": "en",
            "voice": "ref",
            "streaming_mode": 1,
            "media_type": "raw",
            "text_split_method": "cut5",
        },
    ) as r:
        assert r.status_code == 200
        next(r.iter_raw())  # the first chunk arrived; now hang up
    after = wait_idle(client)
    cancelled = metric(after, "fastsovits_requests_cancelled_total", reason="disconnect") - metric(
        before, "fastsovits_requests_cancelled_total", reason="disconnect"
    )
    assert cancelled == 1
    sentences = metric(after, "fastsovits_sentences_total") - metric(before, "fastsovits_sentences_total")
    assert sentences < 30  # the rest of the job was aborted, not decoded


def test_full_queue_gives_503_with_retry_after(server, client) -> None:
    wait_idle(client)
    text = "A request that keeps the engine busy for a little while."
    bodies = [speech(text, seed=i, max_new_tokens=24) for i in range(QUEUE_LIMIT * 2)]
    responses = asyncio.run(_burst(server.url, bodies))
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 503}
    rejected = [r for r in responses if r.status_code == 503]
    assert rejected and codes.count(200) >= QUEUE_LIMIT
    assert all(r.headers["Retry-After"].isdigit() and r.json()["error"]["type"] == "CapacityError" for r in rejected)
    assert client.get("/healthz").status_code == 200
    assert metric(wait_idle(client), "fastsovits_requests_rejected_total") >= len(rejected)
