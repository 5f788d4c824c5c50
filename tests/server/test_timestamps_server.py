"""``"timestamps": true`` on /v1/audio/speech: the SSE done event and the X-Timestamps header."""

from __future__ import annotations

import base64
import io
import json

import soundfile as sf

from fastsovits.server.speech import TIMESTAMPS_HEADER_MAX, timestamps_header

TEXT = "Hello there, my friend. And a second sentence here."
BODY = {
    "model": "tts-1",
    "voice": "ref",
    "input": TEXT,
    "seed": 3,
    "text_split_method": "cut5",
    "fragment_interval": 0.3,
}


def _check(stamps: list[dict], duration: float) -> None:
    assert [t["index"] for t in stamps] == list(range(len(stamps))) and len(stamps) >= 3
    for a, b in zip(stamps, stamps[1:]):
        assert abs(b["start"] - a["end"] - 0.3) < 2e-3
    assert abs(stamps[-1]["end"] + 0.3 - duration) < 2e-3
    for t in stamps:
        words = t["words"]
        assert words and words[0]["start"] == t["start"] and abs(words[-1]["end"] - t["end"]) < 2e-3
        assert all(a["end"] == b["start"] and b["start"] <= b["end"] for a, b in zip(words, words[1:]))


def _sse(client, body: dict) -> tuple[float, dict]:
    pcm = b""
    done = None
    with client.stream(
        "POST", "/v1/audio/speech", json={**body, "stream_format": "sse", "response_format": "pcm"}
    ) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event["type"] == "speech.audio.delta":
                    pcm += base64.b64decode(event["audio"])
                elif event["type"] == "speech.audio.done":
                    done = event
    assert done is not None
    return len(pcm) / 2 / 24000, done


def test_timestamps_in_the_sse_done_event(client) -> None:
    duration, done = _sse(client, {**BODY, "timestamps": True})
    _check(done["timestamps"], duration)
    assert [w["text"] for w in done["timestamps"][0]["words"]] == ["Hello", "there,"]
    _, plain = _sse(client, BODY)  # without the flag: sentence times only
    assert [(t["start"], t["end"]) for t in plain["timestamps"]] == [(t["start"], t["end"]) for t in done["timestamps"]]
    assert all(t["words"] == [] for t in plain["timestamps"])


def test_timestamps_header_of_a_whole_response(client) -> None:
    r = client.post("/v1/audio/speech", json={**BODY, "timestamps": True, "response_format": "wav"})
    assert r.status_code == 200 and r.headers.get("transfer-encoding") != "chunked"
    samples, sr = sf.read(io.BytesIO(r.content))
    header = json.loads(r.headers["X-Timestamps"])
    assert header["truncated"] is False
    _check(header["sentences"], len(samples) / sr)
    assert "X-Timestamps" not in client.post("/v1/audio/speech", json={**BODY, "response_format": "wav"}).headers


def test_timestamps_header_drops_words_then_sentences_when_too_long() -> None:
    word = {"text": "w" * 20, "start": 0.0, "end": 1.0}
    stamps = [{"index": i, "start": 0.0, "end": 1.0, "words": [word] * 10} for i in range(40)]
    value = json.loads(timestamps_header(stamps)["X-Timestamps"])
    assert value["truncated"] is True and len(value["sentences"]) == 40 and not value["sentences"][0]["words"]
    huge = json.loads(timestamps_header(stamps * 10)["X-Timestamps"])
    assert huge == {"sentences": [], "truncated": True}
    small = timestamps_header(stamps[:1])["X-Timestamps"]
    assert len(small) <= TIMESTAMPS_HEADER_MAX and json.loads(small)["sentences"] == stamps[:1]
    assert timestamps_header([{"index": 0, "start": 0, "end": 1, "words": [{"text": "你", "start": 0, "end": 1}]}])[
        "X-Timestamps"
    ].isascii()
