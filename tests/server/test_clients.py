"""Clients as they exist: the official ``openai`` package, api_v2 GET/POST, streamed WAV/Ogg, voices."""

from __future__ import annotations

import base64
import io

import av
import soundfile as sf
from openai import OpenAI

from tests.server.conftest import REF_TEXT, reference_clip, wav_bytes

TEXT = "Hello there. How are you today?"


def decode_av(data: bytes) -> tuple[int, int]:
    with av.open(io.BytesIO(data)) as c:
        frames = list(c.decode(audio=0))
        return sum(f.samples for f in frames), frames[0].sample_rate


def test_openai_client_unmodified(server) -> None:
    client = OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)
    ids = [m.id for m in client.models.list()]
    assert "default" in ids and "tts-1" in ids
    resp = client.audio.speech.create(model="tts-1", voice="ref", input=TEXT, response_format="wav")
    samples, sr = sf.read(io.BytesIO(resp.read()))
    assert sr == 32000 and samples.ndim == 1 and len(samples) > 3200
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="mp3"
    ) as stream:
        data = b"".join(stream.iter_bytes())
    n, rate = decode_av(data)
    assert n > 3200 and rate == 32000
    pcm = client.audio.speech.create(
        model="tts-1",
        voice="ref",
        input=TEXT,
        response_format="pcm",
        extra_body={"seed": 3, "top_k": 5, "text_split_method": "cut0"},
    )
    assert len(pcm.read()) % 2 == 0


