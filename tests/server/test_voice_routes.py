"""Voice routes in-process: every bound refuses before the work (spies on decoding and encoding), creation
waits its turn under the admission limit and the timeout, and a new app over the same store reads the
features back without encoding."""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
import torch
from fastapi.testclient import TestClient

from fastsovits.server import routes_voices
from fastsovits.server.app import create_app
from fastsovits.server.config import ModelSpec, ServerConfig
from fastsovits.server.models import ModelRegistry
from fastsovits.server.voice_refs import StoredVoiceService
from fastsovits.voices.validate import VoiceLimits
from tests.server.conftest import REF, REF_TEXT, reference_clip, wav_bytes
from tests.voices.conftest import audio_bytes

SPEC = ModelSpec(
    "default",
    gpt=str(REF / "tiny/tiny_s1_v2.ckpt"),
    sovits=str(REF / "tiny/tiny_s2_v2.pth"),
    hubert_dir=str(REF / "tiny/tiny_hubert"),
)
CLIP = wav_bytes(reference_clip(), 32000)
LIMITS = VoiceLimits()


@contextmanager
def app_client(data_dir, **config):
    cfg = ServerConfig(device="cpu", num_slots=2, max_len=256, max_new_tokens=30, data_dir=data_dir, **config)
    with TestClient(create_app(ModelRegistry(SPEC, cfg), cfg)) as c:
        yield c


def form(name: str, clip: bytes = CLIP, aux: tuple[bytes, ...] = (), **fields):
    files = [("audio", ("ref.wav", clip, "audio/wav"))] + [
        ("aux", (f"a{i}", a, "audio/flac")) for i, a in enumerate(aux)
    ]
    return {"files": files, "data": {"name": name, "text": REF_TEXT, "language": "en", **fields}}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with app_client(tmp_path_factory.mktemp("data")) as c:
        yield c


@pytest.fixture()
def spies(monkeypatch):
    calls = {"decode": 0, "encode": 0}
    decode, encode = routes_voices.decode_clips, StoredVoiceService.encode_new

    def counting_decode(*args):
        calls["decode"] += 1
        return decode(*args)

    def counting_encode(self, *args):
        calls["encode"] += 1
        return encode(self, *args)

    monkeypatch.setattr(routes_voices, "decode_clips", counting_decode)
    monkeypatch.setattr(StoredVoiceService, "encode_new", counting_encode)
    return calls


def test_each_bound_refuses_before_the_work(client, spies) -> None:
    quiet = audio_bytes(LIMITS.max_clip_seconds + 0.05, 16000, "FLAC", silent=True)
    part = audio_bytes(LIMITS.max_aux_seconds / 4 + 0.05, 16000, "FLAC", silent=True)
    over = [
        (form("n1", aux=(audio_bytes(1.0, 16000, "FLAC"),) * (LIMITS.max_aux_clips + 1)), 400),  # clip count
        (form("n2", aux=(quiet,)), 413),  # one auxiliary clip's duration
        (form("n3", aux=(part,) * 4), 413),  # the auxiliary clips' total duration
        (form("n4", clip=audio_bytes(10.05)), 400),  # the reference's duration
        (form("n5", text="x" * (LIMITS.max_text_chars + 1)), 400),  # the text's length
    ]
    for body, status in over:
        r = client.post("/v1/audio/voices", **body)
        assert r.status_code == status, r.text
    r = client.post("/v1/audio/voices", json={"name": "n6", "audio": "!", "aux": ["!"] * (LIMITS.max_aux_clips + 1)})
    assert r.status_code == 400 and "auxiliary clips" in r.json()["error"]["message"]  # before any base64 decode
    assert spies == {"decode": 0, "encode": 0}
    assert client.get("/v1/audio/voices").json()["data"] == []
    ok = client.post("/v1/audio/voices", **form("at-the-bounds", aux=(audio_bytes(1.0, 16000, "FLAC"),) * 8))
    assert ok.status_code == 201 and ok.json()["aux"] == 8 and spies == {"decode": 1, "encode": 1}
    assert client.delete("/v1/voices/at-the-bounds").json()["deleted"] is True


def test_creation_goes_through_admission(client, spies) -> None:
    admission = client.app.state.fastsovits.service.admission
    admission.count = admission.limit
    try:
        r = client.post("/v1/audio/voices", **form("queued"))
    finally:
        admission.count = 0
    assert r.status_code == 503 and r.headers["retry-after"] and r.json()["error"]["type"] == "CapacityError"
    assert spies == {"decode": 0, "encode": 0}
    assert client.get("/v1/audio/voices/queued").status_code == 404


def test_creation_times_out_and_stores_nothing(tmp_path, monkeypatch) -> None:
    encode = StoredVoiceService.encode_new

    def slow(self, *args):
        time.sleep(1.5)
        return encode(self, *args)

    monkeypatch.setattr(StoredVoiceService, "encode_new", slow)
    with app_client(tmp_path, request_timeout_s=0.5) as c:
        r = c.post("/v1/audio/voices", **form("slow"))
        assert r.status_code == 504 and r.json()["error"]["type"] == "RequestTimeout"
        admission = c.app.state.fastsovits.service.admission
        assert admission.count == 1  # the encoding still runs: its slot is held until it stops
        deadline = time.monotonic() + 30
        while admission.count and time.monotonic() < deadline:
            c.get("/healthz")
            time.sleep(0.1)
        assert admission.count == 0
        assert c.get("/v1/audio/voices/slow").status_code == 404


def test_features_come_back_without_encoding(tmp_path, monkeypatch) -> None:
    with app_client(tmp_path) as c:
        assert c.post("/v1/audio/voices", **form("again")).status_code == 201
        service = c.app.state.fastsovits.service
        (created,) = service._refs.values()
    calls = []
    monkeypatch.setattr(StoredVoiceService, "encode_new", lambda *a: calls.append(a))
    with app_client(tmp_path) as c:
        body = {"model": "tts-1", "input": "Hello.", "voice": "again", "response_format": "wav", "stream": False}
        assert c.post("/v1/audio/speech", json=body).status_code == 200
        (loaded,) = c.app.state.fastsovits.service._refs.values()
    assert calls == []
    for field in ("prompt_semantic", "prompt_phones", "prompt_bert", "ge"):
        assert torch.equal(getattr(created, field), getattr(loaded, field))


def test_replace_and_conflicts(client) -> None:
    assert client.post("/v1/voices", **form("dup")).status_code == 201
    r = client.post("/v1/audio/voices", **form("dup"))
    assert r.status_code == 409 and r.json()["error"]["type"] == "VoiceExists"
    r = client.post("/v1/audio/voices", **form("dup", text="A new text.", replace="true"))
    assert r.status_code == 201 and client.get("/v1/audio/voices/dup").json()["text"] == "A new text."
    assert client.delete("/v1/audio/voices/dup").status_code == 200
    assert client.delete("/v1/audio/voices/dup").status_code == 404
