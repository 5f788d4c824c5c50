"""Voices survive a restart of the server process; names stay unique under concurrent uploads; bad uploads
are refused before anything is stored."""

from __future__ import annotations

import base64
import threading

import httpx

from tests.server.conftest import REF_TEXT, Server, metric, reference_clip, wav_bytes
from tests.voices.conftest import audio_bytes

SPEECH = {"model": "tts-1", "input": "Hello again.", "response_format": "wav", "stream": False, "seed": 3, "top_k": 1}


def upload(url: str, name: str, clip: bytes, **fields) -> httpx.Response:
    data = {"name": name, "text": REF_TEXT, "language": "en", **fields}
    return httpx.post(
        url + "/v1/audio/voices", files={"audio_sample": ("ref.wav", clip, "audio/wav")}, data=data, timeout=120
    )


def features_metric(url: str, source: str) -> float:
    return metric(httpx.get(url + "/metrics").text, "fastsovits_voice_features_total", source=source)


def test_voice_survives_restart_then_delete(tmp_path) -> None:
    data = tmp_path / "data"
    clip = wav_bytes(reference_clip(), 32000)
    srv = Server(tmp_path, [], data_dir=data)
    try:
        srv.wait_ready()
        r = upload(srv.url, "kept", clip)
        assert r.status_code == 201 and r.json()["object"] == "audio.voice" and r.json()["id"] == "kept"
        before = httpx.post(srv.url + "/v1/audio/speech", json={**SPEECH, "voice": "kept"}, timeout=120)
        assert before.status_code == 200 and before.content[:4] == b"RIFF"
    finally:
        srv.stop()
    srv = Server(tmp_path, [], data_dir=data)  # a new process over the same data folder
    try:
        srv.wait_ready()
        listed = httpx.get(srv.url + "/v1/audio/voices").json()["data"]
        assert [(v["name"], v["text"], v["language"]) for v in listed] == [("kept", REF_TEXT, "en")]
        assert httpx.get(srv.url + "/v1/voices/kept").json()["name"] == "kept"  # the old route, the same store
        after = httpx.post(srv.url + "/v1/audio/speech", json={**SPEECH, "voice": "kept"}, timeout=120)
        assert after.status_code == 200 and after.content == before.content  # same features, same seed
        assert features_metric(srv.url, "stored") == 1 and features_metric(srv.url, "computed") == 0
        r = httpx.delete(srv.url + "/v1/audio/voices/kept")
        assert r.status_code == 200 and r.json() == {"id": "kept", "object": "audio.voice", "deleted": True}
        assert httpx.get(srv.url + "/v1/audio/voices/kept").status_code == 404
        r = httpx.post(srv.url + "/v1/audio/speech", json={**SPEECH, "voice": "kept"}, timeout=120)
        assert r.status_code == 404
    finally:
        srv.stop()
    srv = Server(tmp_path, [], data_dir=data)
    try:
        srv.wait_ready()
        assert httpx.get(srv.url + "/v1/audio/voices").json()["data"] == []
    finally:
        srv.stop()


def test_two_concurrent_uploads_of_one_name(server) -> None:
    clip = wav_bytes(reference_clip(), 32000)
    statuses: list[int] = []
    barrier = threading.Barrier(2)

    def go() -> None:
        barrier.wait()
        statuses.append(upload(server.url, "twice", clip).status_code)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201, 409]
    assert httpx.delete(server.url + "/v1/audio/voices/twice").status_code == 200


def test_bad_uploads_are_refused_and_nothing_is_stored(server) -> None:
    ref = wav_bytes(reference_clip(), 32000)
    hour = audio_bytes(3600, 16000, "FLAC", silent=True)
    before = features_metric(server.url, "computed")
    cases = [
        (upload(server.url, "long-text", ref, text="x" * 501), 400, "TextTooLong"),
        (upload(server.url, "long-ref", audio_bytes(10.05)), 400, "ReferenceAudioError"),
        (upload(server.url, "bad-lang", ref, language="xx"), 400, "UnsupportedLanguage"),
        (upload(server.url, "bad/name", ref), 400, "InvalidParameter"),
        (upload(server.url, "prompt-type", ref, type="prompt"), 400, "InvalidParameter"),
        (
            httpx.post(
                server.url + "/v1/audio/voices",
                data={"name": "many", "text": REF_TEXT, "language": "en"},
                files=[("audio", ("r.wav", ref))] + [("aux", (f"a{i}.wav", ref)) for i in range(9)],
            ),
            400,
            "InvalidParameter",
        ),
        (
            httpx.post(
                server.url + "/v1/audio/voices",
                json={"name": "many-json", "audio": base64.b64encode(b"x").decode(), "aux": ["!"] * 9},
            ),
            400,
            "InvalidParameter",
        ),
        (
            httpx.post(
                server.url + "/v1/audio/voices",
                files={"audio": ("r.wav", ref), "aux": ("h.flac", hour)},
                data={"name": "hour"},
            ),
            413,
            "ClipTooLong",
        ),
        (upload(server.url, "too-long-for-cache", ref, text="word " * 99), 400, "TextTooLong"),
    ]
    for r, status, kind in cases:
        assert r.status_code == status and r.json()["error"]["type"] == kind, r.text
        assert "BytesIO" not in r.text and "/tmp" not in r.text
    assert "the voice's text" in cases[-1][0].json()["error"]["message"]
    names = {v["name"] for v in httpx.get(server.url + "/v1/audio/voices").json()["data"]}
    assert not names & {"long-text", "long-ref", "bad-lang", "many", "many-json", "hour", "too-long-for-cache"}
    assert features_metric(server.url, "computed") == before
