"""WebSocket ``/v1/audio/speech/stream``: text deltas in, audio frames and sentence events out."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest
import websockets
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from fastsovits.server.app import create_app
from fastsovits.server.config import ModelSpec, ServerConfig
from fastsovits.server.models import ModelRegistry
from tests.server.conftest import QUEUE_LIMIT, metric
from tests.server.test_concurrency import wait_idle

ROUTE = "/v1/audio/speech/stream"
TEXT = "Hello there, my friend. How are you today? I am fine, thanks."
WAIT_S = 120  # waiting for the server gives up after this, so a broken stream cannot hang the test
CONFIG = {"type": "session.config", "voice": "ref", "response_format": "wav", "seed": 7, "text_split_method": "cut5"}


def deltas(text: str) -> list[str]:
    out, i, k = [], 0, 1
    while i < len(text):
        out.append(text[i : i + k])
        i, k = i + k, 3 - k
    return out


def delta(text: str) -> str:
    return json.dumps({"type": "input.text.delta", "delta": text})


DONE = json.dumps({"type": "input.text.done"})


async def _recv(ws) -> str | bytes:
    return await asyncio.wait_for(ws.recv(), WAIT_S)


async def _collect(ws) -> tuple[list[dict], bytes, list[str]]:
    """Events, audio bytes, and the order of kinds ("event type" or "audio") until the server closes."""
    events, audio, order = [], b"", []
    try:
        while True:
            msg = await _recv(ws)
            if isinstance(msg, bytes):
                audio += msg
                order.append("audio")
            else:
                events.append(json.loads(msg))
                order.append(events[-1]["type"])
    except websockets.ConnectionClosed:
        pass
    return events, audio, order


def ws_url(server) -> str:
    return server.url.replace("http://", "ws://") + ROUTE


def test_ws_audio_equals_one_shot_with_the_same_seeds(server, client) -> None:
    async def run():
        async with websockets.connect(ws_url(server)) as ws:
            await ws.send(json.dumps(CONFIG))
            for d in deltas(TEXT):
                await ws.send(delta(d))
            await ws.send(DONE)
            return (*await _collect(ws), ws.close_code)

    events, audio, order, code = asyncio.run(run())
    assert code == 1000 and events[0]["type"] == "session.created" and events[-1]["type"] == "done"
    assert events[0]["sample_rate"] == 32000 and audio[:4] == b"RIFF"
    starts = [e for e in events if e["type"] == "sentence.start"]
    dones = [e for e in events if e["type"] == "sentence.done"]
    assert [e["index"] for e in starts] == [e["index"] for e in dones] == list(range(5))
    assert [e["text"] for e in starts] == [e["text"] for e in dones]
    # frames of sentence i come between its start and done events
    kinds = [k for k in order if k in ("sentence.start", "audio", "sentence.done")]
    assert kinds[1] == "audio" and kinds.count("sentence.start") == 5
    assert events[-1]["usage"]["sentences"] == 5 and events[-1]["usage"]["input_characters"] == len(TEXT)

    body = {
        "model": "tts-1",
        "voice": "ref",
        "input": TEXT,
        "response_format": "wav",
        "seed": 7,
        "text_split_method": "cut5",
        "stream_format": "sse",
    }
    r = client.post("/v1/audio/speech", json=body)
    assert r.status_code == 200, r.text
    sse = [json.loads(b[len("data: ") :]) for b in r.text.split("\n\n") if b.startswith("data: ")]
    one_shot = b"".join(base64.b64decode(e["audio"]) for e in sse if e["type"] == "speech.audio.delta")
    assert [s["text"] for s in sse[-1]["sentences"]] == [e["text"] for e in dones]
    ours, theirs = np.frombuffer(audio[44:], "<i2"), np.frombuffer(one_shot[44:], "<i2")
    assert ours.shape == theirs.shape and ours.size > 32000
    assert int(np.abs(ours.astype(np.int32) - theirs).max()) <= 4  # batching may move a sample by a few LSB


def test_ws_first_audio_arrives_before_the_text_is_done(server) -> None:
    async def run() -> list[str]:
        order = []
        async with websockets.connect(ws_url(server)) as ws:
            await ws.send(json.dumps({**CONFIG, "response_format": "pcm"}))
            for d in deltas("The first sentence is here. And"):
                await ws.send(delta(d))
            order.append("first sentence sent")
            while not isinstance(await _recv(ws), bytes):  # times out (fails) if no audio comes before the rest
                pass
            order.append("audio received")
            for d in deltas(" then the rest follows."):
                await ws.send(delta(d))
            await ws.send(DONE)
            order.append("text done")
            events, _, _ = await _collect(ws)
            order.append(events[-1]["type"])
        return order

    assert asyncio.run(run()) == ["first sentence sent", "audio received", "text done", "done"]


BAD = [
    ([b"\x00binary"], "InvalidParameter"),
    (["not json"], "InvalidParameter"),
    ([delta("text before the config")], "InvalidParameter"),
    ([json.dumps({**CONFIG, "voice": "nobody"})], "NotFound"),
    ([json.dumps({**CONFIG, "response_format": "mp3"})], "InvalidParameter"),
    ([json.dumps({**CONFIG, "top_k": 0})], "InvalidParameter"),
    ([json.dumps({**CONFIG, "language": "xx"})], "UnsupportedLanguage"),
    ([json.dumps(CONFIG), json.dumps({"type": "input.audio"})], "InvalidParameter"),
    ([json.dumps(CONFIG), json.dumps({"type": "input.text.delta", "delta": 5})], "InvalidParameter"),
    ([json.dumps(CONFIG), delta("x" * 5000)], "TextTooLong"),  # one delta over the limit
    ([json.dumps(CONFIG), delta("Word word. " * 200)], "TextTooLong"),  # over the server's --max-text-chars
    ([json.dumps(CONFIG), DONE], "EmptyText"),
]


@pytest.mark.parametrize(("messages", "kind"), BAD)
def test_ws_bad_messages_get_an_error_event_and_a_clean_close(server, client, messages, kind) -> None:
    async def run():
        async with websockets.connect(ws_url(server)) as ws:
            for m in messages:
                await ws.send(m)
            return (*await _collect(ws), ws.close_code)

    before = client.get("/metrics").text
    events, audio, _, code = asyncio.run(run())
    errors = [e for e in events if e["type"] == "error"]
    assert len(errors) == 1 and errors[0]["error"]["type"] == kind, events
    assert 400 <= errors[0]["error"]["code"] < 500 and errors[0]["error"]["message"]
    assert code == 1008 and not audio
    after = wait_idle(client)
    decoded = metric(after, "fastsovits_sentences_total") - metric(before, "fastsovits_sentences_total")
    assert decoded == 0  # refused before any sentence was generated


def test_ws_disconnect_cancels_the_work(server, client) -> None:
    text = " ".join(f"Sentence number {i} of the story." for i in range(30))

    async def run() -> None:
        async with websockets.connect(ws_url(server)) as ws:
            await ws.send(json.dumps({**CONFIG, "response_format": "pcm"}))
            await ws.send(delta(text))
            while not isinstance(await _recv(ws), bytes):
                pass
        # leaving the block closes the socket with the text still unfinished

    before = wait_idle(client)
    asyncio.run(run())
    after = wait_idle(client)
    cancelled = metric(after, "fastsovits_requests_cancelled_total", reason="disconnect") - metric(
        before, "fastsovits_requests_cancelled_total", reason="disconnect"
    )
    decoded = metric(after, "fastsovits_sentences_total") - metric(before, "fastsovits_sentences_total")
    assert cancelled == 1 and decoded < 30


def test_ws_api_key_is_checked_before_the_upgrade() -> None:
    config = ServerConfig(api_key="s3cret")
    app = create_app(ModelRegistry(ModelSpec("default", path="/nonexistent"), config), config)
    c = TestClient(app)  # no lifespan: nothing is loaded, the key check and message parsing need no model
    with pytest.raises(WebSocketDenialResponse) as denied, c.websocket_connect(ROUTE):
        pass
    assert denied.value.status_code == 401 and denied.value.json()["error"]["type"] == "Unauthorized"
    with pytest.raises(WebSocketDenialResponse), c.websocket_connect(ROUTE, headers={"Authorization": "Bearer no"}):
        pass
    with c.websocket_connect(ROUTE, headers={"Authorization": "Bearer s3cret"}) as ws:
        ws.send_text("not json")
        event = ws.receive_json()
        assert event["type"] == "error" and event["error"]["type"] == "InvalidParameter"
        assert ws.receive()["code"] == 1008


def test_ws_sessions_count_against_the_queue_limit(server, client) -> None:
    async def run() -> tuple[list[dict], int | None]:
        sockets = []
        try:
            for _ in range(QUEUE_LIMIT):  # admitted sessions that have not sent text yet
                ws = await websockets.connect(ws_url(server))
                sockets.append(ws)
                await ws.send(json.dumps(CONFIG))
                assert json.loads(await _recv(ws))["type"] == "session.created"
            async with websockets.connect(ws_url(server)) as extra:
                await extra.send(json.dumps(CONFIG))
                events, audio, _ = await _collect(extra)
                return events, extra.close_code
        finally:
            for ws in sockets:
                await ws.close()

    wait_idle(client)
    events, code = asyncio.run(run())
    assert [e["error"]["type"] for e in events] == ["CapacityError"] and events[0]["error"]["code"] == 503
    assert events[0]["error"]["retry_after"] >= 1
    assert code == 1013
    wait_idle(client)  # the closed sessions left the queue
