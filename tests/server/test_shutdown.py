"""SIGTERM lets the request in flight finish, then the process exits cleanly."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx

from tests.server.conftest import Server, metric


def test_graceful_shutdown_finishes_in_flight(server_files, tmp_path) -> None:
    srv = Server(tmp_path, ["--voices", str(server_files / "voices.yaml")])
    try:
        srv.wait_ready()
        result: dict = {}
        text = " ".join(f"Sentence {i} of a request that is still running." for i in range(6))

        def call() -> None:
            r = httpx.get(
                srv.url + "/tts",
                params={"text": text, "text_lang": "en", "voice": "ref", "text_split_method": "cut5"},
                timeout=120,
            )
            result["status"], result["body"] = r.status_code, r.content

        t = threading.Thread(target=call)
        t.start()
        deadline = time.monotonic() + 30
        while metric(httpx.get(srv.url + "/metrics").text, "fastsovits_requests_in_flight") < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(srv.proc.pid, signal.SIGTERM)
        t.join(120)
        assert result["status"] == 200 and result["body"][:4] == b"RIFF" and len(result["body"]) > 44
        assert srv.proc.wait(60) == 0
    finally:
        srv.stop()


def test_control_restart_comes_back_in_the_same_process(server_files, tmp_path) -> None:
    """/control restart (as official api_v2): graceful stop, then the same command line again, same pid."""
    srv = Server(tmp_path, ["--voices", str(server_files / "voices.yaml"), "--allow-control"])
    try:
        srv.wait_ready()
        r = httpx.get(srv.url + "/tts", params={"text": "Before.", "text_lang": "en", "voice": "ref"}, timeout=120)
        assert r.status_code == 200
        assert metric(httpx.get(srv.url + "/metrics").text, "fastsovits_requests_total", route="/tts") == 1
        r = httpx.post(srv.url + "/control", json={"command": "restart"}, timeout=30)
        assert r.status_code == 200 and r.json() == {"message": "restarting"}
        deadline = time.monotonic() + 120
        came_back = False
        while time.monotonic() < deadline:
            assert srv.proc.poll() is None, "the process exited instead of restarting"
            try:
                # the new instance is ready and its counters start again
                if httpx.get(srv.url + "/readyz", timeout=2).status_code == 200:
                    came_back = (
                        metric(httpx.get(srv.url + "/metrics").text, "fastsovits_requests_total", route="/tts") == 0
                    )
                    if came_back:
                        break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert came_back
        r = httpx.get(srv.url + "/tts", params={"text": "Back again.", "text_lang": "en", "voice": "ref"}, timeout=120)
        assert r.status_code == 200 and r.content[:4] == b"RIFF"
    finally:
        srv.stop()
