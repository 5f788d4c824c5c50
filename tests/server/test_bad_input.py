"""Bad input gives a typed 4xx JSON error, and the server keeps serving."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from tests.server.conftest import REF_TEXT, reference_clip, wav_bytes

OK = {"text": "Hello there.", "text_lang": "en", "voice": "ref"}


@pytest.mark.parametrize(
    ("params", "status", "kind"),
    [
        ({**OK, "text": ""}, 400, "EmptyText"),
        ({**OK, "text": "   "}, 400, "EmptyText"),
        ({**OK, "text_lang": "xx"}, 400, "UnsupportedLanguage"),
        ({**OK, "voice": "nobody"}, 404, "NotFound"),
        ({**OK, "top_k": 0}, 400, "InvalidParameter"),
        ({**OK, "speed_factor": 9}, 400, "InvalidParameter"),
        ({**OK, "media_type": "mkv"}, 400, "InvalidParameter"),
        ({**OK, "streaming_mode": 7}, 400, "InvalidParameter"),
        ({**OK, "text": "word " * 500}, 400, "TextTooLong"),
        (
            {"text": "Hello.", "text_lang": "en", "ref_audio_path": "../secret.txt", "prompt_lang": "en"},
            403,
            "ForbiddenPath",
        ),
        ({"text": "Hello.", "text_lang": "en", "ref_audio_path": "/etc/passwd"}, 403, "ForbiddenPath"),
        ({"text": "Hello.", "text_lang": "en", "ref_audio_path": "missing.wav"}, 404, "NotFound"),
    ],
)
def test_tts_rejects(client, params, status, kind) -> None:
    r = client.get("/tts", params=params)
    assert r.status_code == status, r.text
    assert r.json()["error"]["type"] == kind and r.json()["message"]


def _upload(client, audio: bytes, name: str = "bad"):
    return client.post(
        "/v1/voices",
        files={"audio": ("a.wav", audio, "audio/wav")},
        data={"name": name, "text": REF_TEXT, "language": "en"},
    )


@pytest.mark.parametrize(
    ("audio", "status"),
    [
        (b"RIFF\x00\x00garbage" * 10, 400),  # corrupt
        (wav_bytes(np.stack([reference_clip()] * 2, axis=1), 32000), 400),  # stereo
        (wav_bytes(reference_clip()[::4], 8000), 400),  # odd rate (8 kHz)
        (wav_bytes(reference_clip()[:32000], 32000), 400),  # 1 s: too short
        (wav_bytes(np.tile(reference_clip(), 4)[: 32000 * 12], 32000), 400),  # 12 s: over the 10 s rule
        (wav_bytes(np.zeros(16000 * 25, np.float32), 16000), 413),  # 25 s: over --max-audio-seconds
    ],
)
def test_bad_reference_audio(client, audio, status) -> None:
    r = _upload(client, audio)
    assert r.status_code == status, r.text
    assert r.json()["error"]["type"] in ("ReferenceAudioError", "ClipTooLong")


def test_other_bad_requests(client) -> None:
    speech = {"model": "tts-1", "input": "Hi.", "voice": "ref"}
    cases = [
        (client.post("/v1/audio/speech", json={**speech, "speed": 10}), 400),
        (client.post("/v1/audio/speech", json={**speech, "response_format": "ogg"}), 400),
        (client.post("/v1/audio/speech", json={**speech, "model": "no-such-model"}), 404),
        (client.post("/v1/audio/speech", json={**speech, "input": ""}), 400),
        (client.post("/v1/audio/speech", content=b"{not json", headers={"content-type": "application/json"}), 400),
        (client.post("/tts", json={"text": "Hi.", "text_lang": "en", "voice": "ref", "top_p": 2}), 400),
        (client.post("/v1/voices", json={"name": "x", "audio": "!!!not base64"}), 400),
        (client.post("/v1/voices", json={"name": "../evil", "audio": base64.b64encode(b"x").decode()}), 400),
        (client.post("/v1/voices", content=b"x" * (3 * 2**20), headers={"content-type": "application/json"}), 413),
        (client.delete("/v1/voices/nobody"), 404),
    ]
    for response, status in cases:
        assert response.status_code == status, (status, response.text)
        assert "type" in response.json()["error"]
    r = client.get("/tts", params=OK)
    assert r.status_code == 200 and r.content[:4] == b"RIFF"  # still serving
