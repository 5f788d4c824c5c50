"""A server with an API key, a weights folder of its own and /control allowed: model switching, bad weights,
the Bearer scheme, /control bodies, disconnects, failures mid-stream, shutdown.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
import torch

from tests.server.conftest import REF, Server, metric

KEY = "s3cret-key"
STREAM_TIMEOUT_S = 10  # with one KV slot, LONG_TEXT's first chunks come after one sentence, its end after 90
LONG_TEXT = " ".join(f"Sentence {i} of a request that runs for a while." for i in range(90))


class _Evil:
    def __reduce__(self):
        return os.system, ("touch /tmp/fastsovits-pwned",)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("weights")
    shutil.copy(REF / "tiny/tiny_s1_v2.ckpt", d / "A.ckpt")
    shutil.copy(REF / "tiny/tiny_s2_v2.pth", d / "S.pth")
    ckpt = torch.load(REF / "tiny/tiny_s1_v2.ckpt", map_location="cpu", weights_only=True)
    gen = torch.Generator().manual_seed(0)
    for name, t in ckpt["weight"].items():  # B: the same shapes, other weights
        if t.is_floating_point() and t.numel() > 1:
            ckpt["weight"][name] = t + torch.randn(t.shape, generator=gen) * (t.std() + 0.05)
    torch.save(ckpt, d / "B.ckpt")
    (d / "garbage.ckpt").write_bytes(b"PK\x03\x04 not really a zip" * 100)
    (d / "evil.ckpt").write_bytes(pickle.dumps(_Evil()))
    return d


@pytest.fixture(scope="module")
def edge_server(server_files, weights, tmp_path_factory):
    srv = Server(
        tmp_path_factory.mktemp("edge"),
        [
            "--voices",
            str(server_files / "voices.yaml"),
            "--ref-root",
            str(server_files / "refs"),
            "--weights-root",
            str(weights),
            "--api-key",
            KEY,
            "--allow-control",
        ],
    )
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture()
def ec(edge_server):
    with httpx.Client(base_url=edge_server.url, timeout=120, headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


def _tts(ec: httpx.Client) -> bytes:
    r = ec.get("/tts", params={"text": "Hello there, how are you.", "text_lang": "en", "seed": 7})
    assert r.status_code == 200, r.text
    return r.content


def test_bearer_scheme_is_case_insensitive(edge_server) -> None:
    for scheme in ("Bearer", "bearer", "BEARER"):
        r = httpx.get(edge_server.url + "/v1/models", headers={"Authorization": f"{scheme} {KEY}"})
        assert r.status_code == 200, scheme
    for header in ({"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}, {}):
        r = httpx.get(edge_server.url + "/v1/models", headers=header)
        assert r.status_code == 401 and r.json()["error"]["type"] == "Unauthorized"


def test_model_switching_never_reuses_a_stale_model(ec) -> None:
    """/set_gpt_weights A, /set_sovits_weights S, /set_gpt_weights B, /set_sovits_weights S: GPT B runs."""
    ok = {"message": "success"}
    assert ec.get("/set_gpt_weights", params={"weights_path": "A.ckpt"}).json() == ok
    assert ec.get("/set_sovits_weights", params={"weights_path": "S.pth"}).json() == ok
    with_a = _tts(ec)
    assert ec.get("/set_gpt_weights", params={"weights_path": "B.ckpt"}).json() == ok
    with_b = _tts(ec)
    assert with_b != with_a  # B is another model
    assert ec.get("/set_sovits_weights", params={"weights_path": "S.pth"}).json() == ok
    assert _tts(ec) == with_b
    default = [m["id"] for m in ec.get("/v1/models").json()["data"] if m.get("default")]
    assert len(default) == 1 and "B.ckpt" in default[0] and "S.pth" in default[0]


@pytest.mark.parametrize(
    ("route", "name"),
    [
        ("/set_gpt_weights", "garbage.ckpt"),
        ("/set_gpt_weights", "evil.ckpt"),
        ("/set_gpt_weights", "S.pth"),  # a SoVITS file as GPT
        ("/set_sovits_weights", "A.ckpt"),  # a GPT file as SoVITS
        ("/set_sovits_weights", "evil.ckpt"),
    ],
)
def test_bad_weights_are_a_typed_4xx_and_change_nothing(ec, weights, route, name) -> None:
    before = ec.get("/v1/models").json()["data"]
    r = ec.get(route, params={"weights_path": name})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "InvalidWeights"
    assert str(weights) not in r.text and "/tmp" not in r.text, r.text
    assert ec.get("/v1/models").json()["data"] == before
    assert not Path("/tmp/fastsovits-pwned").exists()
    assert len(_tts(ec)) > 44  # the default model still serves


def test_control_body_that_is_not_an_object(ec, client) -> None:
    for body in ([1, 2], "exit", 5, None):
        r = ec.post("/control", content=json.dumps(body), headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["type"] == "InvalidParameter", r.text
    # without --allow-control the permission comes first, whatever the body
    r = client.post("/control", content=b"[1]", headers={"content-type": "application/json"})
    assert r.status_code == 403 and r.json()["error"]["type"] == "Forbidden"


def test_client_disconnect_is_not_a_server_error(edge_server, ec) -> None:
    before = metric(ec.get("/metrics").text, "fastsovits_requests_cancelled_total", reason="disconnect")
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(
            edge_server.url + "/tts",
            params={"text": LONG_TEXT, "text_lang": "en", "voice": "ref"},
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=0.5,
        )
    deadline = time.monotonic() + 30
    while metric(ec.get("/metrics").text, "fastsovits_requests_cancelled_total", reason="disconnect") == before:
        assert time.monotonic() < deadline, "the server did not notice the disconnect"
        time.sleep(0.1)
    text = ec.get("/metrics").text
    assert metric(text, "fastsovits_requests_total", route="/tts", status="499") >= 1
    assert metric(text, "fastsovits_requests_total", route="/tts", status="500") == 0
    log = edge_server.output()
    assert "Traceback" not in log and "request failed" not in log, log


def _drain(method: str, url: str, **kwargs) -> None:
    try:
        with httpx.stream(method, url, timeout=120, **kwargs) as r:
            for _ in r.iter_bytes():
                pass
    except httpx.HTTPError:
        pass


def test_stream_that_fails_midway_tells_the_client(server_files, tmp_path) -> None:
    """A request timeout after the first chunks: raw audio ends without its final chunk, SSE with an error event."""
    srv = Server(
        tmp_path,
        [
            "--voices",
            str(server_files / "voices.yaml"),
            "--timeout",
            str(STREAM_TIMEOUT_S),
            "--max-new-tokens",
            "120",
            "--max-len",
            "512",
            "--num-slots",
            "1",
            "--max-text-chars",
            "20000",
        ],
    )
    # 300 sentences through one KV slot: far more work than the timeout allows on any machine (the time to
    # finish grows with a slower machine, the timeout does not), while the first chunk comes after 16 tokens
    text = " ".join(f"Sentence {i} of a request that runs for a while." for i in range(300))
    raw = {"text": text, "text_lang": "en", "voice": "ref", "streaming_mode": 3}  # fixed 16-token chunks
    sse = {"model": "tts-1", "voice": "ref", "input": text, "response_format": "pcm", "stream_format": "sse"}
    try:
        srv.wait_ready()
        _drain("GET", srv.url + "/tts", params=raw)  # the first long batch of a server is slow: not measured
        _drain("POST", srv.url + "/v1/audio/speech", json=sse)
        before = httpx.get(srv.url + "/metrics").text
        received = 0
        with pytest.raises(httpx.RemoteProtocolError):  # raw audio: the body ends without its final chunk
            with httpx.stream("GET", srv.url + "/tts", params=raw, timeout=60) as r:
                assert r.status_code == 200, r.read()
                for chunk in r.iter_bytes():
                    received += len(chunk)
        assert received > 44
        r = httpx.post(srv.url + "/v1/audio/speech", json=sse, timeout=60)
        assert r.status_code == 200, r.text
        events = [json.loads(b[len("data: ") :]) for b in r.text.split("\n\n") if b.startswith("data: ")]
        assert events[0]["type"] == "speech.audio.delta" and events[-1]["type"] == "error"
        assert events[-1]["error"]["type"] == "RequestTimeout"
        after = httpx.get(srv.url + "/metrics").text
        for name, labels in (
            ("fastsovits_requests_cancelled_total", {"reason": "stream_error"}),
            ("fastsovits_errors_total", {"type": "RequestTimeout"}),
        ):
            assert metric(after, name, **labels) == metric(before, name, **labels) + 2
    finally:
        srv.stop()


def test_shutdown_timeout_answers_503(server_files, tmp_path) -> None:
    srv = Server(tmp_path, ["--voices", str(server_files / "voices.yaml"), "--shutdown-timeout", "1"])
    try:
        srv.wait_ready()
        result: dict = {}

        def call() -> None:
            r = httpx.get(srv.url + "/tts", params={"text": LONG_TEXT, "text_lang": "en", "voice": "ref"}, timeout=120)
            result["status"], result["body"] = r.status_code, r.json()

        t = threading.Thread(target=call)
        t.start()
        deadline = time.monotonic() + 30
        while metric(httpx.get(srv.url + "/metrics").text, "fastsovits_requests_in_flight") < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(srv.proc.pid, signal.SIGTERM)
        t.join(60)
        assert result["status"] == 503, result
        assert result["body"]["error"]["type"] == "ShuttingDown"
        assert srv.proc.wait(60) == 0
        assert "Traceback" not in srv.output()
    finally:
        srv.stop()
