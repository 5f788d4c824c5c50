"""Server parts in-process: path confinement, the API-key/body guard, encoders, parameter mapping."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
import soundfile as sf
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fastsovits.errors import InvalidParameter
from fastsovits.server.config import ServerConfig
from fastsovits.server.errors import ForbiddenPath, NotFound
from fastsovits.server.guard import GuardMiddleware
from fastsovits.server.paths import resolve_inside
from fastsovits.server.schemas import SpeechRequest, TTSRequest, api_v2_streaming, streaming_params, to_params
from fastsovits.server.streaming import encode_whole, stream_encoder


def test_paths_stay_inside_the_root(tmp_path) -> None:
    root = tmp_path / "refs"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.wav").write_bytes(b"x")
    (tmp_path / "secret").write_bytes(b"x")
    (root / "link").symlink_to(tmp_path / "secret")
    assert resolve_inside(root, "sub/a.wav", "ref") == (root / "sub" / "a.wav").resolve()
    assert resolve_inside(root, str(root / "sub" / "a.wav"), "ref").name == "a.wav"
    for bad in ("../secret", "sub/../../secret", str(tmp_path / "secret"), "link", "/etc/passwd", "a\x00b"):
        with pytest.raises(ForbiddenPath):
            resolve_inside(root, bad, "ref")
    with pytest.raises(NotFound):
        resolve_inside(root, "sub/missing.wav", "ref")
    with pytest.raises(ForbiddenPath):
        resolve_inside(None, "sub/a.wav", "ref")


def test_guard_api_key_and_body_limit() -> None:
    inner = FastAPI()

    @inner.get("/healthz")
    def healthz():
        return {"ok": True}

    @inner.post("/echo")
    async def echo(request: __import__("fastapi").Request):
        return {"n": len(await request.body())}

    app = GuardMiddleware(inner, ServerConfig(api_key="s3cret", max_body_bytes=100))
    c = TestClient(app)
    assert c.get("/healthz").status_code == 200
    r = c.post("/echo", content=b"x")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["type"] == "Unauthorized"
    assert c.post("/echo", content=b"x", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = {"Authorization": "Bearer s3cret"}
    assert c.post("/echo", content=b"x" * 100, headers=ok).json() == {"n": 100}
    r = c.post("/echo", content=b"x" * 101, headers=ok)
    assert r.status_code == 413 and r.json()["error"]["type"] == "PayloadTooLarge"


def test_stream_encoders_give_one_continuous_file() -> None:
    x = (0.3 * np.sin(np.arange(16000) * 0.05)).astype(np.float32)
    wav = stream_encoder("wav", 32000)
    data = b"".join([wav.feed(x), wav.feed(x), wav.finish()])
    samples, sr = sf.read(io.BytesIO(data))
    assert sr == 32000 and len(samples) == 32000
    ogg = stream_encoder("ogg", 32000)
    parts = [ogg.feed(x) for _ in range(4)] + [ogg.finish()]
    assert sum(bool(p) for p in parts[:4]) >= 3  # pages come out while feeding, not only at the end
    data = b"".join(parts)
    assert data.count(b"OggS") > 2 and data.count(b"OpusHead") == 1
    samples, sr = sf.read(io.BytesIO(data))
    assert sr == 48000 and abs(len(samples) - 4 * 16000 * 3 // 2) <= 960
    for fmt in ("aac", "mp3"):
        enc = stream_encoder(fmt, 32000)
        with av.open(io.BytesIO(b"".join([enc.feed(x), enc.feed(x), enc.finish()]))) as c:
            assert sum(f.samples for f in c.decode(audio=0)) >= 32000
    pcm24 = encode_whole(x, 32000, "pcm", 24000)
    assert len(pcm24) == 2 * 12000
    with pytest.raises(InvalidParameter):
        stream_encoder("mkv", 32000)


def test_parameter_mapping() -> None:
    cfg = ServerConfig(max_new_tokens=40)
    p = to_params(TTSRequest(text="a", text_lang="en"), cfg)
    assert p.text_split_method == "cut5" and p.max_new_tokens == 40 and p.seed == -1
    assert to_params(TTSRequest(text="a", max_new_tokens=1000), cfg).max_new_tokens == 40
    assert to_params(TTSRequest(text="a", max_new_tokens=7), cfg).max_new_tokens == 7
    p = to_params(SpeechRequest(input="a", voice="v", speed=2.0), cfg, speed_factor=2.0)
    assert p.speed_factor == 2.0
    assert [api_v2_streaming(v) for v in (False, True, 0, 1, 2, 3, "true", "false", "2")] == [0, 1, 0, 1, 2, 3, 1, 0, 2]
    for bad in (4, -1, "yes"):
        with pytest.raises(InvalidParameter):
            api_v2_streaming(bad)
    assert streaming_params(1) == {"return_fragment": True}
    assert streaming_params(3)["streaming_mode"] is True and streaming_params(3)["fixed_length_chunk"] is True


class _FakeEngine:
    def stats(self) -> dict:
        return {"waiting_rows": 0}


class _FakeTTS:
    def __init__(self) -> None:
        self.engine, self.closed = _FakeEngine(), False

    def close(self) -> None:
        self.closed = True


def test_model_registry_lru_bounded_by_count_and_bytes() -> None:
    import asyncio

    from fastsovits.server.config import ModelSpec
    from fastsovits.server.errors import NotFound
    from fastsovits.server.models import ModelRegistry, Resident

    class Registry(ModelRegistry):
        def _load(self, spec):  # no weights: a stand-in TTS of a declared size
            return Resident(spec, _FakeTTS(), nbytes=int(spec.version))

    async def run() -> None:
        reg = Registry(ModelSpec("a", version="10"), ServerConfig(max_models=2, max_model_bytes=25))
        for name, size in (("b", "10"), ("c", "10"), ("big", "20")):
            reg.declare(ModelSpec(name, version=size))
        a = await reg.acquire("a")  # held: never evicted while in use
        async with reg.lease("b"):
            pass
        assert set(reg.resident) == {"a", "b"}
        b_tts = reg.resident["b"].tts
        async with reg.lease("c"):  # over the count: the idle LRU model (b) goes
            assert set(reg.resident) == {"a", "c"} and b_tts.closed
        async with reg.lease("big"):  # over the bytes: c goes, a stays (leased) even though still over
            assert set(reg.resident) == {"a", "big"}
        reg.release(a)
        async with reg.lease("c"):
            assert "a" not in reg.resident or "big" not in reg.resident
        try:
            await reg.acquire("nope")
        except NotFound:
            pass
        else:
            raise AssertionError("an undeclared model must be NotFound")
        await reg.close()
        assert reg.resident == {}

    asyncio.run(run())


def _threads() -> int:
    for line in open("/proc/self/status").read().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def test_abandoned_encoders_free_their_threads_without_the_gc() -> None:
    """A response abandoned mid-stream closes its encoder: PyAV's codec threads go at once, not at the next GC."""
    import gc

    from fastsovits.server.streaming import stream_encoder

    gc.collect()
    gc.disable()
    try:
        base = _threads()
        for fmt in ("mp3", "opus", "aac", "flac", "mp3", "opus", "aac"):
            enc = stream_encoder(fmt, 32000)
            assert enc.feed(np.zeros(32000, np.float32)) is not None
            enc.close()  # what the response does when its client goes away or the stream fails
            enc.close()  # idempotent
            del enc
        assert _threads() <= base + 2
    finally:
        gc.enable()


def test_json_depth_counts_brackets_outside_strings() -> None:
    from fastsovits.server.guard import json_depth

    assert json_depth(b'{"a": "[[[\\"[[{", "b": [[1]]}') == 3
    assert json_depth(b"[" * 50 + b"]" * 50) == 50
    assert json_depth(b'"just a string"') == 0


def test_unexpected_errors_do_not_leak_their_text() -> None:
    import json

    from fastsovits.server.errors import error_response

    body = json.loads(error_response(TypeError("cannot open /srv/secret/model.pth <_io.BytesIO object at 0x7f>")).body)
    assert body["error"] == {"message": body["Exception"], "type": "TypeError", "code": 500}
    assert "/srv" not in json.dumps(body) and "0x" not in json.dumps(body)
