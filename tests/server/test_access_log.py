"""The access log (``ServerConfig.access_log``): one line per request with its id, route, status, duration and
audio seconds; the request id comes back in ``X-Request-ID``. The app runs in-process on the tiny model."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient

from fastsovits.server.app import create_app
from fastsovits.server.config import ModelSpec, ServerConfig
from fastsovits.server.models import ModelRegistry
from fastsovits.server.voices import Voice, VoiceRegistry
from tests.server.conftest import REF, REF_TEXT, reference_clip, wav_bytes

LINE = re.compile(
    r"^(?P<id>\S+) (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) (?P<secs>[\d.]+) s "
    r"audio=(?P<audio>[\d.]+) s$"
)


def _app(access_log: bool):
    spec = ModelSpec(
        "default",
        gpt=str(REF / "tiny/tiny_s1_v2.ckpt"),
        sovits=str(REF / "tiny/tiny_s2_v2.pth"),
        hubert_dir=str(REF / "tiny/tiny_hubert"),
    )
    config = ServerConfig(device="cpu", num_slots=4, max_len=256, max_new_tokens=30, access_log=access_log)
    voices = VoiceRegistry()
    voices.add(Voice("ref", wav_bytes(reference_clip(), 32000), REF_TEXT, "en"))
    return create_app(ModelRegistry(spec, config), config, voices)


def _lines(caplog) -> list[re.Match]:
    return [LINE.match(r.getMessage()) for r in caplog.records if r.name == "fastsovits.access"]


@pytest.fixture(scope="module")
def app():
    return _app(access_log=True)


def test_access_log_lines(app, caplog) -> None:
    caplog.set_level(logging.INFO, logger="fastsovits.access")
    with TestClient(app) as c:
        r = c.get(
            "/tts",
            params={"text": "Hello there.", "text_lang": "en", "voice": "ref"},
            headers={"X-Request-ID": "req-42"},
        )
        assert r.status_code == 200 and r.headers["x-request-id"] == "req-42"
        bad = c.get(
            "/tts", params={"text": "", "text_lang": "en", "voice": "ref"}, headers={"X-Request-ID": "not a valid id!"}
        )
        assert bad.status_code == 400
        generated = bad.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{16}", generated)
    lines = _lines(caplog)
    assert all(lines) and len(lines) == 2, [r.getMessage() for r in caplog.records]
    ok, refused = lines
    assert (ok["id"], ok["method"], ok["path"], ok["status"]) == ("req-42", "GET", "/tts", "200")
    sent = (len(r.content) - 44) / 2 / 32000  # 16-bit mono WAV at 32 kHz
    assert float(ok["audio"]) == pytest.approx(sent, abs=0.01) and float(ok["audio"]) > 0
    assert float(ok["secs"]) > 0
    assert (refused["id"], refused["status"], float(refused["audio"])) == (generated, "400", 0.0)


def test_access_log_off_by_default(caplog) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from fastsovits.server.guard import GuardMiddleware

    assert ServerConfig().access_log is False
    caplog.set_level(logging.INFO, logger="fastsovits.access")
    for on in (False, True):
        inner = Starlette(routes=[Route("/x", lambda request: PlainTextResponse("ok"))])
        with TestClient(GuardMiddleware(inner, ServerConfig(access_log=on))) as c:
            assert c.get("/x").status_code == 200
        assert len(_lines(caplog)) == int(on)