def test_api_v2_get_as_official_clients_send_it(client) -> None:
    r = client.get(
        "/tts",
        params={
            "text": TEXT,
            "text_lang": "EN",
            "ref_audio_path": "ref.wav",
            "prompt_lang": "en",
            "prompt_text": REF_TEXT,
            "text_split_method": "cut5",
            "batch_size": "1",
            "media_type": "wav",
            "streaming_mode": "false",
        },
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/wav"
    samples, sr = sf.read(io.BytesIO(r.content))
    assert sr == 32000 and len(samples) > 3200


def test_api_v2_post_with_every_field(client) -> None:
    body = {
        "text": TEXT,
        "text_lang": "en",
        "ref_audio_path": "ref.wav",
        "aux_ref_audio_paths": [],
        "prompt_text": REF_TEXT,
        "prompt_lang": "en",
        "top_k": 5,
        "top_p": 1,
        "temperature": 1,
        "text_split_method": "cut5",
        "batch_size": 1,
        "batch_threshold": 0.75,
        "split_bucket": True,
        "speed_factor": 1.0,
        "fragment_interval": 0.3,
        "seed": -1,
        "media_type": "raw",
        "streaming_mode": False,
        "parallel_infer": True,
        "repetition_penalty": 1.35,
        "sample_steps": 32,
        "super_sampling": False,
        "overlap_length": 2,
        "min_chunk_length": 16,
    }
    r = client.post("/tts", json=body)
    assert r.status_code == 200, r.text
    assert len(r.content) > 6400 and len(r.content) % 2 == 0
    r = client.post("/tts", json={**body, "media_type": "aac"})
    assert r.status_code == 200 and decode_av(r.content)[0] > 3200


def test_streamed_wav_and_ogg_decode(client) -> None:
    text = "One sentence here. Then a second one. And a third to finish."
    for mode in (1, 2):
        with client.stream(
            "GET",
            "/tts",
            params={"text": text, "text_lang": "en", "voice": "ref", "streaming_mode": mode, "media_type": "wav"},
        ) as r:
            assert r.status_code == 200
            parts = list(r.iter_bytes())
        data = b"".join(parts)
        assert data[:4] == b"RIFF" and data[40:44] == b"\xff\xff\xff\xff"  # unknown-length header
        samples, sr = sf.read(io.BytesIO(data))
        assert sr == 32000 and len(samples) == (len(data) - 44) // 2
    with client.stream(
        "GET",
        "/tts",
        params={"text": text, "text_lang": "en", "voice": "ref", "streaming_mode": 1, "media_type": "ogg"},
    ) as r:
        assert r.headers["x-sample-rate"] == "48000"
        data = b"".join(r.iter_bytes())
    assert data.count(b"OpusHead") == 1  # one continuous Ogg/Opus stream, not one file per chunk
    n, rate = decode_av(data)
    samples, sr = sf.read(io.BytesIO(data))
    assert rate == sr == 48000 and n > 4800 and abs(len(samples) - n) <= 960


def test_voices_create_use_delete(client) -> None:
    clip = wav_bytes(reference_clip(), 32000)
    r = client.post(
        "/v1/voices",
        json={"name": "json-voice", "audio": base64.b64encode(clip).decode(), "text": REF_TEXT, "language": "en"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "json-voice"
    assert (
        client.post("/v1/voices", json={"name": "json-voice", "audio": base64.b64encode(clip).decode()}).status_code
        == 409
    )
    r = client.post(
        "/v1/voices", files={"audio": ("ref.wav", clip, "audio/wav")}, data={"name": "form-voice"}
    )  # no text: a reference-free (style only) voice
    assert r.status_code == 201, r.text
    names = [v["name"] for v in client.get("/v1/voices").json()["data"]]
    assert {"ref", "json-voice", "form-voice"} <= set(names)
    for voice in ("json-voice", "form-voice"):
        r = client.post(
            "/v1/audio/speech", json={"model": "tts-1", "input": TEXT, "voice": voice, "response_format": "flac"}
        )
        assert r.status_code == 200 and sf.read(io.BytesIO(r.content))[1] == 32000
    assert client.delete("/v1/voices/json-voice").json()["deleted"] is True
    r = client.post("/v1/audio/speech", json={"model": "tts-1", "input": TEXT, "voice": "json-voice"})
    assert r.status_code == 404 and r.json()["error"]["type"] == "NotFound"


def test_set_refer_audio_changes_only_the_default(client) -> None:
    assert client.get("/set_refer_audio", params={"refer_audio_path": "ref.wav"}).json() == {"message": "success"}
    r = client.get("/tts", params={"text": TEXT, "text_lang": "en"})  # no reference named: the server default
    assert r.status_code == 200
    r = client.get("/set_gpt_weights", params={"weights_path": "../io/audio_inputs.npz"})
    assert r.status_code == 403 and r.json()["error"]["type"] == "ForbiddenPath"
    assert client.get("/set_gpt_weights", params={"weights_path": "nope.ckpt"}).status_code == 404
    assert client.get("/control", params={"command": "exit"}).status_code == 403
    r = client.get("/control")  # the permission is checked before anything the client sent
    assert r.status_code == 403 and r.json()["error"] == {
        "message": r.json()["message"],
        "type": "Forbidden",
        "code": 403,
    }


def test_set_gpt_weights_loads_a_new_default_model(client) -> None:
    r = client.get("/set_gpt_weights", params={"weights_path": "tiny_s1_v2.ckpt"})
    assert r.json() == {"message": "success"}
    models = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    new = [m for m in models.values() if m.get("default")]
    assert len(new) == 1 and new[0]["id"] != "default" and new[0]["resident"]
    r = client.get("/tts", params={"text": TEXT, "text_lang": "en", "voice": "ref"})
    assert r.status_code == 200 and r.content[:4] == b"RIFF"
    r = client.post(
        "/v1/audio/speech", json={"model": "default", "input": TEXT, "voice": "ref", "response_format": "wav"}
    )  # the first model is still named
    assert r.status_code == 200


def test_openai_sse_stream_format(client) -> None:
    """stream_format=sse: base64 audio deltas, then a done event; the audio equals the plain stream's."""
    import json

    body = {
        "model": "tts-1",
        "voice": "ref",
        "input": TEXT,
        "response_format": "pcm",
        "seed": 11,
        "text_split_method": "cut0",
    }
    plain = client.post("/v1/audio/speech", json=body)
    assert plain.status_code == 200, plain.text
    r = client.post("/v1/audio/speech", json={**body, "stream_format": "sse"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(block[len("data: ") :]) for block in r.text.split("\n\n") if block.startswith("data: ")]
    assert [e["type"] for e in events][-1] == "speech.audio.done"
    assert {e["type"] for e in events[:-1]} == {"speech.audio.delta"}
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert audio == plain.content and len(audio) > 3200
    assert events[-1]["usage"]["output_tokens"] > 0
    bad = client.post("/v1/audio/speech", json={**body, "stream_format": "sse", "stream": False})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "InvalidParameter"
